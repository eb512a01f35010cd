"""What the registry routes answer, for /openapi.json (and the dashboard's generated
types): an entity is its create payload's fields plus what the server sets.

Only documentation: the routes send the store's dicts as they are.
tests/server/test_openapi_types.py validates real answers against these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from ketch.registry._entities import ARTIFACT_TYPES, ENTITIES

__all__ = ["ARTIFACT_MODELS", "ENTITY_MODELS", "MetadataValue", "page_model"]



def _absent_not_null(schema: dict[str, Any]) -> None:
    """Document an optional field as "may be absent", not "may be null": the store
    drops None fields (``exclude_none``), so an answer never holds a null."""
    for field in schema.get("properties", {}).values():
        options = field.get("anyOf")
        if options and {"type": "null"} in options:
            field.pop("anyOf")
            field.pop("default", None)
            rest = [o for o in options if o != {"type": "null"}]
            field.update(rest[0] if len(rest) == 1 else {"anyOf": rest})


# How every read model is configured: unknown keys refused, so the test that
# validates real answers catches a field a model lacks.
_READ = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_absent_not_null)


class MetadataValue(BaseModel):
    """One custom property: a typed value, ``metadataType`` saying which field holds it."""

    model_config = _READ

    metadataType: Literal["MetadataStringValue", "MetadataIntValue",
                          "MetadataDoubleValue", "MetadataBoolValue",
                          "MetadataStructValue", "MetadataProtoValue"]
    string_value: str | None = None
    int_value: str | None = None  # a 32-bit integer written as a string, as upstream's
    double_value: float | None = None
    bool_value: bool | None = None
    struct_value: str | None = None
    proto_value: str | None = None
    type: str | None = None  # MetadataProtoValue's type URL


# Set by the server on every entity; the payload models' validators are not copied
# (a read model checks shape, not what a write may say).
_SERVER_FIELDS: dict[str, Any] = {
    "id": (str, ...),
    "name": (str, ...),
    "createTimeSinceEpoch": (str, ...),
    "lastUpdateTimeSinceEpoch": (str, ...),
    "customProperties": (dict[str, MetadataValue], ...),
}


def _read_model(entity: str) -> type[BaseModel]:
    create = ENTITIES[entity].create
    fields = {name: (info.annotation, info) for name, info in create.model_fields.items()
              if name not in _SERVER_FIELDS}
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        entity, __config__=_READ,
        **fields, **_SERVER_FIELDS)
    return model


ENTITY_MODELS: dict[str, type[BaseModel]] = {
    name: _read_model(name) for name in ("RegisteredModel", "ModelVersion",
                                         *ARTIFACT_TYPES.values())}
ARTIFACT_MODELS = tuple(ENTITY_MODELS[name] for name in ARTIFACT_TYPES.values())


def page_model(name: str, item: Any) -> type[BaseModel]:
    """A list page of ``item`` (upstream's ``{"items", "nextPageToken", "pageSize", "size"}``)."""
    model: type[BaseModel] = create_model(
        name, __config__=_READ,
        items=(list[item], ...), nextPageToken=(str, ...), pageSize=(int, ...),
        size=(int, ...))
    return model
