"""Pods as a view of executor units (ADR 007: every unit of work runs on the executor).

ketch stores no pods. Each component declares, per kind, a ``PodSource`` on its
``Component`` (``pods={"jobs.ketch.dev": ...}``): given one object, the units it runs
(a Job's attempts, a pipeline run's steps, a model's replicas), each as a ``PodUnit``
built from what the controller already wrote in the object's status. This module turns
those into Kubernetes ``v1/Pod`` objects (labels, phase, ``containerStatuses``,
``ownerReferences`` to the owner), finds one by name, streams its log through the
executor, and deletes one by cancelling its unit, which the owner's controller then
sees exit as any failed unit (a Job retries by its ``backoffLimit``, a replica is
replaced).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ketch.core.errors import BadRequestError, ConflictError, FieldError, NotFoundError
from ketch.core.executors import Handle
from ketch.core.fields import FieldSelector
from ketch.core.labels import LabelSelector
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime

__all__ = ["DELETED_PODS", "PodLogOptions", "PodPhase", "PodUnit", "delete_pod", "find_pod",
           "list_pods", "pod_log", "pod_object"]

# The owner's annotation naming its deleted pods (the last _DELETED_KEPT of them).
DELETED_PODS = "ketch.dev/deleted-pods"
_DELETED_KEPT = 50
PodPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
# A pod's uid is derived, stable across reads: the view has nowhere to keep one.
_POD_UID_NAMESPACE = uuid.UUID("6f1c2f0e-7d44-4d0e-9a57-3c1e2b7a9d10")


@dataclass(frozen=True)
class PodUnit:
    """One executor unit as its owner's controller recorded it.

    ``handle``: the executor's handle where the status holds one (a running unit);
    else ``unit_id`` is looked up. ``log_key``: where a finished unit's log lies in
    the artifact store once the executor has forgotten it."""

    name: str
    phase: PodPhase
    unit_id: str
    container: str = "main"
    labels: dict[str, str] = field(default_factory=dict)
    handle: Handle | None = None
    log_key: str | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    start_time: str | None = None
    finish_time: str | None = None
    # More names for the one container, each with the same log: where a Kubernetes
    # operator's pod has a sidecar a client reads (Katib's metrics collector).
    sidecars: tuple[str, ...] = ()


def _sources(runtime: Runtime) -> list[tuple[Any, Any]]:
    out = []
    for component in runtime.components:
        for key, source in component.pods.items():
            info = next((i for i in runtime.registry if i.key == key), None)
            if info is not None:
                out.append((info, source))
    return out


def pod_object(runtime: Runtime, owner: Resource, unit: PodUnit) -> dict[str, Any]:
    """The ``v1/Pod`` a unit of ``owner`` shows as."""
    started = unit.start_time
    state: dict[str, Any]
    if unit.phase == "Running":
        state = {"running": {"startedAt": started}}
    elif unit.phase in ("Succeeded", "Failed"):
        state = {"terminated": {
            "exitCode": unit.exit_code if unit.exit_code is not None else
            (0 if unit.phase == "Succeeded" else 1),
            "reason": unit.reason or ("Completed" if unit.phase == "Succeeded" else "Error"),
            **({"message": unit.message} if unit.message else {}),
            **({"startedAt": started} if started else {}),
            **({"finishedAt": unit.finish_time} if unit.finish_time else {})}}
    else:
        state = {"waiting": {"reason": unit.reason or "ContainerCreating"}}
    statuses = [{
        "name": name, "image": "ketch", "imageID": "", "restartCount": 0,
        "ready": unit.phase == "Running", "started": unit.phase == "Running", "state": state}
        for name in (unit.container, *unit.sidecars)]
    status: dict[str, Any] = {"phase": unit.phase, "hostIP": "127.0.0.1",
                              "containerStatuses": statuses}
    if started:
        status["startTime"] = started
    owner_ref = {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
                 "uid": owner.metadata.uid, "controller": True, "blockOwnerDeletion": True}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": unit.name, "namespace": owner.namespace,
            "uid": str(uuid.uuid5(_POD_UID_NAMESPACE, f"{owner.metadata.uid}/{unit.name}")),
            # The owner's version: the pod changes only when its owner's status does.
            "resourceVersion": owner.metadata.resource_version,
            "creationTimestamp": started or owner.metadata.creation_timestamp,
            "labels": dict(unit.labels), "ownerReferences": [owner_ref],
            "annotations": {"ketch.dev/unit-id": unit.unit_id}},
        "spec": {"containers": [{"name": name, "image": "ketch"}
                                for name in (unit.container, *unit.sidecars)],
                 # The node a running unit is on, where the backend has several.
                 "nodeName": (unit.handle and runtime.executor.node(unit.handle))
                 or runtime.host, "restartPolicy": "Never"},
        "status": status,
    }


@dataclass(frozen=True)
class _Found:
    owner: Resource
    unit: PodUnit
    body: dict[str, Any]


def _all(runtime: Runtime, namespace: str | None) -> Iterator[_Found]:
    for info, source in _sources(runtime):
        for owner in runtime.store.list(info, namespace).items:
            deleted = _deleted(owner)
            for unit in source(runtime, owner):
                if unit.name not in deleted:
                    yield _Found(owner, unit, pod_object(runtime, owner, unit))


def _deleted(owner: Resource) -> set[str]:
    text = owner.metadata.annotations.get(DELETED_PODS)
    return set(text.split(",")) if text else set()


def _mark_deleted(runtime: Runtime, found: _Found) -> None:
    """Remember on the owner that this pod was deleted, so the view no longer shows it
    (a deleted pod is gone, as in Kubernetes; its owner's retry or replacement is a new
    pod). Kept on the owner, not here, so every control plane on the database agrees."""
    info = next(i for i in runtime.registry
                if i.api_version == found.owner.api_version and i.kind == found.owner.kind)
    for _ in range(20):
        try:
            owner = runtime.store.get(info, found.owner.namespace, found.owner.name)
        except NotFoundError:
            return
        names = [n for n in (owner.metadata.annotations.get(DELETED_PODS) or "").split(",")
                 if n and n != found.unit.name]
        names = [*names, found.unit.name][-_DELETED_KEPT:]
        meta = owner.metadata.model_copy(update={
            "annotations": {**owner.metadata.annotations, DELETED_PODS: ",".join(names)}})
        try:
            runtime.store.update(info, owner.model_copy(update={"metadata": meta}))
            return
        except ConflictError:
            continue


_POD_FIELDS = ("metadata.name", "metadata.namespace", "status.phase", "spec.nodeName")


def list_pods(runtime: Runtime, namespace: str | None, *, label_selector: str | None = None,
              field_selector: str | None = None) -> list[dict[str, Any]]:
    """Every unit's pod in ``namespace`` (all with None), ordered by namespace and name."""
    selector = LabelSelector.parse(label_selector)
    fields = FieldSelector.parse(field_selector, _POD_FIELDS)
    pods = [found.body for found in _all(runtime, namespace)
            if selector.matches(found.body["metadata"]["labels"]) and fields.matches(found.body)]
    return sorted(pods, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))


def _find(runtime: Runtime, namespace: str, name: str) -> _Found:
    for found in _all(runtime, namespace):
        if found.unit.name == name:
            return found
    raise NotFoundError(f'pods "{name}" not found')


def find_pod(runtime: Runtime, namespace: str, name: str) -> dict[str, Any]:
    return _find(runtime, namespace, name).body


def delete_pod(runtime: Runtime, namespace: str, name: str) -> dict[str, Any]:
    """Stop the pod's unit; its owner's controller sees it exit and reacts."""
    found = _find(runtime, namespace, name)
    _mark_deleted(runtime, found)
    handle = _handle(runtime, found.unit)
    if handle is not None and found.unit.phase in ("Running", "Pending"):
        runtime.executor.cancel(handle, grace_seconds=2.0)
    body = dict(found.body)
    body["metadata"] = {**body["metadata"], "deletionTimestamp": _stamp(datetime.now(UTC))}
    return body


def _handle(runtime: Runtime, unit: PodUnit) -> Handle | None:
    if unit.handle is not None and runtime.executor.is_handle(unit.handle):
        return dict(unit.handle)
    return runtime.executor.lookup(unit.unit_id)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PodLogOptions:
    container: str | None = None
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    timestamps: bool = False


def pod_log(runtime: Runtime, namespace: str, name: str,
            options: PodLogOptions) -> Iterator[bytes]:
    """The unit's log: live from the executor, or from the artifact store once the
    executor forgot the unit. Checks the pod and container at once (errors are HTTP
    errors), then streams lazily."""
    found = _find(runtime, namespace, name)
    unit = found.unit
    if options.container not in (None, "", unit.container, *unit.sidecars):
        names = ", ".join(repr(n) for n in (unit.container, *unit.sidecars))
        raise BadRequestError(f"container {options.container} is not valid for pod {name}",
                              [FieldError("container", f"pod {name} has container(s) {names}")])
    if options.since_seconds is not None and unit.finish_time is not None:
        finished = datetime.strptime(unit.finish_time, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC)
        if (datetime.now(UTC) - finished).total_seconds() > options.since_seconds:
            return iter(())
    handle = _handle(runtime, unit)
    return _stream(runtime, unit, handle, options)


def _chunks(runtime: Runtime, unit: PodUnit, handle: Handle | None,
            follow: bool) -> Iterator[bytes]:
    if handle is not None:
        yield from runtime.executor.logs(handle, follow=follow)
    elif unit.log_key and runtime.artifacts.exists(unit.log_key):
        yield from runtime.artifacts.iter_bytes(unit.log_key)


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _stream(runtime: Runtime, unit: PodUnit, handle: Handle | None,
            options: PodLogOptions) -> Iterator[bytes]:
    lines = _lines(_chunks(runtime, unit, handle, options.follow))
    if options.tail_lines is not None:
        # The last N lines written so far, then (following) what comes after them.
        so_far = list(_lines(_chunks(runtime, unit, handle, False)))
        skip = max(len(so_far) - options.tail_lines, 0)
        lines = (line for i, line in enumerate(lines) if i >= skip)
    for line in lines:
        if options.timestamps:
            # The executor's log keeps no time per line: the time it is read stands in.
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            yield stamp.encode() + b" " + line
        else:
            yield line
