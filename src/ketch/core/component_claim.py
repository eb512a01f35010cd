"""ONE claim/adopt helper for controllers: which control plane runs an object's work.

The rule (ARCHITECTURE.md: "two control planes on one database never both run the
same work"): before any work starts, the controller writes ``status.controlPlane``
(its ``Runtime.id``) guarded by the object's ``resourceVersion``. Of two control planes
claiming at once, one write lands and the other gets a conflict and starts nothing.
An object claimed by a live control plane is left alone; one claimed by a dead one
(its lease expired, or its process gone on this host) is adopted the same way.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ketch.core.controller import Result
from ketch.core.errors import ConflictError, NotFoundError
from ketch.core.runtime import LEASE_TTL

if TYPE_CHECKING:
    from ketch.core.kinds import KindInfo
    from ketch.core.resources import Resource
    from ketch.core.runtime import Runtime

__all__ = ["Claims", "Owner"]

log = logging.getLogger("ketch.claims")

FIELD = "controlPlane"


class Owner(enum.Enum):
    """Whose an object's work is, as this control plane sees it."""

    NOBODY = "nobody"   # unclaimed: claim before starting
    ME = "me"           # this control plane's
    ALIVE = "alive"     # another live control plane's: leave it
    DEAD = "dead"       # a dead control plane's: adopt it


class Claims:
    """Claim and adopt objects of one kind for ``runtime``'s control plane."""

    def __init__(self, runtime: Runtime, kind: KindInfo) -> None:
        self.runtime = runtime
        self.kind = kind

    def owner(self, obj: Resource) -> Owner:
        holder = (obj.status or {}).get(FIELD)
        if not holder:
            return Owner.NOBODY
        if holder == self.runtime.id:
            return Owner.ME
        return Owner.ALIVE if self.runtime.is_alive(str(holder)) else Owner.DEAD

    def wait_for_owner(self, obj: Resource) -> Result | None:
        """A requeue when another live control plane owns ``obj`` (check again within
        a lease's life), else None: the caller may go on (claiming or adopting)."""
        return Result(requeue_after=LEASE_TTL / 2) if self.owner(obj) is Owner.ALIVE else None

    def claim(self, obj: Resource,
              mutate: Callable[[dict[str, Any]], None] | None = None) -> Resource | None:
        """Write ``status.controlPlane`` = this control plane (and ``mutate``'s changes,
        say the unit about to start) guarded by ``obj``'s resourceVersion.

        Returns the stored object; None when the object changed or went since ``obj``
        was read (another control plane may have claimed it): start nothing, the next
        reconcile reads it again. Refuses (``ConflictError``) an object a live control
        plane owns: that is a bug in the caller, not a race."""
        owner = self.owner(obj)
        if owner is Owner.ALIVE:
            raise ConflictError(f"{self.kind.kind} {obj.namespace}/{obj.name} is owned by "
                                f"the live control plane {obj.status.get(FIELD)!r}")
        status = dict(obj.status or {})
        if mutate is not None:
            mutate(status)
        status[FIELD] = self.runtime.id
        try:
            stored = self.runtime.store.update_status(
                self.kind, obj.model_copy(update={"status": status}))
        except (ConflictError, NotFoundError):
            return None
        if owner is Owner.DEAD:
            log.info("adopted %s %s/%s from dead control plane %s", self.kind.kind,
                     obj.namespace, obj.name, obj.status.get(FIELD))
        return stored

    def adopt(self, obj: Resource) -> Resource | None:
        """Take over ``obj`` if its owner is dead: ``claim`` with no other change.
        Returns ``obj`` itself when it is already this control plane's."""
        owner = self.owner(obj)
        if owner is Owner.ME:
            return obj
        if owner is not Owner.DEAD:
            return None
        return self.claim(obj)
