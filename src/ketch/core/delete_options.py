"""A delete's ``DeleteOptions``, from its body or its query, as kube-apiserver reads them.

``propagationPolicy`` (``Foreground``, ``Background``, ``Orphan``), ``gracePeriodSeconds``
(accepted; a kind's controller stops its work on its own schedule) and
``preconditions`` (``uid``, ``resourceVersion``: a mismatch is 409 Conflict, nothing
deleted). Cascading (``ketch.core.service``) follows ``metadata.ownerReferences``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ketch.core.errors import BadRequestError, FieldError

__all__ = ["DeleteOptions", "parse_delete_options"]

Propagation = Literal["Foreground", "Background", "Orphan"]
_POLICIES: tuple[Propagation, ...] = ("Foreground", "Background", "Orphan")


@dataclass(frozen=True)
class DeleteOptions:
    """What one delete asks for; the defaults are a plain delete."""

    propagation: Propagation | None = None
    uid: str | None = None
    resource_version: str | None = None
    grace_period_seconds: int | None = None


def _policy(value: Any, where: str) -> Propagation | None:
    if value in (None, ""):
        return None
    for policy in _POLICIES:
        if value == policy:
            return policy
    raise BadRequestError("invalid propagationPolicy", [FieldError(
        where, f"{str(value)[:40]!r} is not one of Foreground, Background, Orphan")])


def parse_delete_options(body: Any, *, propagation: str | None = None,
                         resource_version: str | None = None) -> DeleteOptions:
    """The options of a ``DELETE``: its body (a ``DeleteOptions`` object, or none) and the
    query's ``propagationPolicy`` and ``resourceVersion``; the body wins where both say."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequestError("a delete's body must be a DeleteOptions object")
    pre = body.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise BadRequestError("invalid DeleteOptions", [FieldError(
            "preconditions", "must be an object with uid and/or resourceVersion")])
    grace = body.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)
                              or grace < 0):
        raise BadRequestError("invalid DeleteOptions", [FieldError(
            "gracePeriodSeconds", "must be a non-negative integer")])
    if body.get("orphanDependents") is not None and "propagationPolicy" not in body:
        # The deprecated spelling kube-apiserver still reads.
        body = {**body, "propagationPolicy": "Orphan" if body["orphanDependents"]
                else "Background"}
    return DeleteOptions(
        propagation=_policy(body.get("propagationPolicy"), "propagationPolicy")
        or _policy(propagation, "propagationPolicy"),
        uid=str(pre["uid"]) if pre.get("uid") else None,
        resource_version=(str(pre["resourceVersion"]) if pre.get("resourceVersion")
                          else resource_version or None),
        grace_period_seconds=grace)
