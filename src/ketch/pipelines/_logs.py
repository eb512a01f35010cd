"""``ketch logs run NAME [--task T] [-f]``: a run's step logs.

Every step is an executor unit (ADR 007): a running step's log is read from the
executor (live, through the handle in the task's status), an ended step's from the
artifact store, where ``finalize`` put it (``_launch.log_key``). Nothing here reads a
file of the control plane's host.

One task: its log as is (the latest attempt, or ``attempt``). The whole run: every
step's lines prefixed with ``[task]``, as ``argo logs`` does, in the order the steps
started; with follow, until the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ketch.core.errors import InvalidError, NotFoundError
from ketch.core.kinds import LogOptions
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.pipelines._kind import PIPELINE_RUN, TERMINAL_PHASES, flatten_tasks
from ketch.pipelines._launch import log_key

__all__ = ["read_run_log"]

_POLL = 0.1


def read_run_log(runtime: Runtime, run: Resource, options: LogOptions) -> Iterator[bytes]:
    if options.task is None:
        if options.attempt is not None:
            raise InvalidError("attempt needs a task: ketch logs run NAME --task T --attempt N")
        return _whole_run(runtime, run, options.follow)
    steps = dict(flatten_tasks(run.status.get("tasks") or {}))
    st = steps.get(options.task.strip("/"))
    if st is None and not options.follow:
        known = ", ".join(p for p, s in steps.items() if s.get("attempts")) or "none yet"
        raise NotFoundError(f"run {run.name!r} has no step {options.task!r}; steps: {known}")
    return _one_task(runtime, run, options)


def _reload(runtime: Runtime, run: Resource) -> Resource | None:
    try:
        return runtime.store.get(PIPELINE_RUN, run.namespace, run.name)
    except NotFoundError:
        return None


def _stored(runtime: Runtime, run: Resource, path: str, attempt: int) -> Iterator[bytes]:
    key = log_key(run.namespace, run.name, str(run.metadata.uid), path, attempt)
    try:
        yield from runtime.artifacts.iter_bytes(key)
    except NotFoundError:
        return  # the attempt never started, or was cancelled before its unit existed


def _live(st: dict[str, Any], runtime: Runtime, attempt: int | None) -> dict[str, Any] | None:
    """The unit handle of the step's running attempt (when that is the one asked for)."""
    handle = st.get("unit")
    if not handle or not runtime.executor.is_handle(handle):
        return None
    if attempt is not None and attempt != int(st.get("attempts") or 0):
        return None
    return dict(handle)


def _one_task(runtime: Runtime, run: Resource, options: LogOptions) -> Iterator[bytes]:
    assert options.task is not None
    path = options.task.strip("/")
    deadline = time.monotonic() + options.start_timeout
    current: Resource | None = run
    st: dict[str, Any] = {}
    while current is not None:
        st = dict(flatten_tasks(current.status.get("tasks") or {})).get(path) or {}
        if st.get("attempts") or not options.follow or time.monotonic() > deadline:
            break
        if current.status.get("phase") in TERMINAL_PHASES:
            break
        time.sleep(_POLL)
        current = _reload(runtime, run)
    if not st.get("attempts"):
        return
    handle = _live(st, runtime, options.attempt)
    if handle is not None:
        # Live from the executor; after the unit ended, from the store (the executor
        # falls back to it once the log was moved there).
        yield from runtime.executor.logs(handle, follow=options.follow)
        return
    yield from _stored(runtime, run, path, options.attempt or int(st["attempts"]))


def _whole_run(runtime: Runtime, run: Resource, follow: bool) -> Iterator[bytes]:
    # Keyed by (path, attempt): a retried step's new attempt is a log of its own.
    offsets: dict[tuple[str, int], int] = {}
    partial: dict[tuple[str, int], bytes] = {}
    complete: set[tuple[str, int]] = set()  # ended attempts whose stored log was read
    current: Resource | None = run
    while current is not None:
        terminal = current.status.get("phase") in TERMINAL_PHASES
        steps = sorted(((p, s) for p, s in flatten_tasks(current.status.get("tasks") or {})
                        if s.get("attempts") and (p, int(s["attempts"])) not in complete),
                       key=lambda item: float(item[1].get("launchTime") or 0))
        for path, st in steps:
            key = (path, int(st["attempts"]))
            handle = _live(st, runtime, None)
            if handle is not None:
                chunks = runtime.executor.logs(handle)
            else:
                chunks = _stored(runtime, current, path, key[1])
                if st.get("phase") in ("Succeeded", "Failed", "Cancelled"):
                    complete.add(key)
            data = _skip(chunks, offsets.get(key, 0))
            offsets[key] = offsets.get(key, 0) + len(data)
            lines = (partial.pop(key, b"") + data).split(b"\n")
            if lines[-1]:
                partial[key] = lines[-1]
            for line in lines[:-1]:
                yield f"[{path}] ".encode() + line + b"\n"
        if terminal or not follow:
            for (path, _), rest in partial.items():
                yield f"[{path}] ".encode() + rest + b"\n"
            return
        time.sleep(_POLL)
        current = _reload(runtime, run)


def _skip(chunks: Iterator[bytes], offset: int) -> bytes:
    """What ``chunks`` hold past ``offset`` bytes (read already)."""
    data = b"".join(chunks)
    return data[offset:]
