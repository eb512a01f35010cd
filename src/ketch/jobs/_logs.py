"""Streaming a Job's log: the live attempt from the executor, a finished one from
the artifact store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ketch.core.errors import InvalidError, NotFoundError
from ketch.core.executors import Handle
from ketch.core.kinds import LogOptions
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.jobs._controller import log_key
from ketch.jobs._kind import JOB, TERMINAL_PHASES

__all__ = ["read_job_log"]


def read_job_log(runtime: Runtime, job: Resource, options: LogOptions) -> Iterator[bytes]:
    """The log of ``options.attempt`` (default: the latest) of ``job``.

    Checks the options at once (``InvalidError`` for an attempt that does not
    exist) and returns a lazy stream.
    """
    if options.task is not None:
        raise InvalidError(f"jobs have no tasks: job {job.name!r} has one log per attempt")
    attempts = int(job.status.get("attempts") or 0)
    if options.attempt is not None and not 1 <= options.attempt <= max(attempts, 1):
        raise InvalidError(f"job {job.name!r} has attempts 1..{attempts}, not {options.attempt}")
    return _stream(runtime, job, options)


def _stream(runtime: Runtime, job: Resource, options: LogOptions) -> Iterator[bytes]:
    attempts = int(job.status.get("attempts") or 0)
    if attempts == 0 and options.follow:
        job = _wait_started(runtime, job, options.start_timeout)
        attempts = int(job.status.get("attempts") or 0)
    if attempts == 0:
        return
    attempt = min(options.attempt or attempts, attempts)
    executor = runtime.executor
    handle = _handle(runtime, job, attempt)
    if handle is None and options.follow and attempt == attempts:
        # Claimed but the process is only starting: give it a moment.
        deadline = time.monotonic() + 10
        while handle is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                job = runtime.store.get(JOB, job.namespace, job.name)
            except NotFoundError:
                break
            handle = _handle(runtime, job, attempt)
    if handle is not None:
        yield from executor.logs(handle, follow=options.follow)
        return
    key = log_key(job, attempt)
    if runtime.artifacts.exists(key):
        yield from runtime.artifacts.iter_bytes(key)


def _handle(runtime: Runtime, job: Resource, attempt: int) -> Handle | None:
    """The unit of ``attempt``: the stored handle when it is the running one (a unit
    another control plane started, from its own KETCH_HOME, is in no lookup here),
    else the executor's lookup by the attempt's unit id."""
    unit_id = f"{job.metadata.uid}-{attempt}"
    active: dict[str, Any] = job.status.get("active") or {}
    if runtime.executor.is_handle(active) and active.get("unitId") == unit_id:
        return dict(active)
    return runtime.executor.lookup(unit_id)


def _wait_started(runtime: Runtime, job: Resource, timeout: float) -> Resource:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            job = runtime.store.get(JOB, job.namespace, job.name)
        except NotFoundError:
            return job
        if job.status.get("attempts") or job.status.get("phase") in TERMINAL_PHASES:
            return job
        time.sleep(0.1)
    return job
