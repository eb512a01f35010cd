"""Status writes to a large object: what one costs, and whether it grows with the spec.

A pipeline run's object holds its whole IR (kfp writes one component spec per task, so a
120-task run's spec is ~240 KB) and its controller writes status after every step, so a
status write that rewrites the whole object makes each step cost more the larger the run.

In one run, on SQLite (a file, WAL) and on PostgreSQL (``--database-url``, or a throwaway
server started from the test suite's ``tests/_postgres.py`` when ``initdb`` is found):

* ``--writes`` status writes (``ResourceStore.write_status``, the controllers' path) to an
  object whose spec is ``--spec-kb`` KB, the status growing from 0 to ``--tasks`` tasks;
* the same writes to an object with a 1 KB spec and the same statuses: the ratio of the
  two is what the spec's size costs (1.0 when a status write touches only the status);
* the change log read back as a watch stream reads it (``raw_events``, every object
  whole), per event;
* the client's CPU per write (SQLite works in this process: its CPU is counted; a
  PostgreSQL server's is not), steadier than wall time on a busy machine;
* how much the database grew per status write (SQLite: pages in use after a checkpoint).

    .venv/bin/python benchmarks/store_status.py [--writes 200] [--spec-kb 240] [--tasks 100]
        [--database-url URL] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from ketch.core.resources import Resource
from ketch.core.store import ResourceStore, open_store
from ketch.jobs import JOB


def _spec(kb: int) -> dict[str, Any]:
    # Shaped like a kfp IR: one component and one executor per task.
    per = 1900
    count = max(1, kb * 1024 // per)
    return {"pipelineSpec": {
        "components": {f"comp-step-{i}": {"executorLabel": f"exec-step-{i}",
                                          "inputDefinitions": {"parameters": {
                                              "x": {"parameterType": "NUMBER_INTEGER"}}}}
                       for i in range(count)},
        "deploymentSpec": {"executors": {f"exec-step-{i}": {"container": {
            "image": "python:3.11", "command": ["sh", "-c", "x" * (per - 260)]}}
            for i in range(count)}}}}


def _status(tasks: int) -> dict[str, Any]:
    return {"phase": "Running", "observedGeneration": 1, "tasks": {
        f"step-{i}": {"phase": "Succeeded", "attempts": 1, "startedAt": "2026-12-02T10:00:00Z",
                      "finishedAt": "2026-12-02T10:00:01Z", "outputs": {"Output": i + 1},
                      "podName": f"run-step-{i}-0"}
        for i in range(tasks)}}


def _db_bytes(url: str) -> int:
    if url.startswith("sqlite"):
        # The main file once the WAL is checkpointed into it: pages in use, free pages
        # that later writes take again not counted.
        conn = sqlite3.connect(url.split("///", 1)[1])
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            return int((pages - free) * size)
        finally:
            conn.close()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())"))
                       .scalar_one())
    finally:
        engine.dispose()


def _measure(store: ResourceStore, url: str, name: str, spec: dict[str, Any], writes: int,
             tasks: int) -> dict[str, float]:
    obj = store.create(JOB, Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "bench"}, "spec": spec}))
    start_rev = int(obj.metadata.resource_version or 0)
    # Built before timing; "step" makes every write a change (no no-op writes).
    statuses = [{**_status(round(tasks * (i + 1) / writes)), "step": i} for i in range(writes)]
    before = _db_bytes(url)
    samples, cpu = [], []
    held = obj
    for status in statuses:
        held = held.model_copy(update={"status": status})
        began, began_cpu = time.perf_counter(), time.thread_time()
        rev = store.write_status(JOB, held)
        samples.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
        held.metadata.resource_version = rev
    grew = _db_bytes(url) - before
    began = time.perf_counter()
    events = store.raw_events(start_rev, limit=writes + 1)
    read = time.perf_counter() - began
    assert len(events) == writes, len(events)
    body = len(events[-1].body_text)
    return {"write_ms": statistics.median(samples) * 1000,
            "write_p95_ms": sorted(samples)[int(len(samples) * 0.95)] * 1000,
            "write_cpu_ms": statistics.mean(cpu) * 1000,
            "read_event_ms": read / len(events) * 1000,
            "grow_kb": grew / writes / 1024, "object_kb": body / 1024}


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    if url:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    try:
        from _postgres import find_postgres_bin_dir, start_postgres

        find_postgres_bin_dir()
    except Exception as err:  # no PostgreSQL here: say so, measure SQLite alone
        print(f"(PostgreSQL skipped: {err})")
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp, start_postgres(Path(tmp)) as started:
        yield started


def _run(label: str, url: str, args: argparse.Namespace) -> None:
    store = open_store(url)
    try:
        small = _measure(store, url, "small", _spec(1), args.writes, args.tasks)
        big = _measure(store, url, "big", _spec(args.spec_kb), args.writes, args.tasks)
    finally:
        store.close()
    print(f"\n{label}: {args.writes} status writes, status growing to {args.tasks} tasks")
    print(f"  {'object':>14} {'whole obj':>10} {'write p50':>10} {'write p95':>10} "
          f"{'client CPU':>10} {'raw event':>10} {'db growth':>12}")
    for what, row in ((f"spec {args.spec_kb} KB", big), ("spec 1 KB", small)):
        print(f"  {what:>14} {row['object_kb']:8.0f}KB {row['write_ms']:8.2f}ms "
              f"{row['write_p95_ms']:8.2f}ms {row['write_cpu_ms']:8.2f}ms "
              f"{row['read_event_ms']:8.3f}ms {row['grow_kb']:8.1f}KB/wr")
    print(f"  ratio (big spec / small spec): write {big['write_ms'] / small['write_ms']:.2f}x, "
          f"CPU {big['write_cpu_ms'] / small['write_cpu_ms']:.2f}x, "
          f"raw event read {big['read_event_ms'] / small['read_event_ms']:.2f}x, "
          f"growth {big['grow_kb'] / max(small['grow_kb'], 0.01):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writes", type=int, default=200, help="status writes (default 200)")
    parser.add_argument("--spec-kb", type=int, default=240, help="the large spec's size")
    parser.add_argument("--tasks", type=int, default=100, help="tasks in the last status")
    parser.add_argument("--database-url", default=os.environ.get("KETCH_BENCH_POSTGRES"),
                        help="a PostgreSQL URL (default: start a throwaway server)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    if args.writes < 2:
        parser.error("--writes must be at least 2")
    with tempfile.TemporaryDirectory() as tmp:
        _run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    if args.skip_postgres:
        return
    with _postgres(args.database_url) as pg:
        if pg is not None:
            _run("PostgreSQL", pg, args)


if __name__ == "__main__":
    main()
