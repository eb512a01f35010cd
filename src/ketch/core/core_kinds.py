"""Kubernetes' core v1 kinds that Kubeflow's clients read: ConfigMap, Secret,
Namespace, Event, and Pod (a view of executor units, never stored).

They are registered in every control plane's kind registry with group ``""``, so
they are served at ``/api/v1/...`` and discovery lists them there. ConfigMap, Secret
and Event keep their fields at the top level on the wire (``ketch.core.resources.
TOP_LEVEL_FIELDS``); inside ketch those fields live in ``spec``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ketch.core.kinds import Column, KindInfo
from ketch.core.resources import KetchModel

__all__ = ["CONFIGMAP", "CORE_KINDS", "EVENT", "NAMESPACE", "POD", "SECRET"]


class _Empty(KetchModel):
    """The status of a kind that has none (ConfigMap, Secret, Event)."""


class ConfigMapSpec(KetchModel):
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None

    @field_validator("binary_data")
    @classmethod
    def _base64(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_base64(value)


def _check_base64(value: dict[str, str] | None) -> dict[str, str] | None:
    for key, text in (value or {}).items():
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{key!r}: not valid base64") from None
    return value


class SecretSpec(KetchModel):
    data: dict[str, str] | None = None
    string_data: dict[str, str] | None = None
    type: str = "Opaque"
    immutable: bool | None = None

    @field_validator("data")
    @classmethod
    def _base64(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_base64(value)

    @model_validator(mode="after")
    def _merge_string_data(self) -> SecretSpec:
        # As kube-apiserver does: stringData is write-only, merged into data (base64),
        # winning over a data key of the same name, and never read back.
        if self.string_data:
            data = dict(self.data or {})
            for key, text in self.string_data.items():
                data[key] = base64.b64encode(text.encode()).decode()
            self.data = data
        self.string_data = None
        return self


class NamespaceSpec(KetchModel):
    finalizers: list[str] | None = None


class NamespaceStatus(KetchModel):
    phase: Literal["Active", "Terminating"] | None = None


class ObjectReference(KetchModel):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class EventSource(KetchModel):
    component: str | None = None
    host: str | None = None


class EventSpec(KetchModel):
    involved_object: ObjectReference = Field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    type: str | None = None
    count: int | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    source: EventSource | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None
    event_time: str | None = None
    action: str | None = None
    related: ObjectReference | None = None
    series: dict[str, Any] | None = None


class _Open(KetchModel):
    """A pod's spec and status: built by ketch, never written by users."""

    model_config = ConfigDict(extra="allow")


CONFIGMAP = KindInfo(
    group="", version="v1", kind="ConfigMap", plural="configmaps",
    spec_model=ConfigMapSpec, status_model=_Empty, short_names=("cm",))
SECRET = KindInfo(
    group="", version="v1", kind="Secret", plural="secrets",
    spec_model=SecretSpec, status_model=_Empty,
    columns=(Column("TYPE", "type"),))
NAMESPACE = KindInfo(
    group="", version="v1", kind="Namespace", plural="namespaces",
    spec_model=NamespaceSpec, status_model=NamespaceStatus, short_names=("ns",),
    namespaced=False, columns=(Column("STATUS", "status.phase"),))
EVENT = KindInfo(
    group="", version="v1", kind="Event", plural="events",
    spec_model=EventSpec, status_model=_Empty, short_names=("ev",),
    field_selectors=("metadata.name", "metadata.namespace", "involvedObject.kind",
                     "involvedObject.name", "involvedObject.uid", "involvedObject.namespace",
                     "involvedObject.apiVersion", "involvedObject.resourceVersion",
                     "involvedObject.fieldPath", "reason", "type", "source"),
    columns=(Column("LAST SEEN", "lastTimestamp"), Column("TYPE", "type"),
             Column("REASON", "reason"), Column("OBJECT", "involvedObject.name"),
             Column("MESSAGE", "message")))
POD = KindInfo(
    group="", version="v1", kind="Pod", plural="pods",
    spec_model=_Open, status_model=_Open, short_names=("po",), has_logs=True,
    columns=(Column("STATUS", "status.phase"), Column("NODE", "spec.nodeName", True)))

CORE_KINDS: tuple[KindInfo, ...] = (CONFIGMAP, SECRET, NAMESPACE, EVENT, POD)
