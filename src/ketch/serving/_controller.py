"""The InferenceService controller: one model-server process per service.

Each reconcile compares the service's generation with the running revision:
a new generation starts a new model server (``python -m ketch.serving.modelserver``)
as an executor work unit, waits for ``/v2/health/ready``, then points
``status.url`` at it and stops the previous revision — so the previous one keeps
serving until the new one is ready, and keeps serving if the new one fails to
load. The claim on a revision is written before its process starts, as for
Jobs, so two control planes never both run it.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from typing import Any

import httpx

from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import ConflictError, ExecutorError, KetchError, NotFoundError
from ketch.core.executors import Handle, ResourceRequest, UnitState, WorkUnit
from ketch.core.quantity import parse_cpu, parse_memory
from ketch.core.resources import Resource, now, set_condition
from ketch.core.runtime import LEASE_TTL, Runtime
from ketch.serving._kind import INFERENCE_SERVICE, InferenceServiceSpec
from ketch.serving._storage import local_model_path

__all__ = ["FINALIZER", "InferenceServiceController"]

log = logging.getLogger("ketch.serving")

FINALIZER = "serving.ketch.dev/cleanup"
_LOAD_TIMEOUT = 300.0
_HEALTH_EVERY = 5.0
_RETRY = 10.0
_NOT_YET = ("minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "canaryTrafficPercent",
            "containerConcurrency", "batcher", "logger", "containers")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1.0).is_success
    except httpx.HTTPError:
        return False


def _request(resources: dict[str, Any] | None) -> ResourceRequest:
    requests = (resources or {}).get("requests") or (resources or {}).get("limits") or {}
    gpu = requests.get("nvidia.com/gpu", 0)
    # A model server is long-lived: unless it asks, it holds no CPU slot (Jobs would starve).
    return ResourceRequest(cpu=parse_cpu(requests["cpu"]) if "cpu" in requests else 0.0,
                           memory=parse_memory(requests["memory"]) if "memory" in requests
                           else 0, gpu=int(gpu))


class InferenceServiceController(Controller):
    kind = INFERENCE_SERVICE

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime
        self.store = runtime.store

    def _write(self, obj: Resource, status: dict[str, Any]) -> Resource:
        return self.store.update_status(INFERENCE_SERVICE, obj.model_copy(update={
            "status": status}))

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            obj = self.store.get(INFERENCE_SERVICE, key.namespace, key.name)
        except NotFoundError:
            return None
        status = dict(obj.status)
        owner = status.get("controlPlane")
        if owner and owner != self.rt.id and self.rt.is_alive(owner):
            return Result(requeue_after=LEASE_TTL / 2)
        if obj.metadata.deletion_timestamp:
            return self._delete(obj, status)
        spec = InferenceServiceSpec.model_validate(obj.spec)
        generation = obj.metadata.generation or 1
        status["controlPlane"] = self.rt.id
        status["observedGeneration"] = generation
        _unsupported(status, obj.spec)
        pending = status.get("pending")
        if pending and pending.get("generation") != generation:
            self._stop(pending)  # a newer spec replaced a revision still loading
            status["pending"] = pending = None
        if pending:
            return self._watch_pending(obj, status, pending)
        active = status.get("active")
        if active and active.get("generation") == generation:
            return self._watch_active(obj, status, active)
        return self._start_revision(obj, status, spec, generation)

    # -- revisions -------------------------------------------------------------

    def _start_revision(self, obj: Resource, status: dict[str, Any],
                        spec: InferenceServiceSpec, generation: int) -> Result | None:
        retry_after = float(status.get("retryAfter") or 0)
        if retry_after > time.time() and status.get("failedGeneration") == generation:
            self._write(obj, status)
            return Result(requeue_after=retry_after - time.time())
        fmt, uri, resources = spec.predictor.format_and_uri()
        if not fmt or not uri:
            return self._fail(obj, status, generation, "InvalidSpec",
                              "predictor needs a model format and a storageUri")
        try:
            path = local_model_path(uri, store=self.store, namespace=obj.namespace,
                                    cache=self.rt.settings.home / "models")
        except KetchError as err:
            return self._fail(obj, status, generation, "StorageUriError", err.message)
        port = _free_port()
        unit_id = f"{obj.metadata.uid}-g{generation}-{int(time.time())}"
        status["pending"] = {"unitId": unit_id, "generation": generation, "port": port,
                             "started": time.time()}
        _model_state(status, "Loading", None)
        _conditions(status, ready=bool(status.get("active")), reason="Loading",
                    message=f"revision {generation} is loading {uri}")
        obj = self._write(obj, status)  # the claim, before the process exists
        unit = WorkUnit(unit_id=unit_id, command=[
            sys.executable, "-m", "ketch.serving.modelserver", "--name", obj.name,
            "--model-dir", str(path), "--format", fmt, "--port", str(port)],
            resources=_request(resources),
            log_key=f"logs/{obj.namespace}/inferenceservices/{obj.name}/{unit_id}.log")
        try:
            handle = self.rt.executor.submit(unit)
        except ExecutorError as err:
            status["pending"] = None
            return self._fail(obj, status, generation, "StartError", err.message)
        status["pending"] = {**status["pending"], "handle": handle}
        self._write(obj, status)
        return Result(requeue_after=0.2)

    def _watch_pending(self, obj: Resource, status: dict[str, Any],
                       pending: dict[str, Any]) -> Result | None:
        handle = pending.get("handle") or self.rt.executor.lookup(pending["unitId"])
        if handle is None:  # claimed, never started: try again
            status["pending"] = None
            self._write(obj, status)
            return Result(requeue_after=0)
        state = self.rt.executor.poll(handle)
        if state.state is not UnitState.RUNNING:
            tail = self._log_tail(handle)
            self._stop({"handle": handle})
            status["pending"] = None
            return self._fail(obj, status, pending["generation"], "ModelLoadFailed",
                              tail or state.message)
        if _ready(int(pending["port"])):
            previous = status.get("active")
            status["active"] = {**pending, "handle": handle}
            status["pending"] = None
            status.pop("retryAfter", None)
            status.pop("failedGeneration", None)
            self._serving(status, int(pending["port"]), pending["generation"])
            self._write(obj, status)
            if previous:
                self._stop(previous)  # the new revision serves: retire the old one
            return Result(requeue_after=_HEALTH_EVERY)
        if time.time() - float(pending.get("started", time.time())) > _LOAD_TIMEOUT:
            self._stop({"handle": handle})
            status["pending"] = None
            return self._fail(obj, status, pending["generation"], "ModelLoadTimeout",
                              f"not ready after {_LOAD_TIMEOUT:.0f}s")
        self._write(obj, status)
        return Result(requeue_after=0.2)

    def _watch_active(self, obj: Resource, status: dict[str, Any],
                      active: dict[str, Any]) -> Result | None:
        handle = active.get("handle")
        state = self.rt.executor.poll(handle) if handle else None
        if state is None or state.state is not UnitState.RUNNING:
            # The serving process died: start the same revision again.
            if handle:
                self._stop({"handle": handle})
            status["active"] = None
            _conditions(status, ready=False, reason="PredictorDied",
                        message=state.message if state else "no process")
            self._write(obj, status)
            return Result(requeue_after=0)
        if not _ready(int(active["port"])):
            _conditions(status, ready=False, reason="NotReady",
                        message="the model server does not answer /v2/health/ready")
        else:
            self._serving(status, int(active["port"]), active["generation"])
        self._write(obj, status)
        return Result(requeue_after=_HEALTH_EVERY)

    # -- status ----------------------------------------------------------------

    def _serving(self, status: dict[str, Any], port: int, generation: int) -> None:
        url = f"http://127.0.0.1:{port}"
        status["url"] = url
        status["address"] = {"url": url}
        revision = f"{generation}"
        status["components"] = {"predictor": {
            "url": url, "latestReadyRevision": revision, "latestCreatedRevision": revision,
            "traffic": [{"revisionName": revision, "percent": 100, "latestRevision": True}]}}
        _model_state(status, "Loaded", None)
        _conditions(status, ready=True, reason="", message="")

    def _fail(self, obj: Resource, status: dict[str, Any], generation: int, reason: str,
              message: str) -> Result:
        status["retryAfter"] = time.time() + _RETRY
        status["failedGeneration"] = generation
        _model_state(status, "FailedToLoad", {"reason": reason, "message": message,
                                              "time": now()})
        serving = bool(status.get("active"))
        # The previous revision, if any, keeps serving: Ready stays as it was.
        _conditions(status, ready=serving, reason=reason if not serving else "",
                    message=message if not serving else "", predictor_reason=reason,
                    predictor_message=message)
        try:
            self._write(obj, status)
        except ConflictError:
            return Result(requeue_after=0)
        return Result(requeue_after=_RETRY)

    def _log_tail(self, handle: Handle) -> str:
        try:
            text = b"".join(self.rt.executor.logs(handle)).decode(errors="replace")
        except KetchError:
            return ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return lines[-1][:500] if lines else ""

    def _stop(self, revision: dict[str, Any]) -> None:
        handle = revision.get("handle") or (self.rt.executor.lookup(revision["unitId"])
                                            if revision.get("unitId") else None)
        if handle:
            self.rt.executor.cancel(handle, grace_seconds=3.0)
            self.rt.executor.finalize(handle)
            self.rt.executor.forget(handle)

    def _delete(self, obj: Resource, status: dict[str, Any]) -> Result | None:
        for key in ("pending", "active"):
            if status.get(key):
                self._stop(status[key])
        meta = obj.metadata.model_copy(update={
            "finalizers": [f for f in obj.metadata.finalizers if f != FINALIZER]})
        self.store.update(INFERENCE_SERVICE, obj.model_copy(update={"metadata": meta}))
        return None


def _model_state(status: dict[str, Any], state: str, failure: dict[str, Any] | None) -> None:
    model_status: dict[str, Any] = {
        "states": {"activeModelState": state if state != "Loading" or not status.get("active")
                   else "Loaded", "targetModelState": state},
        "transitionStatus": {"Loaded": "UpToDate", "Loading": "InProgress",
                             "FailedToLoad": "BlockedByFailedLoad"}.get(state, "InProgress"),
    }
    if failure:
        model_status["lastFailureInfo"] = failure
    status["modelStatus"] = model_status


def _conditions(status: dict[str, Any], *, ready: bool, reason: str, message: str,
                predictor_reason: str | None = None,
                predictor_message: str | None = None) -> None:
    """Ready, PredictorReady and IngressReady first (``ketch get`` shows the first),
    then any other conditions as they were."""
    mine = ("Ready", "PredictorReady", "IngressReady")
    current = list(status.get("conditions") or [])
    holder: dict[str, Any] = {"conditions": [c for c in current if c.get("type") in mine]}
    set_condition(holder, "Ready", ready, reason, message)
    set_condition(holder, "PredictorReady", ready if predictor_reason is None else False,
                  predictor_reason or reason, predictor_message or message)
    set_condition(holder, "IngressReady", ready, reason, message)
    ordered = sorted(holder["conditions"], key=lambda c: mine.index(c["type"]))
    status["conditions"] = ordered + [c for c in current if c.get("type") not in mine]


def _unsupported(status: dict[str, Any], spec: dict[str, Any]) -> None:
    predictor = spec.get("predictor") or {}
    named = [f"predictor.{k}" for k in _NOT_YET if k in predictor
             and not (k in ("minReplicas", "maxReplicas") and predictor[k] in (0, 1))]
    named += [k for k in ("transformer", "explainer") if k in spec]
    holder = {"conditions": list(status.get("conditions") or [])}
    if named:
        set_condition(holder, "Unsupported", True, "NotYetHonoured",
                      "ketch runs one replica per service and does not yet honour: "
                      + ", ".join(named))
    else:
        holder["conditions"] = [c for c in holder["conditions"] if c.get("type") != "Unsupported"]
    status["conditions"] = holder["conditions"]
