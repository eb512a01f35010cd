"""The PipelineRun controller: drives runs with ``RunEngine`` and writes their status.

A run belongs to one control plane at a time (``status.controlPlane``); a live owner's
runs are left alone, a dead owner's are adopted: its running steps are executor units
that keep running, and the handles in the run's status reach them (ADR 007). Every step
of the engine ends in at most one status write, guarded by the resourceVersion it read;
the units that ended in it are forgotten only once that write landed.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import KetchError, NotFoundError
from ketch.core.resources import Resource, now, set_condition
from ketch.core.runtime import LEASE_TTL, Runtime
from ketch.pipelines._engine import RunContext, RunEngine
from ketch.pipelines._inputs import root_arguments
from ketch.pipelines._ir import PipelineSpec, parse_pipeline_spec
from ketch.pipelines._kind import PIPELINE_RUN, TERMINAL_PHASES, flatten_tasks
from ketch.pipelines._launch import run_of
from ketch.pipelines._lineage import RunLineage

__all__ = ["FINALIZER", "PipelineRunController"]

log = logging.getLogger("ketch.pipelines")

FINALIZER = "pipelines.ketch.dev/run-cleanup"


class PipelineRunController(Controller):
    kind = PIPELINE_RUN
    workers = 2

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime
        self.store = runtime.store
        self._keys: dict[str, ObjectKey] = {}
        # Runs a step of which found the executor full: any unit's end (a Job's too,
        # since they share the budget) may let them go on.
        self._waiting: set[ObjectKey] = set()
        # uid -> (resourceVersion we last wrote, the poll we asked for, steps ended as of
        # that pass): the write wakes this controller again, and that wake-up alone has
        # nothing to do unless a step ended meanwhile.
        self._own_write: dict[str, tuple[str, float, int]] = {}
        self._exits: dict[str, int] = {}
        self._specs: dict[tuple[str, int], PipelineSpec] = {}
        # The run as this controller last wrote it, while no one else has written it
        # since (its resourceVersion is still the stored one): a step then reads one
        # column instead of the whole run, whose IR (one component and one executor per
        # task in kfp's IR) and task tree grow with the pipeline. Taken out while a
        # reconcile works on it; put back only after a write succeeded.
        self._held: dict[ObjectKey, Resource] = {}
        self._lock = threading.Lock()
        self._unsubscribe = runtime.executor.subscribe(self._on_exit)

    def _on_exit(self, unit: str) -> None:
        uid = run_of(unit)
        with self._lock:
            key = self._keys.get(uid)
            if key is not None:
                self._exits[uid] = self._exits.get(uid, 0) + 1
            waiting = set(self._waiting) - {key}
            self._waiting.clear()
        if key is not None:
            self.enqueue(key)
        # Slots came free: runs waiting for them may go on.
        for other in waiting:
            self.enqueue(other)

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self._unsubscribe()

    def _spec(self, obj: Resource) -> PipelineSpec:
        cache_key = (str(obj.metadata.uid), int(obj.metadata.generation or 0))
        with self._lock:
            found = self._specs.get(cache_key)
        if found is None:
            found = parse_pipeline_spec(self._ir(obj))
            with self._lock:
                self._specs[cache_key] = found
        return found

    def _ir(self, obj: Resource) -> dict[str, Any]:
        if obj.spec.get("pipelineSpec") is not None:
            return dict(obj.spec["pipelineSpec"])
        from ketch.pipelines._refs import resolve_pipeline_ref

        return resolve_pipeline_ref(self.rt, obj.namespace, obj.spec["pipelineRef"])

    def _read(self, key: ObjectKey) -> Resource:
        with self._lock:
            held = self._held.pop(key, None)
        if held is not None and held.metadata.resource_version == self.store.resource_version(
                PIPELINE_RUN, key.namespace, key.name):
            return held
        return self.store.get(PIPELINE_RUN, key.namespace, key.name)

    def _hold(self, key: ObjectKey, obj: Resource) -> None:
        with self._lock:
            self._held[key] = obj

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            obj = self._read(key)
        except NotFoundError:
            return None
        status = obj.status  # freshly parsed from the store, or held by us: ours to change
        if obj.metadata.deletion_timestamp:
            return self._delete(obj, status)
        if status.get("phase") in TERMINAL_PHASES:
            self._forget(obj)
            return None
        owner = status.get("controlPlane")
        if owner and owner != self.rt.id and self.rt.is_alive(owner):
            return Result(requeue_after=LEASE_TTL / 2)
        uid = str(obj.metadata.uid)
        with self._lock:
            self._keys[uid] = key
            own = self._own_write.pop(uid, None)
            exits = self._exits.get(uid, 0)
        if own is not None and (own[0], own[2]) == (obj.metadata.resource_version, exits):
            self._hold(key, obj)  # unchanged: still what is stored
            return Result(requeue_after=own[1])
        try:
            spec = self._spec(obj)
            params = root_arguments(spec, dict(obj.spec.get("arguments") or {}))
        except KetchError as err:
            return self._finish(obj, status, "Failed", f"cannot run: {err}")
        # Only the engine's own flag tells whether tasks changed: comparing or copying
        # the task tree on every step costs as much as the step (a 200-wide loop).
        before = _top_level(status)
        status["controlPlane"] = self.rt.id
        status["pipelineName"] = spec.name
        if status.get("phase", "Pending") == "Pending":
            status["phase"] = "Running"
            status["startTime"] = now()
            set_condition(status, "Running", True, "Started", "")
        engine = RunEngine(spec, self._context(obj, spec), status.setdefault("tasks", {}),
                           executor=self.rt.executor, artifacts=self.rt.artifacts,
                           lineage=RunLineage(
                               self.store, namespace=obj.namespace, pipeline=spec.name,
                               run=obj.name, contexts=status.setdefault("engine", {})
                               .setdefault("contexts", {})),
                           cancel=bool(obj.spec.get("cancel")))
        result = engine.step(params)
        if engine.slots_full:
            with self._lock:
                self._waiting.add(key)
        if result.phase != "Running":
            status["outputs"] = result.outputs
            outcome = self._finish(obj, status, result.phase, result.message)
            self._forget_units(engine)
            return outcome
        poll = result.poll_after if result.poll_after is not None else 5.0
        if engine.changed or before != _top_level(status):
            # The status alone goes to the store; the object held is ours, with the new
            # resourceVersion (spec and metadata are as read: only status was changed).
            rev = self.store.write_status(PIPELINE_RUN,
                                          obj.model_copy(update={"status": status}))
            with self._lock:
                self._own_write[uid] = (rev, poll, exits)
            self._hold(key, obj.model_copy(update={
                "status": status,
                "metadata": obj.metadata.model_copy(update={"resource_version": rev})}))
        self._forget_units(engine)
        return Result(requeue_after=poll)

    def _forget_units(self, engine: RunEngine) -> None:
        """The ended steps' units, once their end is in the stored status (a crash before
        this leaves only scratch files behind, never a step to run again)."""
        for handle in engine.ended:
            self.rt.executor.forget(handle)

    def _context(self, obj: Resource, spec: PipelineSpec) -> RunContext:
        root = obj.spec.get("pipelineRoot") or spec.default_root
        if not root or ("://" in root and not root.startswith("file://")):
            # Under the artifact store, local or remote (s3://...: steps then stage their
            # artifacts through it). A remote root compiled into the IR names a cluster's
            # bucket, which this store stands in for.
            root = self.rt.artifacts.uri(
                f"pipelines/{obj.namespace}/{obj.name}-{str(obj.metadata.uid)[:8]}")
        elif root.startswith("file://"):
            root = root[len("file://"):]
        env = {"KETCH_PIPELINE_RUN": obj.name, "KETCH_PIPELINE_RUN_NAMESPACE": obj.namespace,
               "KETCH_PIPELINE_RUN_UID": str(obj.metadata.uid)}
        return RunContext(
            namespace=obj.namespace, name=obj.name, uid=str(obj.metadata.uid),
            create_time=str(obj.metadata.creation_timestamp or now()),
            schedule_time=str(obj.spec.get("scheduledTime")
                              or obj.metadata.creation_timestamp or now()),
            arguments=obj.spec.get("arguments") or {}, caching=bool(obj.spec.get("caching",
                                                                                True)),
            artifact_root=str(root), env=env,
            install_packages=bool(obj.spec.get("installPackages")))

    def _finish(self, obj: Resource, status: dict[str, Any], phase: str,
                message: str | None) -> Result | None:
        status.update(phase=phase, completionTime=now(), controlPlane=self.rt.id)
        if message:
            status["message"] = message
        set_condition(status, "Running", False, phase, "")
        set_condition(status, phase, True, phase, message or "")
        self.store.update_status(PIPELINE_RUN, obj.model_copy(update={"status": status}))
        self._forget(obj)
        return None

    def _forget(self, obj: Resource) -> None:
        uid = str(obj.metadata.uid)
        with self._lock:
            self._keys.pop(uid, None)
            self._own_write.pop(uid, None)
            self._exits.pop(uid, None)
            self._waiting.discard(ObjectKey(obj.namespace, obj.name))
            self._held.pop(ObjectKey(obj.namespace, obj.name), None)
            for cache_key in [k for k in self._specs if k[0] == uid]:
                del self._specs[cache_key]

    def _delete(self, obj: Resource, status: dict[str, Any]) -> Result | None:
        owner = status.get("controlPlane")
        if (status.get("phase") not in TERMINAL_PHASES and owner and owner != self.rt.id
                and self.rt.is_alive(owner)):
            return Result(requeue_after=1.0)  # its owner stops the steps
        self._stop_all(status.get("tasks") or {})
        self._forget(obj)
        meta = obj.metadata.model_copy(update={
            "finalizers": [f for f in obj.metadata.finalizers if f != FINALIZER]})
        self.store.update(PIPELINE_RUN, obj.model_copy(update={"metadata": meta}))
        return None

    def _stop_all(self, tasks: dict[str, Any]) -> None:
        """Every unit the run still has: stopped, its log kept, its scratch removed."""
        executor = self.rt.executor
        for _, st in flatten_tasks(tasks):
            handle: dict[str, Any] | None = st.get("unit")
            if handle is not None and executor.is_handle(handle):
                executor.cancel(handle, grace_seconds=2.0)
                executor.finalize(handle)
                executor.forget(handle)


def _top_level(status: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in status.items() if k not in ("tasks", "engine")},
                      sort_keys=True, default=str)
