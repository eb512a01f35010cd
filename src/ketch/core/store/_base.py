"""The resource store contract.

A store keeps resources of every kind plus an ordered change log (for watch)
and leases (for control planes). Every write gets the next value of one global,
monotonically increasing revision, which becomes the object's
``resourceVersion`` — as etcd's revision does in Kubernetes — so a watch can
resume from any revision still in the log.

Contract for implementations:

* Every method is thread-safe and may be called from several processes (or
  machines) sharing one database; each call is one transaction.
* ``update``/``update_status``/``delete`` with a ``resourceVersion``
  precondition raise ``ConflictError`` when it is stale: never a lost update.
* Returned ``Resource`` objects are fresh copies; mutating them changes nothing.
* Driver errors never escape: they are rewrapped as ``StoreError`` (or
  ``AlreadyExistsError`` / ``NotFoundError`` where that is what they mean).
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection

from ketch.core.codec import dumps, loads
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.resources import Resource
from ketch.core.store._bodies import Template

__all__ = ["ChangedKey", "Lease", "ListResult", "RawEvent", "ResourceStore", "WatchEvent"]

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class ListResult:
    items: list[Resource]
    resource_version: str
    continue_token: str | None = None


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: Resource
    revision: int
    kind_key: str = ""
    # The object as stored (its wire form), when the store has it: a watch sends it
    # as is instead of serializing the model again (a pipeline run's is large).
    body: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type,
                "object": self.body if self.body is not None else self.object.to_wire()}


@dataclass(frozen=True)
class ChangedKey:
    """One change-log entry without its body."""

    revision: int
    kind_key: str
    namespace: str
    name: str


@dataclass(frozen=True)
class RawEvent:
    """One change-log entry with its object as the stored JSON text, not decoded.

    What a watch stream sends: it only passes the object on, and decoding and encoding
    it again for every event cost more than anything else a watch does (a pipeline
    run's object holds its whole IR, so that grew with the run)."""

    revision: int
    type: EventType
    kind_key: str
    namespace: str
    name: str
    body_text: str = field(repr=False)
    # The status's text and the body's template, where the backend keeps them apart
    # (the SQL store): the object without its spec is then a splice too.
    status_text: str | None = field(default=None, repr=False)
    template: Template | None = field(default=None, repr=False)

    def text_without_spec(self) -> str:
        """The object's JSON text without its ``spec`` (for a watch that follows status
        only: a pipeline run's spec is its whole IR)."""
        if self.template is not None and self.status_text is not None:
            return self.template.without_spec.render(self.revision, self.status_text)
        body = loads(self.body_text)
        body.pop("spec", None)
        return dumps(body)

    def labels(self) -> dict[str, str]:
        """The object's labels (this decodes the body: only for a label selector)."""
        labels = loads(self.body_text)["metadata"].get("labels")
        return dict(labels) if labels else {}


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires_at: float
    data: dict[str, Any] = field(default_factory=dict)


class ResourceStore(abc.ABC):
    """Persistent resources, change log and leases. See the module docstring."""

    _listeners: builtins.list[Callable[[str, str, str], None]]

    def add_listener(self, callback: Callable[[str, str, str], None]) -> None:
        """Call ``callback(kind_key, namespace, name)`` after each committed write
        made through this instance (writes by other processes arrive only through
        ``events``). Callbacks run on the writer's thread and must not block."""
        if not hasattr(self, "_listeners"):
            self._listeners = []
        self._listeners.append(callback)

    def _committed(self, kind_key: str, namespace: str, name: str) -> None:
        for callback in getattr(self, "_listeners", ()):
            callback(kind_key, namespace, name)

    def add_status_listener(self, callback: Callable[[KindInfo, Resource], None]) -> None:
        """Call ``callback(kind, resource)`` after each committed status write made
        through this instance (``update_status``, ``write_status``), with the object as
        the writer sent it: the events recorder compares conditions there, at no read.
        Callbacks run on the writer's thread after the commit."""
        if not hasattr(self, "_status_listeners"):
            self._status_listeners: builtins.list[Callable[[KindInfo, Resource], None]] = []
        self._status_listeners.append(callback)

    def _status_committed(self, info: KindInfo, resource: Resource) -> None:
        for callback in getattr(self, "_status_listeners", ()):
            callback(info, resource)

    def add_removal_listener(self, callback: Callable[[KindInfo, Resource], None]) -> None:
        """Call ``callback(kind, resource)`` after each committed write through this
        instance that removed an object (a delete, or the update that took its last
        finalizer), with the object as it was last stored. Callbacks run on the writer's
        thread after the commit; what they write is not part of the removal."""
        if not hasattr(self, "_removal_listeners"):
            self._removal_listeners: builtins.list[Callable[[KindInfo, Resource], None]] = []
        self._removal_listeners.append(callback)

    def _removal_committed(self, info: KindInfo, resource: Resource) -> None:
        for callback in getattr(self, "_removal_listeners", ()):
            callback(info, resource)

    @abc.abstractmethod
    def create(self, info: KindInfo, resource: Resource) -> Resource:
        """Insert a new object; sets uid, creationTimestamp, generation and
        resourceVersion. Raises ``AlreadyExistsError`` on a taken name."""

    @abc.abstractmethod
    def get(self, info: KindInfo, namespace: str | None, name: str) -> Resource:
        """The object, or ``NotFoundError``."""

    def resource_version(self, info: KindInfo, namespace: str | None, name: str) -> str:
        """The object's ``resourceVersion`` alone, or ``NotFoundError``: a controller
        that holds the object it last wrote checks it is still current without reading
        (and decoding) the whole body. Backends override this with a cheaper read."""
        return str(self.get(info, namespace, name).metadata.resource_version)

    @abc.abstractmethod
    def list(self, info: KindInfo, namespace: str | None = None, *,
             selector: LabelSelector | None = None, limit: int | None = None,
             continue_token: str | None = None) -> ListResult:
        """Objects ordered by (namespace, name); ``namespace=None`` lists all."""

    @abc.abstractmethod
    def update(self, info: KindInfo, resource: Resource) -> Resource:
        """Replace metadata (labels, annotations, finalizers, ownerReferences, and
        managedFields unless ``None``) and spec; status is kept. ``generation`` moves
        when spec changes. When the object is being deleted and its last finalizer
        goes, it is removed."""

    @abc.abstractmethod
    def update_status(self, info: KindInfo, resource: Resource) -> Resource:
        """Replace status only (the ``/status`` subresource)."""

    def write_status(self, info: KindInfo, resource: Resource) -> str:
        """``update_status`` returning only the new ``resourceVersion`` (the old one
        after a no-op write), for a controller that keeps the object it wrote: the
        store then need not read, decode or re-encode the rest of the object, which for
        a pipeline run (its IR) grows with the pipeline. Backends override this with a
        write that touches only the status."""
        return str(self.update_status(info, resource).metadata.resource_version)

    @abc.abstractmethod
    def delete(self, info: KindInfo, namespace: str | None, name: str, *,
               resource_version: str | None = None) -> Resource:
        """Remove the object, or, while it has finalizers, set its
        ``deletionTimestamp`` and leave removal to the controller."""

    @abc.abstractmethod
    def events(self, since: int, *, kind_keys: set[str] | None = None,
               namespace: str | None = None, limit: int = 500) -> builtins.list[WatchEvent]:
        """Changes after revision ``since``, oldest first. ``GoneError`` when the
        log no longer reaches back that far."""

    def raw_events(self, since: int, *, kind_keys: set[str] | None = None,
                   namespace: str | None = None,
                   limit: int = 500) -> builtins.list[RawEvent]:
        """What ``events`` returns, with each object as its stored JSON text, for a
        reader that passes objects on (watch streams). Backends that store JSON text
        override this to hand it over without decoding it."""
        return [RawEvent(ev.revision, ev.type, ev.kind_key, ev.object.namespace,
                         ev.object.name, dumps(ev.to_wire()["object"]))
                for ev in self.events(since, kind_keys=kind_keys, namespace=namespace,
                                      limit=limit)]

    def changed_keys(self, since: int, *, kind_keys: set[str] | None = None,
                     limit: int = 500) -> builtins.list[ChangedKey]:
        """What ``events`` returns, without the bodies: which objects changed at which
        revision, for a reader that only needs keys (the controllers' change pump,
        which would otherwise decode every object written, a large one on each status
        write). Backends override this with a cheaper read."""
        return [ChangedKey(ev.revision, ev.kind_key, ev.object.namespace, ev.object.name)
                for ev in self.events(since, kind_keys=kind_keys, limit=limit)]

    @abc.abstractmethod
    def revision(self) -> int:
        """The latest revision written."""

    @abc.abstractmethod
    def prune_events(self, older_than_seconds: float, *,
                     keep_revisions: int | None = None) -> int:
        """Compact the change log: drop entries older than the given age and, with
        ``keep_revisions``, those more than that many revisions behind the latest (as
        etcd compacts). Returns how many; ``events`` from a compacted revision raises
        ``GoneError`` afterwards."""

    @abc.abstractmethod
    def namespaces(self) -> builtins.list[str]:
        """Namespaces that hold at least one object."""

    @abc.abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float,
                      data: dict[str, Any] | None = None) -> bool:
        """Take or renew lease ``name`` for ``holder`` if it is free, expired or
        already held by ``holder``. True when ``holder`` holds it afterwards."""

    @abc.abstractmethod
    def release_lease(self, name: str, holder: str) -> None:
        """Give a lease back (only if ``holder`` holds it)."""

    @abc.abstractmethod
    def get_lease(self, name: str) -> Lease | None:
        """The lease, expired or not, or None."""

    @abc.abstractmethod
    def prune_leases(self, expired_for_seconds: float) -> int:
        """Delete leases that expired more than ``expired_for_seconds`` ago (a live
        holder renews long before expiry, so their holders are gone). Returns how many."""

    @abc.abstractmethod
    def transaction(self, *, write: bool) -> AbstractContextManager[Connection]:
        """One transaction on the store's database, for components that keep
        tables of their own (declared as a ``SchemaBranch`` on their Component).
        Commits on success, rolls back on error, rewraps driver errors as
        ``StoreError``; ``write=True`` takes the write lock up front."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers (for ``/readyz``)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
