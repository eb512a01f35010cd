"""The Job controller: run each Job's attempts on the executor until it ends.

States and who moves them (every write is guarded by ``resourceVersion``)::

    Pending --claim--> (active={unitId}) --submit--> Running --exit 0--> Succeeded
       ^                                                |  --exit!=0, retries left--> Pending
       '------------- backoff (retryAfter) -------------'  --no retries left--> Failed
    any --spec.cancel--> Cancelled        any --delete--> work killed, object removed

The claim is written *before* the process starts, so two control planes on one
database cannot both start an attempt: one of the two claims gets a conflict.
The work-unit id is ``<uid>-<attempt>``, so after a crash between the claim
and writing the handle, ``executor.lookup`` still finds the process.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ketch.core.component_backoff import backoff_delay
from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import (
    ConflictError,
    ExecutorError,
    InsufficientResourcesError,
    NotFoundError,
)
from ketch.core.executors import Handle, ResourceRequest, UnitState, UnitStatus, WorkUnit
from ketch.core.kinds import validation_fields
from ketch.core.quantity import parse_cpu, parse_memory
from ketch.core.resources import Resource, now, set_condition
from ketch.core.runtime import LEASE_TTL, Runtime
from ketch.jobs._kind import JOB, TERMINAL_PHASES, JobSpec, JobStatus

__all__ = ["FINALIZER", "JobController", "log_key"]

log = logging.getLogger("ketch.jobs")

FINALIZER = "ketch.dev/job-cleanup"
_MAX_BACKOFF = 60.0
_RUNNING_RECHECK = 5.0


def log_prefix(job: Resource) -> str:
    """Where the logs of every attempt of one Job live in the artifact store."""
    return f"logs/{job.namespace}/jobs/{job.name}/{job.metadata.uid}"


def log_key(job: Resource, attempt: int) -> str:
    """Where an attempt's log lives in the artifact store."""
    return f"{log_prefix(job)}/attempt-{attempt}.log"


def _request(spec: JobSpec) -> ResourceRequest:
    res = spec.resources
    return ResourceRequest(cpu=parse_cpu(res.cpu),
                           memory=parse_memory(res.memory) if res.memory is not None else 0,
                           gpu=res.gpu, custom=dict(res.custom))


def _command(spec: JobSpec) -> list[str]:
    if spec.command is not None:
        return [*spec.command, *spec.args]
    return [sys.executable, "-m", "ketch.core.entrypoint", str(spec.python), *spec.args]


class JobController(Controller):
    kind = JOB

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime
        self.store = runtime.store
        self._units: dict[str, ObjectKey] = {}
        # Jobs waiting for free slots, woken when any unit ends.
        self._pending: set[ObjectKey] = set()
        self._lock = threading.Lock()
        runtime.executor.subscribe(self._on_exit)

    def _on_exit(self, unit_id: str) -> None:
        with self._lock:
            key = self._units.pop(unit_id, None)
        if key is not None:
            self.enqueue(key)
        # Slots were freed: pending jobs may fit now.
        for other in self._waiting():
            self.enqueue(other)

    def _waiting(self) -> list[ObjectKey]:
        with self._lock:
            return list(self._pending)

    def _track(self, unit_id: str, key: ObjectKey) -> None:
        with self._lock:
            self._units[unit_id] = key

    # -- status writes ---------------------------------------------------------

    def _write(self, job: Resource, status: JobStatus) -> Resource:
        """Write status guarded by the job's resourceVersion (ConflictError if stale),
        returning the job as written. The store's status-only write reads nothing back
        (the version check means the stored object is ``job``): the claim write stands
        between a Job's reconcile and its process start, and a whole-object update read,
        decoded and validated the job again there."""
        wire = status.to_wire()
        version = self.store.write_status(JOB, job.model_copy(update={"status": wire}))
        meta = job.metadata.model_copy(update={"resource_version": version})
        return job.model_copy(update={"status": wire, "metadata": meta})

    def _update(self, key: ObjectKey, mutate: Callable[[Resource, JobStatus], bool]) -> None:
        """Re-read and apply ``mutate`` until the write lands (it returns False to skip)."""
        for _ in range(10):
            try:
                job = self.store.get(JOB, key.namespace, key.name)
            except NotFoundError:
                return
            status = JobStatus.model_validate(job.status)
            if not mutate(job, status):
                return
            try:
                self._write(job, status)
                return
            except ConflictError:
                continue
        log.warning("gave up writing status of job %s", key)

    # -- reconcile -------------------------------------------------------------

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            job = self.store.get(JOB, key.namespace, key.name)
        except NotFoundError:
            with self._lock:
                self._pending.discard(key)
            return None
        status = JobStatus.model_validate(job.status)
        # Delete first: a Job whose stored spec no longer parses must still go away.
        if job.metadata.deletion_timestamp:
            return self._delete(key, job, status)
        if status.phase in TERMINAL_PHASES:
            return None
        try:
            spec: JobSpec = JOB.parse_spec(job)
        except ValidationError as err:
            # Stored before admission checked it (an int beyond int64, say): no
            # retry can run it, so it fails once instead of on every reconcile.
            fields = "; ".join(str(f) for f in validation_fields(err, "spec"))
            return self._failed_to_start(key, status.attempts, "InvalidSpec",
                                         f"the stored spec is invalid: {fields}")
        if status.active is not None and status.control_plane != self.rt.id:
            if self.rt.is_alive(status.control_plane):
                return Result(requeue_after=LEASE_TTL / 2)  # another live plane runs it
            status.control_plane = self.rt.id  # adopt the attempt of a dead plane
            job = self._write(job, status)
            log.info("adopted job %s attempt %s", key, status.attempts)
        if spec.cancel:
            return self._cancel(key, job, status)
        if status.active is not None:
            return self._observe(key, job, status, spec)
        return self._start(key, job, status, spec)

    def _start(self, key: ObjectKey, job: Resource, status: JobStatus,
               spec: JobSpec) -> Result | None:
        if status.retry_after is not None and status.retry_after > time.time():
            return Result(requeue_after=status.retry_after - time.time())
        request = _request(spec)
        executor = self.rt.executor
        if not executor.fits(request):
            with self._lock:
                self._pending.add(key)
            never = executor.unschedulable(request)
            reason, message = (("Unschedulable", never) if never is not None else
                               ("Insufficient", "waiting for free slots on the executor"))
            before = status.to_wire()
            _condition(status, "Scheduled", False, reason, message)
            if status.to_wire() != before:
                self._write(job, status)
            return Result(requeue_after=2.0)
        with self._lock:
            self._pending.discard(key)
        attempt = status.attempts + 1
        unit_id = f"{job.metadata.uid}-{attempt}"
        # The claim: after this write no other control plane starts this attempt.
        status.attempts = attempt
        status.control_plane = self.rt.id
        status.active = {"unitId": unit_id}
        status.retry_after = None
        job = self._write(job, status)
        deadline = None
        start = status.start_time or now()
        if spec.active_deadline_seconds:
            # The deadline covers the whole Job, retries included (as Kubernetes).
            elapsed = time.time() - _epoch(status.start_time) if status.start_time else 0.0
            deadline = max(spec.active_deadline_seconds - elapsed, 0.001)
        # Like the Kubernetes downward API: the process knows which Job it is, so
        # what it produces (a registered model, say) can name its source.
        env = {"KETCH_JOB_NAME": job.name, "KETCH_JOB_NAMESPACE": job.namespace,
               "KETCH_JOB_UID": str(job.metadata.uid), "KETCH_JOB_ATTEMPT": str(attempt),
               **spec.env_dict()}
        unit = WorkUnit(unit_id=unit_id, command=_command(spec), env=env,
                        working_dir=spec.working_dir, resources=request,
                        timeout_seconds=deadline, log_key=log_key(job, attempt))
        self._track(unit_id, key)
        try:
            handle = executor.submit(unit)
        except InsufficientResourcesError:
            # Another unit took the slots since fits(): undo the claim and wait.
            with self._lock:
                self._pending.add(key)

            def unclaim(_job: Resource, st: JobStatus) -> bool:
                if st.active is None or st.active.get("unitId") != unit_id:
                    return False
                st.active = None
                st.attempts = max(st.attempts - 1, 0)
                return True

            self._update(key, unclaim)
            return Result(requeue_after=0.5)
        except ExecutorError as err:
            return self._failed_to_start(key, attempt, "StartError", str(err))

        def running(_job: Resource, st: JobStatus) -> bool:
            if st.active is None or st.active.get("unitId") != unit_id:
                return False
            st.active = dict(handle)
            st.phase = "Running"
            st.start_time = st.start_time or start
            _condition(st, "Scheduled", True, "Scheduled", "")
            st.node = executor.node(handle)
            # The unit id, not a pid: the handle is the backend's (a Ray unit has none).
            _condition(st, "Running", True, "Started",
                          f"attempt {attempt} started as unit {unit_id}"
                          + (f" on node {st.node}" if st.node else ""))
            return True

        # Write on top of the claim we just made; re-read only if someone moved it.
        if running(job, status):
            try:
                self._write(job, status)
            except ConflictError:
                self._update(key, running)
        return Result(requeue_after=_RUNNING_RECHECK)

    def _failed_to_start(self, key: ObjectKey, attempt: int, reason: str,
                         message: str) -> Result | None:
        """Fail the Job for a start that no retry can fix (its own spec is at fault)."""
        def failed(_job: Resource, st: JobStatus) -> bool:
            st.active = None
            st.phase = "Failed"
            st.completion_time = now()
            _condition(st, "Running", False, reason, message)
            _condition(st, "Failed", True, reason,
                          f"attempt {attempt} could not start: {message}" if attempt
                          else message)
            return True

        self._update(key, failed)
        return None

    def _handle(self, key: ObjectKey, job: Resource, status: JobStatus) -> Handle | None:
        """The handle of the active attempt, finding it if only the claim was written."""
        active = status.active or {}
        if self.rt.executor.is_handle(active):
            return dict(active)
        handle = self.rt.executor.lookup(str(active.get("unitId")))
        if handle is None:
            return None
        status.active = dict(handle)
        self._write(job, status)
        return handle

    def _observe(self, key: ObjectKey, job: Resource, status: JobStatus,
                 spec: JobSpec) -> Result | None:
        handle = self._handle(key, job, status)
        if handle is None:
            # Claimed but never started (the control plane died in between):
            # the attempt did not happen, so it does not count against retries.
            status.active = None
            status.attempts = max(status.attempts - 1, 0)
            self._write(job, status)
            return Result(requeue_after=0)
        self._track(str(handle.get("unitId")), key)
        result = self.rt.executor.poll(handle)
        if result.state is UnitState.RUNNING:
            if status.phase != "Running":
                status.phase = "Running"
                status.start_time = status.start_time or now()
                self._write(job, status)
            return Result(requeue_after=_RUNNING_RECHECK)
        self.rt.executor.finalize(handle)
        self._finish(job, status, spec, handle, result)
        # The outcome is recorded and the log persisted: local scratch can go.
        self.rt.executor.forget(handle)
        return None

    def _finish(self, job: Resource, status: JobStatus, spec: JobSpec, handle: Handle,
                result: UnitStatus) -> None:
        attempt = status.attempts
        status.active = None
        status.exit_code = result.exit_code
        # The key this controller chose at submit; the handle is the backend's to read.
        status.log_uri = self.rt.artifacts.uri(log_key(job, attempt))
        stamp = now()
        if result.state is UnitState.SUCCEEDED:
            status.phase = "Succeeded"
            status.completion_time = stamp
            _condition(status, "Running", False, "Completed", "")
            _condition(status, "Succeeded", True, "Completed",
                          f"attempt {attempt} exited with code 0")
        elif result.reason != "DeadlineExceeded" and attempt <= spec.backoff_limit:
            delay = backoff_delay(attempt, base=1.0, cap=_MAX_BACKOFF)
            status.phase = "Pending"
            status.retry_after = time.time() + delay
            _condition(status, "Running", False, result.reason or "Error",
                          f"attempt {attempt} failed: {result.message}; retrying in "
                          f"{delay:g}s ({attempt} of {spec.backoff_limit + 1} attempts used)")
        else:
            status.phase = "Failed"
            status.completion_time = stamp
            reason = (result.reason if result.reason == "DeadlineExceeded" or
                      spec.backoff_limit == 0 else "BackoffLimitExceeded")
            _condition(status, "Running", False, result.reason or "Error",
                          result.message)
            _condition(status, "Failed", True, reason or "Error",
                          f"attempt {attempt}: {result.message}")
        self._write(job, status)

    def _cancel(self, key: ObjectKey, job: Resource, status: JobStatus) -> Result | None:
        handle = self._handle(key, job, status) if status.active else None
        if handle is not None:
            self.rt.executor.cancel(handle)
            self.rt.executor.finalize(handle)
            self.rt.executor.forget(handle)
        status.active = None
        status.phase = "Cancelled"
        status.completion_time = now()
        _condition(status, "Running", False, "Cancelled", "")
        _condition(status, "Cancelled", True, "Cancelled", "cancelled by spec.cancel")
        self._write(job, status)
        return None

    def _delete(self, key: ObjectKey, job: Resource, status: JobStatus) -> Result | None:
        owner = status.control_plane
        if status.active and owner != self.rt.id and self.rt.is_alive(owner):
            return Result(requeue_after=1.0)  # its owner kills the work
        executor = self.rt.executor
        # The active attempt by its stored handle: a unit a dead control plane started
        # from its own KETCH_HOME is in no lookup of this executor, yet must be stopped.
        active = dict(status.active or {}) if executor.is_handle(status.active) else None
        for attempt in range(1, status.attempts + 1):
            unit_id = f"{job.metadata.uid}-{attempt}"
            handle = (active if active is not None and active.get("unitId") == unit_id
                      else executor.lookup(unit_id))
            if handle is not None:
                executor.cancel(handle, grace_seconds=2.0)
                executor.forget(handle)
        self.rt.artifacts.delete(log_prefix(job))
        meta = job.metadata.model_copy(update={
            "finalizers": [f for f in job.metadata.finalizers if f != FINALIZER]})
        self.store.update(JOB, job.model_copy(update={"metadata": meta}))
        return None


def _condition(status: JobStatus, type_: str, value: bool, reason: str, message: str) -> None:
    holder: dict[str, Any] = {"conditions": status.conditions}
    set_condition(holder, type_, value, reason, message)
    status.conditions = holder["conditions"]


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
