"""``ketch logs run NAME [--task T] [-f]``: a run's step logs.

One task: its log as is (the latest attempt, or ``attempt``). The whole run: every
step's lines prefixed with ``[task]``, as ``argo logs`` does, in the order they were
written; with follow, until the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ketch.core.errors import InvalidError, NotFoundError
from ketch.core.kinds import LogOptions
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.pipelines._kind import PIPELINE_RUN, TERMINAL_PHASES, flatten_tasks
from ketch.pipelines._worker import EXIT_FILE, LOG_FILE, PID_FILE, task_alive

__all__ = ["read_run_log"]

_POLL = 0.1
_NEVER_STARTED = 30.0


def read_run_log(runtime: Runtime, run: Resource, options: LogOptions) -> Iterator[bytes]:
    if options.task is None:
        if options.attempt is not None:
            raise InvalidError("attempt needs a task: ketch logs run NAME --task T --attempt N")
        return _whole_run(runtime, run, options.follow)
    steps = dict(flatten_tasks(run.status.get("tasks") or {}))
    st = steps.get(options.task.strip("/"))
    if st is None and not options.follow:
        known = ", ".join(p for p, s in steps.items() if s.get("dir")) or "none yet"
        raise NotFoundError(f"run {run.name!r} has no step {options.task!r}; steps: {known}")
    return _one_task(runtime, run, options)


def _task_dir(st: dict[str, Any], attempt: int | None) -> Path | None:
    if not st.get("dir"):
        return None
    latest = Path(st["dir"])
    return latest.parent / f"attempt-{attempt}" if attempt else latest


def _reload(runtime: Runtime, run: Resource) -> Resource | None:
    try:
        return runtime.store.get(PIPELINE_RUN, run.namespace, run.name)
    except NotFoundError:
        return None


def _one_task(runtime: Runtime, run: Resource, options: LogOptions) -> Iterator[bytes]:
    assert options.task is not None
    path = options.task.strip("/")
    deadline = time.monotonic() + options.start_timeout
    directory = None
    current: Resource | None = run
    while current is not None:
        st = dict(flatten_tasks(current.status.get("tasks") or {})).get(path) or {}
        directory = _task_dir(st, options.attempt)
        if directory is not None or not options.follow or time.monotonic() > deadline:
            break
        if current.status.get("phase") in TERMINAL_PHASES:
            break
        time.sleep(_POLL)
        current = _reload(runtime, run)
    if directory is None:
        return
    yield from _tail(directory, options.follow)


def _step_over(directory: Path, since: float) -> bool:
    """The step wrote its exit status, or its process is gone (killed or cancelled steps
    write none), or it never started within the time a fork takes."""
    if (directory / EXIT_FILE).exists():
        return True
    if (directory / PID_FILE).exists():
        return not task_alive(directory)
    return time.monotonic() - since > _NEVER_STARTED


def _tail(directory: Path, follow: bool) -> Iterator[bytes]:
    offset = 0
    since = time.monotonic()
    while True:
        ended = _step_over(directory, since)
        try:
            with open(directory / LOG_FILE, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data:
            offset += len(data)
            yield data
        if ended or not follow:
            return
        time.sleep(_POLL)


def _whole_run(runtime: Runtime, run: Resource, follow: bool) -> Iterator[bytes]:
    offsets: dict[str, int] = {}
    partial: dict[str, bytes] = {}
    current: Resource | None = run
    while current is not None:
        terminal = current.status.get("phase") in TERMINAL_PHASES
        steps = sorted(((p, s) for p, s in flatten_tasks(current.status.get("tasks") or {})
                        if s.get("dir")), key=lambda item: float(item[1].get("launchTime") or 0))
        for path, st in steps:
            try:
                with open(Path(st["dir"]) / LOG_FILE, "rb") as f:
                    f.seek(offsets.get(path, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            offsets[path] = offsets.get(path, 0) + len(data)
            lines = (partial.pop(path, b"") + data).split(b"\n")
            if lines[-1]:
                partial[path] = lines[-1]
            for line in lines[:-1]:
                yield f"[{path}] ".encode() + line + b"\n"
        if terminal or not follow:
            for path, rest in partial.items():
                yield f"[{path}] ".encode() + rest + b"\n"
            return
        time.sleep(_POLL)
        current = _reload(runtime, run)
