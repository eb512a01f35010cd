"""The resource envelope: apiVersion, kind, metadata, spec, status.

Users write ``spec``; only controllers write ``status``. The envelope is kind
agnostic (``spec`` and ``status`` are plain mappings here); each kind's typed
spec and status models live in its ``KindInfo`` (see ``ketch.core.kinds``) and
validate those mappings at the boundary.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ketch.core.managed_fields import check_fields_v1

__all__ = [
    "DEFAULT_NAMESPACE",
    "TOP_LEVEL_FIELDS",
    "Condition",
    "KetchModel",
    "ManagedFieldsEntry",
    "ObjectMeta",
    "OwnerReference",
    "Resource",
    "find_condition",
    "now",
    "set_condition",
    "validate_name",
]

DEFAULT_NAMESPACE = "default"

# RFC 1123 subdomain, as Kubernetes requires of object names.
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_NAME_RE = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


# Core v1 kinds keep their fields beside metadata, not under ``spec``: a ConfigMap's
# ``data``, an Event's ``involvedObject``. Inside ketch they live in ``spec`` (one
# envelope for every kind: the store, validation and patches need no special case);
# the wire form, which is also what the store keeps and a watch sends, has them at the
# top level, as Kubernetes clients read them.
TOP_LEVEL_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("v1", "ConfigMap"): frozenset({"data", "binaryData", "immutable"}),
    ("v1", "Secret"): frozenset({"data", "stringData", "type", "immutable"}),
    ("v1", "Event"): frozenset({
        "involvedObject", "reason", "message", "type", "count", "firstTimestamp",
        "lastTimestamp", "source", "reportingComponent", "reportingInstance", "eventTime",
        "action", "related", "series"}),
}
# Cluster-scoped core kinds: their wire form has no metadata.namespace.
_CLUSTER_SCOPED = {("v1", "Namespace")}


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, UTC, second precision)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_name(value: str, what: str = "name") -> str:
    """Check an RFC 1123 name (lowercase alphanumerics, '-' and '.')."""
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} must be lowercase alphanumerics, '-' or '.', "
            "start and end with an alphanumeric, and be at most 253 characters"
        )
    return value


class KetchModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="forbid",
    )

    def to_wire(self) -> dict[str, Any]:
        """The model as it is stored and sent: camelCase keys, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OwnerReference(KetchModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(KetchModel):
    """Who set which fields (server-side apply); the server writes these, a client may
    only send back ones it read, or ``[]`` to clear them."""

    manager: str = Field("", max_length=128)
    operation: Literal["Apply", "Update"]
    api_version: str = ""
    time: str | None = None
    fields_type: Literal["FieldsV1"] = "FieldsV1"
    fields_v1: dict[str, Any] = Field(default_factory=dict)
    subresource: str | None = None

    @field_validator("fields_v1")
    @classmethod
    def _fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_fields_v1(value)
        return value


class ObjectMeta(KetchModel):
    name: str
    namespace: str = DEFAULT_NAMESPACE
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    owner_references: list[OwnerReference] = Field(default_factory=list)
    finalizers: list[str] = Field(default_factory=list)
    # None: not given (an update keeps the stored ones); [] clears them.
    managed_fields: list[ManagedFieldsEntry] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if len(value) > 63:
            raise ValueError("namespace must be at most 63 characters")
        return validate_name(value, "namespace")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not _LABEL_NAME_RE.match(key):
                raise ValueError(f"label key {key!r} is not a valid label name")
            if not _LABEL_VALUE_RE.match(val):
                raise ValueError(f"label {key!r} has invalid value {val!r}")
        return value


class Resource(KetchModel):
    """A resource of any kind; ``spec`` and ``status`` are validated by the kind."""

    model_config = ConfigDict(extra="forbid")

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _fold_top_level(cls, data: Any) -> Any:
        """A core kind's top-level fields (see ``TOP_LEVEL_FIELDS``) go into ``spec``."""
        if not isinstance(data, dict):
            return data
        fields = TOP_LEVEL_FIELDS.get((data.get("apiVersion"), data.get("kind")))  # type: ignore[arg-type]
        if not fields or not fields & data.keys():
            return data
        data = dict(data)
        spec = dict(data.get("spec") or {})
        for key in fields & data.keys():
            spec[key] = data.pop(key)
        data["spec"] = spec
        return data

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def resource_version(self) -> str | None:
        return self.metadata.resource_version

    def to_wire(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        meta = body["metadata"]
        for empty in ("labels", "annotations", "ownerReferences", "finalizers", "managedFields"):
            if not meta.get(empty):
                meta.pop(empty, None)
        key = (self.api_version, self.kind)
        fields = TOP_LEVEL_FIELDS.get(key)
        if fields:
            spec = body.pop("spec", {})
            # Beside metadata, before status: the order kubectl prints.
            status = body.pop("status")
            body.update({k: v for k, v in spec.items() if k in fields})
            body["status"] = status
        if key in _CLUSTER_SCOPED:
            meta.pop("namespace", None)
        return body


class Condition(KetchModel):
    """A Kubernetes-style condition: type, status True/False/Unknown, reason, message."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str = Field(default_factory=now)


def find_condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition of ``type_`` in a status mapping, or None."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def set_condition(status: dict[str, Any], type_: str, value: bool | str, reason: str = "",
                  message: str = "") -> None:
    """Add or update a condition in ``status`` in place.

    ``lastTransitionTime`` moves only when the condition's status changes, as
    Kubernetes does, so watchers can tell a transition from a refresh.
    """
    text = value if isinstance(value, str) else ("True" if value else "False")
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    for i, cond in enumerate(conditions):
        if cond.get("type") == type_:
            changed = cond.get("status") != text
            conditions[i] = {
                **cond, "status": text, "reason": reason, "message": message,
                "lastTransitionTime": now() if changed else cond.get("lastTransitionTime", now()),
            }
            break
    else:
        conditions.append(Condition(type=type_, status=text, reason=reason,
                                    message=message).to_wire())
    status["conditions"] = conditions
