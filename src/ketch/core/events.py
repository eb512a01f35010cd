"""Events, written by the core when a resource's conditions change.

Every controller writes status through the store, so the store's status listener
(``ResourceStore.add_status_listener``) is the one place that sees every condition
change, whichever component made it. ``EventRecorder`` keeps, per object, each
condition's (status, reason) as last written; a status write that changes one writes a
``v1/Event`` about the object (``involvedObject``), so ``kubectl describe`` shows what
happened. A status write that changes no condition (a pipeline step's progress) costs a
walk over the conditions list and a dict lookup, nothing more.

Repeats aggregate as kube-apiserver's clients do: one Event per (object, condition type,
reason, type), its ``count`` and ``lastTimestamp`` moved and its message replaced.
Bounds: so an object has at most one Event per distinct (condition, reason) it went
through, and Events older than ``EVENT_TTL_SECONDS`` (one hour, kube-apiserver's
``--event-ttl`` default) since their last occurrence are deleted, checked at most once a
minute while events are written.

An object's Events go when it does (the store's removal listener), where Kubernetes
keeps them until the TTL: a laptop's SQLite file that sees Jobs created and deleted all
day would otherwise hold an hour of Events about objects no one can describe any more.
The recorder remembers which Events it wrote about which object; those it did not see
written (a restarted control plane, another replica) go at the next prune, which also
deletes Events whose involved object is gone.

On first sight of an object (a restarted control plane), only conditions that
transitioned since this recorder started give events: older ones were recorded before.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from ketch.core.core_kinds import EVENT
from ketch.core.errors import ConflictError, KetchError, NotFoundError
from ketch.core.kinds import KindInfo, KindRegistry
from ketch.core.resources import ObjectMeta, Resource, now
from ketch.core.store import ResourceStore

__all__ = ["EVENT_TTL_SECONDS", "EventRecorder", "event_type"]

log = logging.getLogger(__name__)

EVENT_TTL_SECONDS = 3600.0
_PRUNE_EVERY = 60.0
# Objects whose conditions are remembered; the least recently written are forgotten.
_REMEMBERED = 10_000
_WARNING_REASONS = frozenset({
    "Error", "BackoffLimitExceeded", "DeadlineExceeded", "OOMKilled", "StartError",
    "ProcessLost", "EndpointUnreachable", "InvalidSpec", "Failed", "CrashLoopBackOff"})

Signature = dict[str, tuple[str, str]]


def event_type(condition: dict[str, Any]) -> str:
    """``Warning`` for a failure, else ``Normal``."""
    if condition.get("type") == "Failed" and condition.get("status") == "True":
        return "Warning"
    return "Warning" if condition.get("reason") in _WARNING_REASONS else "Normal"


def _epoch(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


class EventRecorder:
    """Turns condition changes seen by the store into Events (see the module docstring)."""

    def __init__(self, store: ResourceStore, host: str, registry: KindRegistry) -> None:
        self.store = store
        self.host = host
        self.registry = registry
        self._seen: OrderedDict[str, Signature] = OrderedDict()
        # uid -> (namespace, name) of the Events written about it, to delete with it.
        self._written: dict[str, set[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        self._started = time.time() - 1.0  # second precision of lastTransitionTime
        self._pruned = time.monotonic() - _PRUNE_EVERY  # the first change prunes

    def install(self) -> None:
        self.store.add_status_listener(self.on_status)
        self.store.add_removal_listener(self.on_removed)

    def on_removed(self, info: KindInfo, obj: Resource) -> None:
        """The object is gone: so are the Events about it."""
        if not info.group or not obj.metadata.uid:
            return
        with self._lock:
            self._seen.pop(obj.metadata.uid, None)
            names = self._written.pop(obj.metadata.uid, set())
        for namespace, name in names:
            try:
                self.store.delete(EVENT, namespace, name)
            except NotFoundError:
                pass
            except KetchError:
                log.warning("could not delete event %s/%s", namespace, name, exc_info=True)

    def on_status(self, info: KindInfo, obj: Resource) -> None:
        if not info.group:  # core kinds (Events themselves) have no conditions
            return
        conditions = (obj.status or {}).get("conditions") or ()
        if not conditions:
            return
        key = obj.metadata.uid or f"{info.key}/{obj.namespace}/{obj.name}"
        signature: Signature = {str(c.get("type")): (str(c.get("status")),
                                                    str(c.get("reason") or ""))
                                for c in conditions if isinstance(c, dict)}
        with self._lock:
            before = self._seen.pop(key, None)
            self._seen[key] = signature
            while len(self._seen) > _REMEMBERED:
                # Its Events, no longer tracked, go at a prune after it does.
                self._written.pop(self._seen.popitem(last=False)[0], None)
        changed = [c for c in conditions if isinstance(c, dict)
                   and (before.get(str(c.get("type"))) != signature[str(c.get("type"))]
                        if before is not None
                        else _epoch(c.get("lastTransitionTime")) >= self._started)]
        for condition in changed:
            try:
                self._record(info, obj, condition)
            except KetchError:
                # An event is a report, never a reason to fail the status write.
                log.warning("could not record an event for %s %s", info.kind, obj.name,
                            exc_info=True)
        if changed and time.monotonic() - self._pruned > _PRUNE_EVERY:
            self._pruned = time.monotonic()
            try:
                self.prune()
            except KetchError:
                log.warning("could not prune events", exc_info=True)

    def _record(self, info: KindInfo, obj: Resource, condition: dict[str, Any]) -> None:
        kind_type = event_type(condition)
        cond_type = str(condition.get("type"))
        reason = str(condition.get("reason") or cond_type)
        message = str(condition.get("message") or f"{cond_type} is {condition.get('status')}")
        digest = hashlib.sha1(f"{obj.metadata.uid}/{cond_type}/{reason}/{kind_type}".encode(),
                              usedforsecurity=False).hexdigest()[:12]
        name = f"{obj.name[:200].rstrip('.-')}.{digest}"
        stamp = now()
        for _ in range(5):
            try:
                current = self.store.get(EVENT, obj.namespace, name)
            except NotFoundError:
                spec = {
                    "involvedObject": {
                        "apiVersion": obj.api_version, "kind": obj.kind, "name": obj.name,
                        "namespace": obj.namespace, "uid": obj.metadata.uid,
                        "resourceVersion": obj.metadata.resource_version},
                    "reason": reason, "message": message, "type": kind_type, "count": 1,
                    "firstTimestamp": stamp, "lastTimestamp": stamp,
                    "source": {"component": f"{info.plural}-controller", "host": self.host},
                    "reportingComponent": "ketch", "reportingInstance": self.host}
                event = Resource(api_version="v1", kind="Event",
                                 metadata=ObjectMeta(name=name, namespace=obj.namespace),
                                 spec=spec)
                try:
                    self.store.create(EVENT, event)
                    if obj.metadata.uid:
                        with self._lock:
                            self._written.setdefault(obj.metadata.uid, set()).add(
                                (obj.namespace, name))
                    return
                except KetchError:
                    continue  # another writer created it: count on top of theirs
            spec = {**current.spec, "message": message, "lastTimestamp": stamp,
                    "count": int(current.spec.get("count") or 1) + 1}
            try:
                self.store.update(EVENT, current.model_copy(update={"spec": spec}))
                return
            except (ConflictError, NotFoundError):
                continue

    def prune(self, ttl: float = EVENT_TTL_SECONDS) -> int:
        """Delete Events last seen more than ``ttl`` seconds ago and Events whose
        involved object is gone; returns how many."""
        cutoff = time.time() - ttl
        alive: dict[tuple[str, str, str, str], str | None] = {}
        gone = 0
        for event in self.store.list(EVENT).items:
            if (_epoch(event.spec.get("lastTimestamp")) >= cutoff
                    and self._involved_uid(event.spec, alive) == _uid_of(event.spec)):
                continue
            try:
                self.store.delete(EVENT, event.namespace, event.name)
                gone += 1
            except NotFoundError:
                pass
        return gone

    def _involved_uid(self, spec: dict[str, Any],
                      alive: dict[tuple[str, str, str, str], str | None]) -> str | None:
        """The uid of the object an Event is about as it is now (None when gone), each
        object read once per prune."""
        involved = spec.get("involvedObject") or {}
        key = (str(involved.get("apiVersion")), str(involved.get("kind")),
               str(involved.get("namespace") or ""), str(involved.get("name")))
        if key not in alive:
            try:
                info = self.registry.for_object(key[0], key[1])
                alive[key] = self.store.get(info, key[2] or None, key[3]).metadata.uid
            except NotFoundError:
                alive[key] = None
            except KetchError:
                alive[key] = _uid_of(spec)  # an unknown kind: the TTL decides
        return alive[key]


def _uid_of(spec: dict[str, Any]) -> str | None:
    uid = (spec.get("involvedObject") or {}).get("uid")
    return str(uid) if uid else None
