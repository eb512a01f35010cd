"""The shapes of ketch's own JSON answers, for /openapi.json (and so for the
dashboard's generated TypeScript types, ui/src/core/openapi.ts).

The routes keep building their bodies by hand; these models only document them
(``responses={200: {"model": ...}}``), so declaring one never changes what a route
sends. tests/server/test_openapi_types.py validates real answers against them,
which is what keeps a model and its route in step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ketch.core.kinds import KindInfo
from ketch.core.resources import Condition, KetchModel, ObjectMeta

__all__ = ["ArtifactInfo", "ComponentList", "KindList", "NamespaceList", "documented",
           "kind_list_schema", "kind_object_schema", "kind_schema"]

REF = "#/components/schemas/{model}"


class _Wire(KetchModel):
    # Forbidding extra keys makes the test that validates real answers catch a
    # field a route sends but its model does not declare.
    model_config = ConfigDict(extra="forbid")


class KindColumn(_Wire):
    name: str
    path: str
    wide_only: bool


class KindEntry(_Wire):
    """A kind as /api/ketch/kinds and /api/ketch/components describe it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: list[str]
    has_logs: bool
    conditions: list[str]
    columns: list[KindColumn]


class DashboardPage(_Wire):
    path: str
    title: str
    kinds: list[str]


class ComponentEntry(_Wire):
    """One installed component: its declaration (verbs, client facade, pages) and kinds."""

    name: str
    description: str
    cli: list[str]
    sdk: str | None
    dashboard: list[DashboardPage]
    kinds: list[KindEntry]


class KindList(_Wire):
    items: list[KindEntry]


class ComponentList(_Wire):
    items: list[ComponentEntry]


class NamespaceMeta(_Wire):
    name: str
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    finalizers: list[str] | None = None


class NamespacePhase(_Wire):
    phase: Literal["Active", "Terminating"]


class NamespaceListMeta(_Wire):
    resource_version: str


class Namespace(_Wire):
    api_version: Literal["v1"]
    kind: Literal["Namespace"]
    metadata: NamespaceMeta
    spec: dict[str, Any]
    status: NamespacePhase


class NamespaceList(_Wire):
    kind: Literal["NamespaceList"]
    api_version: Literal["v1"]
    metadata: NamespaceListMeta
    items: list[Namespace]


class ArtifactEntry(_Wire):
    name: str
    type: Literal["file", "directory"]
    size: int | None


class ArtifactInfo(_Wire):
    """What an artifact URI is: a file (size; null when a remote store does not say)
    or a directory (its first entries, and whether there were more)."""

    uri: str
    key: str
    type: Literal["file", "directory"]
    size: int | None = None
    entries: list[ArtifactEntry] | None = None
    truncated: bool | None = None


class ListMeta(BaseModel):
    """A kind list's metadata; ``continue`` is there only when a further page is."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    resource_version: str = Field(alias="resourceVersion")
    continue_: str | None = Field(default=None, alias="continue")


def documented(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering ``model`` with status 200."""
    return {200: {"model": model}}


def _named(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    """A $ref to ``model``'s schema, which (and whose own $defs) go into ``defs``."""
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, ref_template=REF)
    found = schema.pop("$defs", {})
    found[model.__name__] = schema
    for name, each in found.items():
        # Two models of one name would make one kind's schema describe another's.
        if defs.setdefault(name, each) != each:
            raise RuntimeError(f"two different OpenAPI schemas named {name!r}")
    return {"$ref": REF.format(model=model.__name__)}


def kind_schema(info: KindInfo, defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a whole object of this kind (spec and status from its models)."""
    return {
        "type": "object",
        "title": info.kind,
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"type": "string", "enum": [info.api_version]},
            "kind": {"type": "string", "enum": [info.kind]},
            "metadata": _named(ObjectMeta, defs),
            "spec": _named(info.spec_model, defs),
            "status": _named(info.status_model, defs),
        },
    }


def kind_object_schema(info: KindInfo, defs: dict[str, Any]) -> dict[str, Any]:
    """A $ref to the named schema of an object of this kind (added to ``defs``)."""
    defs.setdefault(info.kind, kind_schema(info, defs))
    _named(Condition, defs)  # what every kind's status.conditions hold
    return {"$ref": REF.format(model=info.kind)}


def kind_list_schema(info: KindInfo, defs: dict[str, Any]) -> dict[str, Any]:
    """A $ref to the named schema of a list of this kind (``{Kind}List``)."""
    name = f"{info.kind}List"
    defs.setdefault(name, {
        "type": "object",
        "title": name,
        "required": ["apiVersion", "kind", "metadata", "items"],
        "properties": {
            "apiVersion": {"type": "string", "enum": [info.api_version]},
            "kind": {"type": "string", "enum": [name]},
            "metadata": _named(ListMeta, defs),
            "items": {"type": "array", "items": kind_object_schema(info, defs)},
        },
    })
    return {"$ref": REF.format(model=name)}
