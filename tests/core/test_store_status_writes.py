"""The store's cheap paths for controllers on large objects, against SQLite and a real
PostgreSQL: ``write_status`` (the status swapped in by the database, not a decode and
re-encode of the whole object), ``resource_version`` and ``changed_keys`` (no bodies)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from ketch.core.errors import ConflictError, NotFoundError, RequestEntityTooLargeError
from ketch.core.resources import Resource
from ketch.core.store import ResourceStore, open_store
from ketch.jobs import JOB


@pytest.fixture
def store(database_url: str) -> Iterator[ResourceStore]:
    s = open_store(database_url)
    yield s
    s.close()


def job(name: str) -> Resource:
    return Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default", "labels": {"team": "a"},
                     "annotations": {"note": "ü"}},
        "spec": {"command": ["true"], "env": [{"name": "X", "value": "1"}]}})


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in body["metadata"].items()
            if k not in ("name", "uid", "creationTimestamp", "resourceVersion")}
    return {**body, "metadata": meta}


STATUSES: list[dict[str, Any]] = [
    {"phase": "Running", "tasks": {"a": {"phase": "Pending", "n": [1, 2.5, None, True]}}},
    {"phase": "Running", "tasks": {"a": {"phase": "Succeeded", "text": "é \u2603 \"q\""}},
     "big": 2**62},
    {},
]


def test_write_status_stores_what_update_status_stores(store: ResourceStore) -> None:
    by_update = store.create(JOB, job("by-update"))
    by_write = store.create(JOB, job("by-write"))
    for status in STATUSES:
        # The caller's spec and labels are not the stored ones: a status write ignores them.
        local = {"spec": {"command": ["ignored"]}, "status": status}
        by_update = store.update_status(JOB, by_update.model_copy(update=local))
        rev = store.write_status(JOB, by_write.model_copy(update=local))
        stored = store.get(JOB, "default", "by-write")
        assert stored.metadata.resource_version == rev
        assert _comparable(stored.to_wire()) == _comparable(by_update.to_wire())
        # The same keys in the same order (what -o yaml shows).
        assert list(stored.to_wire()) == list(by_update.to_wire())
        assert stored.spec == {"command": ["true"], "env": [{"name": "X", "value": "1"}]}
        # The change log holds the object as stored.
        last = store.events(int(rev) - 1)
        assert [(e.type, e.revision) for e in last] == [("MODIFIED", int(rev))]
        assert last[0].object.to_wire() == stored.to_wire()
        by_write = stored


def test_write_status_no_op_keeps_version_and_logs_nothing(store: ResourceStore) -> None:
    obj = store.create(JOB, job("a"))
    rev = store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Running"}}))
    held = store.get(JOB, "default", "a")
    assert store.write_status(JOB, held) == rev
    assert store.revision() == int(rev)
    assert store.events(int(rev)) == []


def test_write_status_keeps_the_store_contract(store: ResourceStore) -> None:
    obj = store.create(JOB, job("a"))
    store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Running"}}))
    with pytest.raises(ConflictError, match="has been modified"):
        store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Failed"}}))
    with pytest.raises(NotFoundError, match='"missing" not found'):
        store.write_status(JOB, job("missing"))
    current = store.get(JOB, "default", "a")
    huge = {"phase": "Running", "log": "x" * (2 * 1024 * 1024)}
    with pytest.raises(RequestEntityTooLargeError, match="too large"):
        store.write_status(JOB, current.model_copy(update={"status": huge}))
    # Refused as a whole: nothing written, nothing logged.
    after = store.get(JOB, "default", "a")
    assert after.to_wire() == current.to_wire()
    assert store.events(int(current.metadata.resource_version or 0)) == []


def test_resource_version_and_changed_keys_read_no_bodies(store: ResourceStore) -> None:
    start = store.revision()
    obj = store.create(JOB, job("a"))
    assert store.resource_version(JOB, "default", "a") == obj.metadata.resource_version
    rev = store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Running"}}))
    assert store.resource_version(JOB, "default", "a") == rev
    with pytest.raises(NotFoundError, match='"b" not found'):
        store.resource_version(JOB, "default", "b")
    keys = store.changed_keys(start, kind_keys={JOB.key})
    assert [(k.revision, k.kind_key, k.namespace, k.name) for k in keys] == [
        (int(obj.metadata.resource_version or 0), JOB.key, "default", "a"),
        (int(rev), JOB.key, "default", "a")]
    assert store.changed_keys(start, kind_keys={"other"}) == []
    assert [k.revision for k in store.changed_keys(start, limit=1)] == [
        int(obj.metadata.resource_version or 0)]


def _big_spec(kb: int) -> dict[str, Any]:
    # Hex digests: text that neither SQLite nor PostgreSQL's TOAST compresses much.
    return {"command": ["true"], "ir": {
        f"comp-{i}": "".join(hashlib.sha256(f"{i}-{j}".encode()).hexdigest()
                             for j in range(16)) for i in range(kb)}}


def _database_bytes(url: str) -> int:
    """What the database holds: SQLite's pages in use once the WAL is checkpointed,
    PostgreSQL's database size."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1])
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_count", "freelist_count", "page_size"))
            return int((pages - free) * size)
        finally:
            conn.close()
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())"))
                       .scalar_one())
    finally:
        engine.dispose()


def test_a_status_write_stores_the_status_not_the_object_again(
        store: ResourceStore, database_url: str) -> None:
    """What a pipeline run relies on: each step's status write costs the status, however
    large the spec (its IR) is; every revision is still the whole object. (Before the
    status had a column of its own, each write stored the whole object again in the
    change log: 20 writes here grew the database by 20 copies of the spec.)"""
    url = database_url.replace("postgresql://", "postgresql+psycopg://")
    obj = store.create(JOB, job("big").model_copy(update={"spec": _big_spec(200)}))
    start = int(obj.metadata.resource_version or 0)
    before = _database_bytes(url)
    held = obj
    for i in range(20):
        status = {"phase": "Running", "tasks": {f"t{n}": {"phase": "Succeeded"}
                                                for n in range(i)}}
        held = held.model_copy(update={"status": status})
        held.metadata.resource_version = store.write_status(JOB, held)
    grown = _database_bytes(url) - before
    # All 20 writes together: less than one more copy of the ~200 KB spec.
    assert grown < 200 * 1024, grown
    last = store.get(JOB, "default", "big")
    assert last.spec == _big_spec(200) and last.status == held.status
    raw = store.raw_events(start)
    assert len(raw) == 20
    assert [json.loads(r.body_text) for r in raw][-1] == last.to_wire()
    assert [e.object.status for e in store.events(start)][-1] == held.status


def test_every_revision_reads_back_whole(store: ResourceStore) -> None:
    """Spec updates, status writes and deletion, each read back from the change log
    (decoded and as JSON text) as the object was at that revision; a label and an
    annotation spelled like the resourceVersion do not confuse the reader."""
    start = store.revision()
    seen: list[dict[str, Any]] = []
    obj = store.create(JOB, job("a"))
    seen.append(obj.to_wire())
    rv = obj.metadata.resource_version
    obj.metadata.labels["resourceVersion"] = str(int(rv or 0) + 1)
    obj.metadata.annotations["resourceVersion"] = str(int(rv or 0) + 1)
    obj = store.update(JOB, obj)
    seen.append(obj.to_wire())
    for phase in ("Pending", "Running"):
        rev = store.write_status(JOB, obj.model_copy(update={"status": {"phase": phase}}))
        obj = store.get(JOB, "default", "a")
        assert obj.metadata.resource_version == rev
        seen.append(obj.to_wire())
    obj = store.update(JOB, obj.model_copy(update={"spec": {"command": ["false"]}}))
    seen.append(obj.to_wire())
    obj = store.update_status(JOB, obj.model_copy(update={"status": {"phase": "Failed"}}))
    seen.append(obj.to_wire())
    seen.append(store.delete(JOB, "default", "a").to_wire())
    events = store.events(start)
    assert [e.type for e in events] == ["ADDED"] + ["MODIFIED"] * 5 + ["DELETED"]
    assert [e.object.to_wire() for e in events] == seen
    assert [e.to_wire()["object"] for e in events] == [
        Resource.model_validate(s).to_wire() for s in seen]
    raw = store.raw_events(start)
    assert [json.loads(r.body_text) for r in raw] == [e.to_wire()["object"] for e in events]
    assert [r.revision for r in raw] == [int(s["metadata"]["resourceVersion"]) for s in seen]


def test_compaction_drops_the_bodies_only_old_revisions_held(store: ResourceStore) -> None:
    from sqlalchemy import func, select

    from ketch.core.store import _schema as t

    def bodies() -> int:
        with store.transaction(write=False) as conn:
            return int(conn.execute(select(func.count()).select_from(t.bodies)).scalar_one())

    kept = store.create(JOB, job("kept"))
    for n in range(3):  # three more versions of its spec, one body each
        kept = store.update(JOB, kept.model_copy(update={"spec": {"command": [str(n)]}}))
        store.write_status(JOB, kept.model_copy(update={"status": {"phase": str(n)}}))
        kept = store.get(JOB, "default", "kept")
    store.create(JOB, job("gone"))
    store.delete(JOB, "default", "gone")
    assert bodies() == 5
    latest = store.revision()
    store.prune_events(3600, keep_revisions=0)
    assert bodies() == 1
    assert store.get(JOB, "default", "kept").to_wire() == kept.to_wire()
    # The log goes on from where it was compacted, whole objects again.
    rev = store.write_status(JOB, kept.model_copy(update={"status": {"phase": "last"}}))
    [event] = store.raw_events(latest)
    assert json.loads(event.body_text) == store.get(JOB, "default", "kept").to_wire()
    assert event.revision == int(rev)


@pytest.mark.postgres
@pytest.mark.parametrize("operation", ["delete", "write_status", "update"])
def test_a_write_waiting_on_a_concurrent_metadata_change_finds_the_object(
        postgres_server: str, operation: str) -> None:
    """A write that waits for the row lock of another transaction which gave the object a
    new body (a label patch) must still find the object once that commits. Locking the
    row over the body join made PostgreSQL recheck the join against the old body and
    answer 404 for a live Job (seen in the soak test as deletes that left Jobs behind)."""
    import threading

    import psycopg
    from sqlalchemy.engine import make_url

    from conftest import new_postgres_database, wait_for

    url = new_postgres_database(postgres_server)
    store = open_store(url)
    try:
        created = store.create(JOB, job("contended"))
        pg = make_url(url)
        with psycopg.connect(host=pg.host, port=pg.port, user=pg.username,
                             dbname=pg.database) as holder:
            # What a label patch commits: a new body row, the resource row moved to it.
            holder.execute("""
                WITH b AS (INSERT INTO ketch_bodies (revision, body, size, rv_at)
                           SELECT revision, body, size, rv_at FROM ketch_bodies
                           WHERE id = (SELECT body_id FROM ketch_resources WHERE name = %s)
                           RETURNING id)
                UPDATE ketch_resources SET body_id = (SELECT id FROM b) WHERE name = %s
            """, ("contended", "contended"))
            outcome: list[object] = []

            def write() -> None:
                try:
                    if operation == "delete":
                        outcome.append(store.delete(JOB, "default", "contended"))
                    elif operation == "write_status":
                        outcome.append(store.write_status(JOB, created.model_copy(
                            update={"status": {"phase": "Running"}})))
                    else:
                        fresh = created.model_copy(deep=True)
                        fresh.metadata.resource_version = None
                        fresh.metadata.labels = {"team": "b"}
                        outcome.append(store.update(JOB, fresh))
                except Exception as err:  # the assertion below shows it
                    outcome.append(err)

            writer = threading.Thread(target=write)
            writer.start()
            with psycopg.connect(host=pg.host, port=pg.port, user=pg.username,
                                 dbname=pg.database, autocommit=True) as watcher:
                wait_for(lambda: watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()").fetchone()[0] == 1,  # type: ignore[index]
                    timeout=10, message="the write waits on the row lock")
            holder.commit()
            writer.join(timeout=10)
        assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
        if operation == "delete":
            with pytest.raises(NotFoundError):
                store.get(JOB, "default", "contended")
    finally:
        store.close()
