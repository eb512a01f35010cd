"""The InferenceService controller: a front per service, replicas per revision.

Each service gets a **front** (``ketch.serving._front``), routing to **replicas**
(model servers); each is an executor *server* unit (``WorkUnit.serves``), so the
backend chooses its address and the controller only reads it (``executor.endpoint``):
the front's is ``status.url``, a replica's is pushed to the front in its routing table.
No socket path or port is computed here. A **revision** is one version of the
predictor (its spec without the traffic and scaling knobs, so changing
``canaryTrafficPercent`` or ``maxReplicas`` re-routes or re-scales, it does not
restart models).

Every reconcile, level-triggered:

1. the front runs (restarted if it died, at the address the executor gives the new
   unit) and answers its admin routes, authenticated by the front's own credential;
2. the revision for the current spec exists (a ``model-registry://`` URI is looked up
   to its storage URI; the replica's own storage initializer fetches the bytes, so no
   download ever holds a controller worker); replicas are polled (a dead one is
   removed and replaced; a replica that dies before it was ever ready fails a
   loading revision with its last log line) and probed for readiness;
3. traffic follows KServe: all to the latest ready revision, or with
   ``canaryTrafficPercent: N`` N% to it and the rest to the last revision rolled
   out at 100%; a revision that is neither is retired; a failed revision never
   gets traffic;
4. each revision is scaled by the KPA-like autoscaler (``_autoscale``) on the
   front's measurements, between ``minReplicas`` and ``maxReplicas``;
5. the routing table (ready replicas only) is pushed to the front when it differs,
   and only then are retired replicas stopped, so no request is sent to a stopping one;
6. status: url, conditions, modelStatus, ``components.predictor`` with traffic.

Every process is claimed in status before it is submitted, so a control plane
killed at any line is repaired by the next one: it adopts running units
(``executor.lookup``) and starts what is missing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from ketch.core.component_backoff import backoff_delay
from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import ExecutorError, InvalidError, KetchError, NotFoundError
from ketch.core.executors import ResourceRequest, UnitState
from ketch.core.quantity import parse_cpu, parse_memory
from ketch.core.resources import Resource, now, set_condition
from ketch.core.runtime import LEASE_TTL, Runtime
from ketch.serving._autoscale import ScalePolicy, ScaleState, desired_replicas
from ketch.serving._kind import INFERENCE_SERVICE, InferenceServiceSpec
from ketch.serving._replica_options import SpecError, replica_args
from ketch.serving._router_units import (
    EXIT_STORAGE_FAILED,
    FrontClient,
    admin_secret,
    endpoint_of,
    front_unit,
    log_tail,
    new_front,
    replica_ready,
    replica_secret,
    replica_unit,
    stop_unit,
    token_digest,
    unit_status,
)

__all__ = ["FINALIZER", "InferenceServiceController", "Knobs", "knobs_of"]

log = logging.getLogger("ketch.serving")

FINALIZER = "serving.ketch.dev/cleanup"
_LOAD_TIMEOUT = 300.0
_RETRY = 10.0
_MAX_RETRY = 300.0
# Predictor keys that route or scale a revision rather than define it.
_NOT_REVISION = ("canaryTrafficPercent", "minReplicas", "maxReplicas", "scaleTarget",
                 "scaleMetric", "containerConcurrency", "timeout")
_NOT_YET = ("containers",)
_WINDOW = "autoscaling.knative.dev/window"
_RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
_QUEUE_LIMIT = "serving.ketch.dev/queue-limit"
_QUIET_POLL = 2.0


@dataclass(frozen=True)
class Knobs:
    """Routing and scaling settings resolved from the spec and its annotations."""

    policy: ScalePolicy
    container_concurrency: int
    queue_limit: int
    timeout: float


def _duration(value: str, field: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = value.strip()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise InvalidError(f"{field}: {value!r} is not a duration like 60s or 2m") from None


def knobs_of(obj: Resource, spec: InferenceServiceSpec) -> Knobs:
    """The service's knobs; ``InvalidError`` names a malformed annotation."""
    p = spec.predictor
    notes = obj.metadata.annotations
    minimum = p.min_replicas if p.min_replicas is not None else 1
    # maxReplicas unset (or 0, "no limit" in KServe) runs minReplicas: on one machine
    # ketch scales out only as far as the user says.
    maximum = max(p.max_replicas or 0, minimum, 1)
    cc = p.container_concurrency or 0
    metric = p.scale_metric or "concurrency"
    default_target = (0.7 * cc if cc else 100.0) if metric == "concurrency" else 200.0
    window = _duration(notes.get(_WINDOW, "60s"), f"metadata.annotations[{_WINDOW}]")
    if not 1 <= window <= 3600:
        raise InvalidError(f"metadata.annotations[{_WINDOW}]: between 1s and 1h")
    try:
        queue_limit = int(notes.get(_QUEUE_LIMIT, "100"))
    except ValueError:
        raise InvalidError(f"metadata.annotations[{_QUEUE_LIMIT}]: not an integer") from None
    return Knobs(
        policy=ScalePolicy(min_replicas=minimum, max_replicas=maximum, metric=metric,
                           target=float(p.scale_target or default_target), window=window,
                           scale_to_zero_retention=_duration(
                               notes.get(_RETENTION, "0s"), f"metadata.annotations[{_RETENTION}]")),
        container_concurrency=cc, queue_limit=max(queue_limit, 0),
        timeout=float(p.timeout or 60))


def _request(resources: dict[str, Any] | None) -> ResourceRequest:
    requests = (resources or {}).get("requests") or (resources or {}).get("limits") or {}
    gpu = requests.get("nvidia.com/gpu", 0)
    # Kubernetes' extended resources (any other name): the executor's custom resources.
    custom = {str(k): float(parse_cpu(v)) for k, v in requests.items()
              if k not in _BUILTIN_RESOURCES}
    # A model server is long-lived: unless it asks, it holds no CPU slot (Jobs would starve).
    return ResourceRequest(cpu=parse_cpu(requests["cpu"]) if "cpu" in requests else 0.0,
                           memory=parse_memory(requests["memory"]) if "memory" in requests
                           else 0, gpu=int(gpu), custom=custom)


_BUILTIN_RESOURCES = frozenset({"cpu", "memory", "nvidia.com/gpu", "ephemeral-storage"})


def _revision_key(spec: dict[str, Any]) -> str:
    predictor = {k: v for k, v in (spec.get("predictor") or {}).items()
                 if k not in _NOT_REVISION}
    body = json.dumps([predictor, spec.get("transformer")], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


class _Work:
    """One reconcile's view: the object (kept current across writes) and its status."""

    def __init__(self, controller: InferenceServiceController, obj: Resource) -> None:
        self.controller = controller
        self.obj = obj
        self.status: dict[str, Any] = copy.deepcopy(dict(obj.status))
        self.to_stop: list[dict[str, Any]] = []
        self.busy = False  # something is starting: look again soon

    def save(self) -> None:
        # The status dict stays the one this reconcile works on, so references into
        # it (revisions, replicas) stay valid across writes.
        self.obj = self.controller.store.update_status(
            INFERENCE_SERVICE, self.obj.model_copy(update={"status": copy.deepcopy(
                self.status)}))

    @property
    def revisions(self) -> list[dict[str, Any]]:
        return self.status.setdefault("revisions", [])  # type: ignore[no-any-return]


class InferenceServiceController(Controller):
    """Reconciles InferenceServices; see the module docstring."""

    kind = INFERENCE_SERVICE

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime
        self.store = runtime.store
        self._scalers: dict[tuple[str, str], ScaleState] = {}
        # One admin client per front (by unit id), so a poll reuses its connection.
        self._admins: dict[str, FrontClient] = {}

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            obj = self.store.get(INFERENCE_SERVICE, key.namespace, key.name)
        except NotFoundError:
            return None
        owner = obj.status.get("controlPlane")
        if owner and owner != self.rt.id and self.rt.is_alive(owner):
            return Result(requeue_after=LEASE_TTL / 2)
        work = _Work(self, obj)
        if obj.metadata.deletion_timestamp:
            return self._delete(work)
        spec = InferenceServiceSpec.model_validate(obj.spec)
        status = work.status
        status["controlPlane"] = self.rt.id
        status["observedGeneration"] = obj.metadata.generation or 1
        _unsupported(status, obj.spec)
        self._legacy(work)
        try:
            knobs = knobs_of(obj, spec)
        except InvalidError as err:
            _conditions(status, ingress=False, serving=False, predictor=False,
                        reason="InvalidSpec", message=err.message,
                        stalled={"reason": "InvalidSpec", "message": err.message})
            work.save()
            return None
        front = self._front(work)
        stats = self._admin(front).stats(int(knobs.policy.window)) if front else None
        latest = self._latest(work, spec)
        for rev in list(work.revisions):
            self._observe(work, rev, latest)
        plan = self._traffic(work, spec, latest)
        self._scale(work, knobs, plan, stats)
        if front is not None and stats is not None:
            self._route(work, front, knobs, plan, stats)
        for unit in work.to_stop:
            stop_unit(self.rt, unit)
        self._report(work, latest, plan, front_up=stats is not None)
        if work.status != work.obj.status:  # an idle service's poll writes nothing
            work.save()
        if work.busy or stats is None:
            return Result(requeue_after=0.2)
        if any(not rev["replicas"] for rev, _ in plan):
            return Result(requeue_after=0.5)  # scaled to zero: a request must wake it soon
        # No request in the whole window: nothing for the autoscaler to decide sooner
        # than Knative's own tick (2 s); the front holds any burst meanwhile.
        return Result(requeue_after=_QUIET_POLL if _quiet(stats) else 1.0)

    # -- the front -------------------------------------------------------------------

    def _admin(self, front: dict[str, Any]) -> FrontClient:
        key = str(front["unitId"])
        client = self._admins.get(key)
        if client is None:
            client = self._admins[key] = FrontClient(
                str(front["address"]), admin_secret(self.rt.settings.token, front))
        return client

    def _drop_admin(self, front: dict[str, Any] | None) -> None:
        client = self._admins.pop(str((front or {}).get("unitId")), None)
        if client is not None:
            client.close()

    def _front(self, work: _Work) -> dict[str, Any] | None:
        """The running front's record, starting one if there is none; None while its
        process is being started. Its address is the one the executor published for
        it (``status.front.address``, the service's ``status.url``)."""
        status = work.status
        front = status.get("front")
        if front:
            state = unit_status(self.rt, front)
            address = endpoint_of(self.rt, front) if state is not None else None
            if state is not None and state.state is UnitState.RUNNING and address:
                front["address"] = address
                return front  # type: ignore[no-any-return]
            if state is not None:
                # Ended, or a front of an earlier controller on a socket path (no
                # published address): replace it.
                tail = log_tail(self.rt, front) if state.done else "no published address"
                stop_unit(self.rt, front, grace=0)
                self._drop_admin(front)
                log.warning("front of %s exited (%s); restarting", work.obj.name, tail)
                status["frontRestarts"] = int(status.get("frontRestarts") or 0) + 1
                # Not Ready until the new front has an address: the claim written
                # below must not say Ready with a dead front's URL.
                predictor = any(c.get("type") == "PredictorReady" and c.get("status") == "True"
                                for c in status.get("conditions") or [])
                _conditions(status, ingress=False, serving=False, predictor=predictor,
                            reason="FrontStarting", message="the service's front is starting")
        uid = work.obj.metadata.uid or work.obj.name
        starts = int(status.get("frontStarts") or 0) + 1
        status["frontStarts"] = starts
        token = self.rt.settings.token
        front = new_front(f"{uid}-front-{starts}", token)
        status["front"] = front
        work.save()  # the claim, before the process exists
        unit = front_unit(unit_id=front["unitId"], service=f"{work.obj.namespace}/"
                          f"{work.obj.name}", log_key=self._log_key(work, front["unitId"]),
                          token=token, admin=admin_secret(token, front))
        try:
            front["handle"] = self.rt.executor.submit(unit)
        except ExecutorError as err:
            status["front"] = None
            log.warning("cannot start the front of %s: %s", work.obj.name, err.message)
        work.busy = True
        return None

    # -- revisions -------------------------------------------------------------------

    def _latest(self, work: _Work, spec: InferenceServiceSpec) -> dict[str, Any]:
        """The revision of the current spec, created (Loading) if it is new."""
        key = _revision_key(work.obj.spec)
        for rev in work.revisions:
            if rev["key"] == key:
                return rev
        count = int(work.status.get("revisionCount") or 0) + 1
        work.status["revisionCount"] = count
        rev = {"name": f"{work.obj.name}-predictor-{count:05d}", "number": count,
               "key": key, "generation": work.obj.metadata.generation or 1,
               "state": "Loading", "replicas": [], "serial": 0, "failures": 0,
               "restarts": 0, "created": time.time()}
        work.revisions.append(rev)
        self._resolve(work, rev, spec)
        return rev

    def _resolve(self, work: _Work, rev: dict[str, Any], spec: InferenceServiceSpec) -> None:
        fmt, uri, resources = spec.predictor.format_and_uri()
        if not fmt or not uri:
            self._fail(rev, "InvalidSpec", "predictor needs a model format and a storageUri")
            return
        try:
            # Batcher, logger and transformer are the replica's own options.
            args = replica_args(work.obj.spec, service=work.obj.name,
                                namespace=work.obj.namespace)
        except SpecError as err:
            self._fail(rev, "InvalidSpec", str(err))
            return
        # A model-registry URI is looked up here (the database, cheap); the bytes move
        # in the replica, whose storage initializer fetches ``source`` before loading.
        try:
            source = self._record(work, uri, spec)
        except KetchError as err:
            self._fail(rev, "StorageUriError", err.message)
            self._storage_log(work, rev, [f"storage-initializer: resolving storageUri {uri}",
                                          f"storage-initializer: error: StorageUriError: "
                                          f"{err.message}"])
            return
        if source != uri:
            self._storage_log(work, rev, [f"storage-initializer: resolving storageUri {uri}",
                                          f"storage-initializer: {uri} is {source}"])
        rev.update(state="Loading", format=fmt, uri=uri, source=source, args=args,
                   resources=resources, loadingSince=time.time())
        rev.pop("path", None)

    def _record(self, work: _Work, uri: str, spec: InferenceServiceSpec) -> str:
        """A ``model-registry://`` URI is recorded in the registry as served by this
        service (which guards the model against deletion) and resolved to its storage
        URI; any other URI undeploys an earlier record and comes back as it is."""
        from ketch.registry.resolve import SCHEME, deploy_in_store

        status = work.status
        if not uri.startswith(SCHEME):
            self._undeploy(work)
            status.pop("modelRegistry", None)
            return uri
        url = status.get("url")
        runtime = (spec.predictor.model.runtime if spec.predictor.model else None) or "ketch"
        done = deploy_in_store(self.store, uri, work.obj.namespace, service=work.obj.name,
                               url=url, runtime=runtime)
        status["modelRegistry"] = {
            "registeredModelId": done.registered_model_id,
            "modelVersionId": done.model_version_id,
            "inferenceServiceId": done.inference_service_id, "url": url}
        holder = {"conditions": list(status.get("conditions") or [])}
        if done.warning:
            log.warning("%s serves an archived model: %s", work.obj.name, done.warning)
            set_condition(holder, "ModelArchived", True, "ModelArchived",
                          f"serving an archived model: {done.warning}")
        else:
            holder["conditions"] = [c for c in holder["conditions"]
                                    if c.get("type") != "ModelArchived"]
        status["conditions"] = holder["conditions"]
        return done.storage_uri

    def _undeploy(self, work: _Work) -> None:
        from ketch.registry.resolve import undeploy_in_store

        recorded = work.status.get("modelRegistry") or {}
        if recorded.get("inferenceServiceId"):
            undeploy_in_store(self.store, work.obj.namespace,
                              str(recorded["inferenceServiceId"]))

    def _storage_log(self, work: _Work, rev: dict[str, Any], lines: list[str]) -> None:
        """What resolving the model said, where ``ketch logs isvc`` reads it (KServe's
        storage-initializer container has a log of its own for the same reason)."""
        key = self._log_key(work, f"{rev['name']}-storage-initializer")
        stamp = now()
        try:
            self.rt.artifacts.put_bytes("".join(f"{stamp} {line}\n" for line in lines)
                                        .encode(), key)
        except (KetchError, OSError):
            log.warning("cannot write the storage log of %s", rev["name"], exc_info=True)
            return
        rev["storageLog"] = key

    def _fail(self, rev: dict[str, Any], reason: str, message: str) -> None:
        rev["failures"] = int(rev.get("failures") or 0) + 1
        rev["state"] = "Failed"
        rev["failure"] = {"reason": reason, "message": message, "time": now()}
        rev["retryAt"] = time.time() + backoff_delay(rev["failures"], base=_RETRY,
                                                     cap=_MAX_RETRY)

    def _observe(self, work: _Work, rev: dict[str, Any], latest: dict[str, Any]) -> None:
        """Poll the revision's replicas: drop dead ones, mark ready ones."""
        if rev["state"] == "Failed":
            if rev is latest and time.time() >= float(rev.get("retryAt") or 0):
                self._resolve(work, rev, InferenceServiceSpec.model_validate(work.obj.spec))
            return
        for rep in list(rev["replicas"]):
            polled = unit_status(self.rt, rep)
            if polled is None:  # claimed, never started (a crash before submit)
                rev["replicas"].remove(rep)
                continue
            address = endpoint_of(self.rt, rep)
            if polled.state is UnitState.RUNNING and not address:
                # A replica of an earlier controller on a socket path it computed: no
                # published address, so no route to it; replace it.
                rev["replicas"].remove(rep)
                work.to_stop.append(rep)
                continue
            if polled.state is not UnitState.RUNNING:
                tail = log_tail(self.rt, rep)
                stop_unit(self.rt, rep, grace=0)
                rev["replicas"].remove(rep)
                if rep.get("ready") or rev["state"] == "Ready":
                    rev["restarts"] = int(rev.get("restarts") or 0) + 1
                    log.warning("replica %s of %s exited (%s); replacing it", rep["unitId"],
                                rev["name"], tail)
                    if not rep.get("ready"):  # crashing on start: back off, say why
                        rev["replicaRetryAt"] = time.time() + backoff_delay(
                            rev["restarts"] + 1, base=1.0, cap=60.0)
                        rev["replicaFailure"] = {"reason": "ReplicaFailed", "time": now(),
                                                 "message": tail or "the model server exited"}
                    continue
                rev["lastLog"] = self._log_key(work, rep["unitId"])
                if polled.exit_code == EXIT_STORAGE_FAILED:
                    self._fail(rev, "StorageUriError", tail.removeprefix(
                        "storage-initializer: error: StorageUriError: ") or
                        "the storage initializer failed")
                else:
                    self._fail(rev, "ModelLoadFailed", tail or "the model server exited")
                work.to_stop.extend(rev["replicas"])
                rev["replicas"] = []
                return
            rep["address"] = address
            if rep.get("ready"):
                continue
            if replica_ready(str(address), self._replica_secret(work)):
                rep["ready"] = True
                rev.pop("replicaFailure", None)
                if rev["state"] == "Loading":
                    rev["state"] = "Ready"
                    rev.pop("failure", None)
                    rev["failures"] = 0
            elif time.time() - float(rep["started"]) > _LOAD_TIMEOUT:
                rev["replicas"].remove(rep)
                work.to_stop.append(rep)
                if rev["state"] == "Loading":
                    rev["lastLog"] = self._log_key(work, rep["unitId"])
                    self._fail(rev, "ModelLoadTimeout", f"not ready after {_LOAD_TIMEOUT:.0f}s")
                    work.to_stop.extend(rev["replicas"])
                    rev["replicas"] = []
                    return
            else:
                work.busy = True

    # -- traffic ---------------------------------------------------------------------

    def _traffic(self, work: _Work, spec: InferenceServiceSpec,
                 latest: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
        """KServe's split: [(revision, percent)], latest first; retires the rest."""
        rollout = work.status.setdefault("rollout", {})
        by_name = {rev["name"]: rev for rev in work.revisions}
        stable = by_name.get(rollout.get("latest") or "")
        canary = spec.predictor.canary_traffic_percent
        plan: list[tuple[dict[str, Any], int]]
        if latest["state"] == "Ready":
            if stable is None or stable is latest or canary is None or canary >= 100:
                if stable is not latest:  # promoted, or a plain rollout: latest takes all
                    rollout["previous"] = stable["name"] if stable else rollout.get("previous")
                    rollout["latest"] = latest["name"]
                plan = [(latest, 100)]
            else:
                plan = [(latest, canary), (stable, 100 - canary)]
        else:
            plan = [(stable, 100)] if stable is not None else []
        keep = {id(latest), *(id(rev) for rev, _ in plan)}
        for rev in list(work.revisions):
            if id(rev) not in keep:
                work.to_stop.extend(rev["replicas"])
                work.revisions.remove(rev)
                self._scalers.pop((work.obj.metadata.uid or "", rev["name"]), None)
        return plan

    # -- scaling ---------------------------------------------------------------------

    def _scale(self, work: _Work, knobs: Knobs, plan: list[tuple[dict[str, Any], int]],
               stats: dict[str, Any] | None) -> None:
        policy = knobs.policy
        measured = (stats or {}).get("revisions") or {}
        starting: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for rev in work.revisions:
            replicas = rev["replicas"]
            if rev["state"] == "Failed":
                desired = 0
            elif rev["state"] == "Loading":
                desired = max(policy.min_replicas, 1)  # Knative's initial scale
            elif (seen := measured.get(rev["name"])) is not None:
                scaler = self._scalers.setdefault((work.obj.metadata.uid or "", rev["name"]),
                                                  ScaleState())
                samples = seen["concurrency"] if policy.metric == "concurrency" \
                    else [float(n) for n in seen["requestsPerSecond"]]
                desired = desired_replicas(
                    policy, scaler, now=time.monotonic(), current=len(replicas),
                    ready=sum(1 for r in replicas if r.get("ready")), samples=samples,
                    queued=int(seen["queued"]))
            else:  # no measurements (the front is starting): hold the count in bounds
                desired = max(policy.min_replicas, min(policy.max_replicas, len(replicas)))
            rev["desiredReplicas"] = desired
            if len(replicas) < desired:
                if time.time() < float(rev.get("replicaRetryAt") or 0):
                    work.busy = True
                    continue
                for _ in range(desired - len(replicas)):
                    starting.append((rev, self._claim_replica(work, rev)))
            elif len(replicas) > desired:
                # Not-ready replicas go first, then the newest.
                order = sorted(replicas, key=lambda r: (bool(r.get("ready")), -r["started"]))
                for victim in order[:len(replicas) - desired]:
                    replicas.remove(victim)
                    work.to_stop.append(victim)
        if starting:
            work.save()  # the claims, before the processes exist
            for rev, rep in starting:
                self._submit_replica(work, rev, rep)
            work.busy = True

    def _claim_replica(self, work: _Work, rev: dict[str, Any]) -> dict[str, Any]:
        rev["serial"] = int(rev.get("serial") or 0) + 1
        uid = work.obj.metadata.uid or work.obj.name
        unit_id = f"{uid}-{rev['number']}-{rev['serial']}"
        rep = {"unitId": unit_id, "started": time.time(), "ready": False}
        rev["replicas"].append(rep)
        return rep

    def _submit_replica(self, work: _Work, rev: dict[str, Any], rep: dict[str, Any]) -> None:
        unit_id = rep["unitId"]
        # A revision of an earlier controller holds the local path it downloaded to.
        source = str(rev.get("source") or rev.get("path"))
        unit = replica_unit(unit_id=unit_id, name=work.obj.name, source=source,
                            fmt=rev["format"], args=rev.get("args") or [],
                            resources=_request(rev.get("resources")),
                            log_key=self._log_key(work, unit_id),
                            token=self.rt.settings.token,
                            credential=self._replica_secret(work))
        try:
            rep["handle"] = self.rt.executor.submit(unit)
            node = self.rt.executor.node(rep["handle"])
            if node:
                rep["node"] = node  # where it runs, on a backend of several nodes
        except ExecutorError as err:
            rev["replicas"].remove(rep)
            rev["replicaRetryAt"] = time.time() + _RETRY
            if rev["state"] == "Loading":
                self._fail(rev, "StartError", err.message)

    # -- routing and status ----------------------------------------------------------

    def _route(self, work: _Work, front: dict[str, Any], knobs: Knobs,
               plan: list[tuple[dict[str, Any], int]], stats: dict[str, Any]) -> None:
        config: dict[str, Any] = {
            "containerConcurrency": knobs.container_concurrency,
            "queueLimit": knobs.queue_limit, "timeout": knobs.timeout,
            "tokenSha256": token_digest(self.rt.settings.token),
            # What the front's own probes and scrapes send its replicas (None: no token).
            "replicaCredential": self._replica_secret(work),
            "revisions": [{"name": rev["name"], "percent": percent, "backends": [
                {"id": rep["unitId"], "address": rep["address"]}
                for rep in rev["replicas"] if rep.get("ready") and rep.get("address")]}
                for rev, percent in plan]}
        version = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        if stats.get("version") != version:
            config["version"] = version
            if not self._admin(front).configure(config):
                work.busy = True

    def _record_url(self, work: _Work, url: str) -> None:
        """The registry's record of a served model learns the URL once the front has
        one (the record is made when the revision is created, before the front starts)."""
        from ketch.registry.resolve import record_url_in_store

        recorded = work.status.get("modelRegistry")
        if not recorded or recorded.get("url") == url:
            return
        record_url_in_store(self.store, work.obj.namespace,
                            str(recorded["inferenceServiceId"]), url)
        recorded["url"] = url

    def _report(self, work: _Work, latest: dict[str, Any],
                plan: list[tuple[dict[str, Any], int]], *, front_up: bool) -> None:
        status = work.status
        front = status.get("front") or {}
        if front.get("address"):
            url = f"http://{front['address']}"
            status["url"] = url
            status["address"] = {"url": url}
            self._record_url(work, url)
        rollout = status.get("rollout") or {}
        split = len(plan) > 1
        traffic = [{"revisionName": rev["name"], "percent": percent,
                    "latestRevision": rev is latest,
                    **({"tag": "latest" if rev is latest else "prev"} if split else {})}
                   for rev, percent in plan]
        ready_rev = latest if latest["state"] == "Ready" else \
            next((rev for rev, _ in plan), None)
        predictor: dict[str, Any] = {
            "url": status.get("url"), "latestCreatedRevision": latest["name"],
            "traffic": traffic}
        for field, value in (("latestReadyRevision", ready_rev and ready_rev["name"]),
                             ("latestRolledoutRevision", rollout.get("latest")),
                             ("previousRolledoutRevision", rollout.get("previous"))):
            if value:
                predictor[field] = value
        status["components"] = {"predictor": predictor}
        status["readyReplicas"] = sum(1 for rev, _ in plan for r in rev["replicas"]
                                      if r.get("ready"))
        serving = any(rev["state"] == "Ready" and percent > 0 for rev, percent in plan)
        crashing = [rev["replicaFailure"] for rev, percent in plan if percent > 0
                    and rev.get("replicaFailure")
                    and not any(r.get("ready") for r in rev["replicas"])]
        if serving and crashing and len(crashing) == sum(1 for _, p in plan if p > 0):
            serving = False  # every revision with traffic fails to start a replica
        failure = latest.get("failure") if latest["state"] == "Failed" else None
        _model_state(status, latest["state"], failure, serving=serving)
        if not front_up:
            reason, message = "FrontStarting", "the service's front is starting"
        elif failure:
            reason, message = failure["reason"], failure["message"]
        elif crashing and not serving:
            reason, message = crashing[0]["reason"], crashing[0]["message"]
        elif latest["state"] == "Loading":
            reason, message = "Loading", f"revision {latest['name']} is loading " \
                                         f"{latest.get('uri', '')}"
        else:
            reason, message = "", ""
        _conditions(status, ingress=front_up, serving=serving and front_up,
                    predictor=latest["state"] == "Ready", reason=reason, message=message,
                    stalled=failure)

    # -- clean-up --------------------------------------------------------------------

    def _legacy(self, work: _Work) -> None:
        """Processes recorded by the first slice's controller (one server per
        service, no front): stop them; the front and replicas replace them."""
        for key in ("pending", "active"):
            old = work.status.pop(key, None)
            if old and old.get("unitId"):
                work.to_stop.append(old)

    def _delete(self, work: _Work) -> Result | None:
        status = work.status
        self._undeploy(work)  # the registry's record first: the model may be deleted now
        for key in ("pending", "active", "front"):
            if status.get(key):
                stop_unit(self.rt, status[key])
        self._drop_admin(status.get("front"))
        for rev in status.get("revisions") or []:
            for rep in rev.get("replicas") or []:
                stop_unit(self.rt, rep)
            self._scalers.pop((work.obj.metadata.uid or "", rev["name"]), None)
        obj = work.obj
        meta = obj.metadata.model_copy(update={
            "finalizers": [f for f in obj.metadata.finalizers if f != FINALIZER]})
        self.store.update(INFERENCE_SERVICE, obj.model_copy(update={"metadata": meta}))
        return None

    def _replica_secret(self, work: _Work) -> str | None:
        """The credential replicas of this service take besides the platform token."""
        return replica_secret(self.rt.settings.token, work.obj.metadata.uid or work.obj.name)

    @staticmethod
    def _log_key(work: _Work, unit_id: str) -> str:
        return f"logs/{work.obj.namespace}/inferenceservices/{work.obj.name}/{unit_id}.log"


def _quiet(stats: dict[str, Any]) -> bool:
    """No request in flight, queued or seen in the window, on any revision."""
    if stats.get("unrouted"):
        return False
    return all(not seen.get("queued") and not seen.get("inFlight")
               and not any(seen.get("concurrency") or ())
               and not any(seen.get("requestsPerSecond") or ())
               for seen in (stats.get("revisions") or {}).values())


def _model_state(status: dict[str, Any], state: str, failure: dict[str, Any] | None, *,
                 serving: bool) -> None:
    target = {"Ready": "Loaded", "Loading": "Loading", "Failed": "FailedToLoad"}[state]
    model_status: dict[str, Any] = {
        "states": {"activeModelState": "Loaded" if serving else target,
                   "targetModelState": target},
        "transitionStatus": {"Loaded": "UpToDate", "Loading": "InProgress",
                             "FailedToLoad": "BlockedByFailedLoad"}[target],
    }
    if failure:
        model_status["lastFailureInfo"] = failure
    status["modelStatus"] = model_status


def _conditions(status: dict[str, Any], *, ingress: bool, serving: bool, predictor: bool,
                reason: str, message: str, stalled: dict[str, Any] | None = None) -> None:
    """Ready, PredictorReady and IngressReady first (``ketch get`` shows the first),
    then any other conditions as they were. Ready means requests are answered: a
    failed rollout leaves it True while the previous revision serves.

    ``Stalled`` (kstatus' condition, which ``ketch wait`` and ``ketch serve`` stop at)
    is True, with the failure's reason, while the latest revision has failed: it is
    retried with back-off, but it
    will not become ready without a change (a missing model, a corrupt file, a bad
    spec), so waiting out the timeout helps nobody."""
    mine = ("Ready", "PredictorReady", "IngressReady", "Stalled")
    current = list(status.get("conditions") or [])
    holder: dict[str, Any] = {"conditions": [c for c in current if c.get("type") in mine]}
    set_condition(holder, "Ready", serving, "" if serving else reason or "NotServing",
                  "" if serving else message)
    set_condition(holder, "PredictorReady", predictor, "" if predictor else reason,
                  "" if predictor else message)
    set_condition(holder, "IngressReady", ingress, "" if ingress else "FrontStarting",
                  "" if ingress else "the service's front is starting")
    if stalled:
        set_condition(holder, "Stalled", True, stalled["reason"], stalled["message"])
    else:
        holder["conditions"] = [c for c in holder["conditions"] if c["type"] != "Stalled"]
    ordered = sorted(holder["conditions"], key=lambda c: mine.index(c["type"]))
    status["conditions"] = ordered + [c for c in current if c.get("type") not in mine]


def _unsupported(status: dict[str, Any], spec: dict[str, Any]) -> None:
    predictor = spec.get("predictor") or {}
    named = [f"predictor.{k}" for k in _NOT_YET if k in predictor]
    if predictor.get("scaleMetric") in ("cpu", "memory"):
        named.append(f"predictor.scaleMetric: {predictor['scaleMetric']} (ketch scales on "
                     "concurrency or rps)")
    named += [k for k in ("explainer",) if k in spec]
    holder = {"conditions": list(status.get("conditions") or [])}
    if named:
        set_condition(holder, "Unsupported", True, "NotYetHonoured",
                      "ketch does not yet honour: " + ", ".join(named))
    else:
        holder["conditions"] = [c for c in holder["conditions"] if c.get("type") != "Unsupported"]
    status["conditions"] = holder["conditions"]
