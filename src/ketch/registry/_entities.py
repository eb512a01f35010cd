"""The registry's entities as the Kubeflow Model Registry API (v1 / v1alpha3) has them.

Create and update payloads are pydantic models with the upstream field names;
unknown fields are refused, as the upstream server does. ``ENTITIES`` says,
per entity type, which models validate it, which scope its name is unique in,
which field names its parent, and which field ``artifactType`` discriminates.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ARTIFACT_TYPES", "ENTITIES", "EntityDef", "artifact_entity",
           "validate_custom_properties"]

_ID = r"^[1-9][0-9]{0,8}$"
_INT_VALUE = re.compile(r"^-?([1-9][0-9]{0,8}|0)$")
_METADATA_FIELDS = {
    "MetadataStringValue": ("string_value", str),
    "MetadataIntValue": ("int_value", str),
    "MetadataDoubleValue": ("double_value", float),
    "MetadataBoolValue": ("bool_value", bool),
    "MetadataStructValue": ("struct_value", str),
}

ContextState = Literal["LIVE", "ARCHIVED"]
ArtifactState = Literal["UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED",
                        "ABANDONED", "REFERENCE"]
ExecutionState = Literal["UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED",
                         "CANCELED"]


def validate_custom_properties(props: Any, path: str = "customProperties") -> dict[str, Any]:
    """Check typed metadata values (``{"int_value": "3", "metadataType": ...}``);
    ``ValueError`` names the property and what is wrong with it."""
    if not isinstance(props, dict):
        raise ValueError(f"{path}: must be an object of typed values")
    out: dict[str, Any] = {}
    for key, value in props.items():
        where = f"{path}.{key}"
        if not isinstance(value, dict) or "metadataType" not in value:
            raise ValueError(f"{where}: must be an object with a metadataType")
        kind = value["metadataType"]
        if kind == "MetadataProtoValue":
            if set(value) - {"metadataType", "type", "proto_value"}:
                raise ValueError(f"{where}: unexpected fields for MetadataProtoValue")
            out[key] = dict(value)
            continue
        if kind not in _METADATA_FIELDS:
            raise ValueError(f"{where}.metadataType: {kind!r} is not one of "
                             f"{', '.join([*_METADATA_FIELDS, 'MetadataProtoValue'])}")
        field, expected = _METADATA_FIELDS[kind]
        extra = set(value) - {"metadataType", field}
        if extra:
            raise ValueError(f"{where}: unexpected field(s) {sorted(extra)} for {kind}")
        if field not in value:
            raise ValueError(f"{where}.{field}: required for {kind}")
        raw = value[field]
        if kind == "MetadataIntValue":
            raw = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
            if not isinstance(raw, str) or not _INT_VALUE.match(raw):
                raise ValueError(f"{where}.int_value: {value[field]!r} is not a 32-bit integer "
                                 "written as a string")
        elif kind == "MetadataDoubleValue":
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValueError(f"{where}.double_value: {raw!r} is not a number")
            raw = float(raw)
        elif not isinstance(raw, expected):
            raise ValueError(f"{where}.{field}: {raw!r} is not a {expected.__name__}")
        out[key] = {field: raw, "metadataType": kind}
    return out


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customProperties: dict[str, Any] | None = None
    description: str | None = None
    externalId: str | None = Field(default=None, max_length=255)

    @field_validator("customProperties")
    @classmethod
    def _props(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else validate_custom_properties(value)


def _name() -> Any:
    return Field(min_length=1, max_length=255)


# Upstream field names are camelCase on the wire; the N815 noqa marks say so.
class RegisteredModelUpdate(_Payload):
    readme: str | None = None
    maturity: str | None = None
    language: list[str] | None = None
    tasks: list[str] | None = None
    provider: str | None = None
    logo: str | None = None
    license: str | None = None
    licenseLink: str | None = None
    libraryName: str | None = None
    owner: str | None = None
    state: ContextState | None = None


class RegisteredModelCreate(RegisteredModelUpdate):
    name: str = _name()


class ModelVersionUpdate(_Payload):
    state: ContextState | None = None
    author: str | None = None


class ModelVersionCreate(ModelVersionUpdate):
    name: str = _name()
    registeredModelId: str = Field(pattern=_ID)


class _ArtifactUpdate(_Payload):
    uri: str | None = None
    state: ArtifactState | None = None


class ModelArtifactUpdate(_ArtifactUpdate):
    artifactType: Literal["model-artifact"] = "model-artifact"
    modelFormatName: str | None = None
    modelFormatVersion: str | None = None
    storageKey: str | None = None
    storagePath: str | None = None
    serviceAccountName: str | None = None
    modelSourceKind: str | None = None
    modelSourceClass: str | None = None
    modelSourceGroup: str | None = None
    modelSourceId: str | None = None
    modelSourceName: str | None = None
    experimentId: str | None = None
    experimentRunId: str | None = None


class DocArtifactUpdate(_ArtifactUpdate):
    artifactType: Literal["doc-artifact"] = "doc-artifact"
    experimentId: str | None = None
    experimentRunId: str | None = None


class DataSetUpdate(_ArtifactUpdate):
    artifactType: Literal["dataset-artifact"] = "dataset-artifact"
    digest: str | None = None
    sourceType: str | None = None
    source: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    profile: str | None = None
    experimentId: str | None = None
    experimentRunId: str | None = None


class MetricUpdate(_ArtifactUpdate):
    artifactType: Literal["metric"] = "metric"
    value: float | None = None
    timestamp: str | None = None
    step: str | int | None = None
    experimentId: str | None = None
    experimentRunId: str | None = None


class ParameterUpdate(_ArtifactUpdate):
    artifactType: Literal["parameter"] = "parameter"
    value: str | None = None
    parameterType: Literal["string", "number", "boolean", "object"] | None = None
    experimentId: str | None = None
    experimentRunId: str | None = None


def _with_name(update: type[_Payload], required: bool = False) -> type[_Payload]:
    name_field = _name() if required else Field(default=None, min_length=1, max_length=255)
    annotation = str if required else (str | None)
    return type(update.__name__.replace("Update", "Create"), (update,), {
        "__annotations__": {"name": annotation}, "name": name_field})


class ServingEnvironmentUpdate(_Payload):
    pass


class InferenceServiceUpdate(_Payload):
    modelVersionId: str | None = Field(default=None, pattern=_ID)
    runtime: str | None = None
    desiredState: Literal["DEPLOYED", "UNDEPLOYED"] | None = None


class InferenceServiceCreate(InferenceServiceUpdate):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    registeredModelId: str = Field(pattern=_ID)
    servingEnvironmentId: str = Field(pattern=_ID)


class ServeModelUpdate(_Payload):
    lastKnownState: ExecutionState | None = None


class ServeModelCreate(ServeModelUpdate):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    modelVersionId: str = Field(pattern=_ID)


class ExperimentUpdate(_Payload):
    owner: str | None = None
    state: ContextState | None = None


class ExperimentRunUpdate(_Payload):
    owner: str | None = None
    state: ContextState | None = None
    status: Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] | None = None
    startTimeSinceEpoch: str | None = None
    endTimeSinceEpoch: str | None = None


class ExperimentRunCreate(ExperimentRunUpdate):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    experimentId: str = Field(pattern=_ID)


@dataclass(frozen=True)
class EntityDef:
    """How one entity type is validated, scoped and linked to its parent."""

    name: str
    create: builtins.type[BaseModel]
    update: builtins.type[BaseModel]
    scope: str
    # The body field that names the parent (its id goes to parent_id), if any.
    parent_field: str | None = None
    parent_type: tuple[str, ...] = ()
    default_state: str | None = None
    artifact_type: str | None = None


_ARTIFACT_PARENTS = ("ModelVersion", "ExperimentRun")


def _artifact(type_: str, update: type[_Payload], tag: str) -> EntityDef:
    return EntityDef(type_, _with_name(update), update, scope="Artifact",
                     parent_type=_ARTIFACT_PARENTS, default_state="UNKNOWN", artifact_type=tag)


ENTITIES: dict[str, EntityDef] = {e.name: e for e in (
    EntityDef("RegisteredModel", RegisteredModelCreate, RegisteredModelUpdate,
              scope="RegisteredModel", default_state="LIVE"),
    EntityDef("ModelVersion", ModelVersionCreate, ModelVersionUpdate, scope="ModelVersion",
              parent_field="registeredModelId", parent_type=("RegisteredModel",),
              default_state="LIVE"),
    _artifact("ModelArtifact", ModelArtifactUpdate, "model-artifact"),
    _artifact("DocArtifact", DocArtifactUpdate, "doc-artifact"),
    _artifact("DataSet", DataSetUpdate, "dataset-artifact"),
    _artifact("Metric", MetricUpdate, "metric"),
    _artifact("Parameter", ParameterUpdate, "parameter"),
    EntityDef("ServingEnvironment", _with_name(ServingEnvironmentUpdate, required=True),
              ServingEnvironmentUpdate, scope="ServingEnvironment"),
    EntityDef("InferenceService", InferenceServiceCreate, InferenceServiceUpdate,
              scope="InferenceService", parent_field="servingEnvironmentId",
              parent_type=("ServingEnvironment",)),
    EntityDef("ServeModel", ServeModelCreate, ServeModelUpdate, scope="ServeModel",
              parent_type=("InferenceService",)),
    EntityDef("Experiment", _with_name(ExperimentUpdate, required=True), ExperimentUpdate,
              scope="Experiment", default_state="LIVE"),
    EntityDef("ExperimentRun", ExperimentRunCreate, ExperimentRunUpdate, scope="ExperimentRun",
              parent_field="experimentId", parent_type=("Experiment",), default_state="LIVE"),
)}

ARTIFACT_TYPES: dict[str, str] = {e.artifact_type: e.name for e in ENTITIES.values()
                                  if e.artifact_type}


def artifact_entity(tag: Any, what: str = "artifact") -> str:
    """The entity type an ``artifactType`` value names; ``InvalidError`` otherwise."""
    from ketch.core.errors import FieldError, InvalidError

    if tag not in ARTIFACT_TYPES:
        raise InvalidError(f"invalid {what}", [FieldError(
            "artifactType", f"{tag!r} is not one of {', '.join(sorted(ARTIFACT_TYPES))}")])
    return ARTIFACT_TYPES[str(tag)]
