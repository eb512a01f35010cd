"""Lineage entities (frozen dataclasses), their row conversion and input checks.

Private to ``ketch.core.lineage``, which re-exports the public names.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from sqlalchemy import Row

from ketch.core.errors import FieldError, InvalidError
from ketch.core.resources import validate_name

__all__ = [
    "ARTIFACT_STATES", "DEFAULT_DEPTH", "EVENT_TYPES", "EXECUTION_STATES", "MAX_DEPTH",
    "MAX_PAGE", "Artifact", "ArtifactRef", "CachedExecution", "Context", "Event", "EventType",
    "Execution", "LineageGraph", "NewArtifact", "RecordedExecution", "Slots",
    "artifact_from_row", "check_choice", "check_depth", "check_json", "check_namespace",
    "check_page", "check_text", "context_from_row", "event_from_row", "execution_from_row",
    "now_ms", "slot_refs",
]

ExecutionState = Literal["UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED",
                         "CANCELED"]
ArtifactState = Literal["UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED",
                        "ABANDONED", "REFERENCE"]
EventType = Literal["INPUT", "OUTPUT"]
EXECUTION_STATES: tuple[str, ...] = get_args(ExecutionState)
ARTIFACT_STATES: tuple[str, ...] = get_args(ArtifactState)
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

DEFAULT_DEPTH = 10
MAX_DEPTH = 100
MAX_PAGE = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Artifact:
    """A piece of data at ``uri``, of an MLMD ``type`` such as ``system.Model``."""

    id: int
    type: str
    uri: str
    name: str
    state: str
    namespace: str
    custom_properties: dict[str, Any]
    create_time_ms: int
    update_time_ms: int

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "uri": self.uri, "name": self.name,
                "state": self.state, "namespace": self.namespace,
                "customProperties": self.custom_properties,
                "createTimeSinceEpoch": self.create_time_ms,
                "lastUpdateTimeSinceEpoch": self.update_time_ms}


@dataclass(frozen=True)
class Execution:
    """One run of one step. Parameters are in ``custom_properties['inputs'|'outputs']``."""

    id: int
    type: str
    name: str
    state: str
    namespace: str
    custom_properties: dict[str, Any]
    cache_key: str | None
    create_time_ms: int
    update_time_ms: int

    @property
    def input_parameters(self) -> dict[str, Any]:
        return dict(self.custom_properties.get("inputs") or {})

    @property
    def output_parameters(self) -> dict[str, Any]:
        return dict(self.custom_properties.get("outputs") or {})

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "name": self.name, "state": self.state,
                "namespace": self.namespace, "customProperties": self.custom_properties,
                "cacheKey": self.cache_key, "createTimeSinceEpoch": self.create_time_ms,
                "lastUpdateTimeSinceEpoch": self.update_time_ms}


@dataclass(frozen=True)
class Context:
    """A group of artifacts and executions: a pipeline, a run, an experiment."""

    id: int
    type: str
    name: str
    namespace: str
    parent_id: int | None
    properties: dict[str, Any]
    create_time_ms: int
    update_time_ms: int

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "name": self.name,
                "namespace": self.namespace, "parentId": self.parent_id,
                "properties": self.properties, "createTimeSinceEpoch": self.create_time_ms,
                "lastUpdateTimeSinceEpoch": self.update_time_ms}


@dataclass(frozen=True)
class Event:
    """``artifact_id`` was an ``INPUT`` or ``OUTPUT`` of ``execution_id`` in slot ``path``."""

    id: int
    artifact_id: int
    execution_id: int
    type: str
    path: str
    time_ms: int

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "artifactId": self.artifact_id,
                "executionId": self.execution_id, "type": self.type, "path": self.path,
                "millisecondsSinceEpoch": self.time_ms}


@dataclass(frozen=True)
class NewArtifact:
    """An artifact to create while recording an execution."""

    type: str
    uri: str
    name: str = ""
    state: str = "LIVE"
    custom_properties: Mapping[str, Any] = field(default_factory=dict)


# An existing artifact by id, or one to create.
ArtifactRef = int | NewArtifact
Slots = Mapping[str, ArtifactRef | Sequence[ArtifactRef]]


@dataclass(frozen=True)
class RecordedExecution:
    """An execution with its artifacts by slot (each slot: artifacts in event order)."""

    execution: Execution
    inputs: dict[str, list[Artifact]]
    outputs: dict[str, list[Artifact]]


@dataclass(frozen=True)
class CachedExecution:
    """What the cache hands back: the earlier execution, its outputs by slot, and its
    output parameters."""

    execution: Execution
    output_artifacts: dict[str, list[Artifact]]
    output_parameters: dict[str, Any]


@dataclass(frozen=True)
class LineageGraph:
    """A connected piece of the lineage graph, each list ordered by id."""

    artifacts: list[Artifact]
    executions: list[Execution]
    events: list[Event]

    def to_api(self) -> dict[str, Any]:
        return {"artifacts": [a.to_api() for a in self.artifacts],
                "executions": [e.to_api() for e in self.executions],
                "events": [e.to_api() for e in self.events]}


# -- row conversion -------------------------------------------------------------

def artifact_from_row(row: Row[Any]) -> Artifact:
    return Artifact(id=row.id, type=row.type, uri=row.uri, name=row.name, state=row.state,
                    namespace=row.namespace, custom_properties=dict(row.custom_properties),
                    create_time_ms=row.create_ms, update_time_ms=row.update_ms)


def execution_from_row(row: Row[Any]) -> Execution:
    return Execution(id=row.id, type=row.type, name=row.name, state=row.state,
                     namespace=row.namespace, custom_properties=dict(row.custom_properties),
                     cache_key=row.cache_key, create_time_ms=row.create_ms,
                     update_time_ms=row.update_ms)


def context_from_row(row: Row[Any]) -> Context:
    return Context(id=row.id, type=row.type, name=row.name, namespace=row.namespace,
                   parent_id=row.parent_id, properties=dict(row.properties),
                   create_time_ms=row.create_ms, update_time_ms=row.update_ms)


def event_from_row(row: Row[Any]) -> Event:
    return Event(id=row.id, artifact_id=row.artifact_id, execution_id=row.execution_id,
                 type=row.type, path=row.path, time_ms=row.time_ms)


# -- validation -----------------------------------------------------------------

def check_choice(value: str, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise InvalidError(f"invalid {where}", [FieldError(
            where, f"{value!r} is not one of {', '.join(allowed)}")])
    return value


def check_text(value: str, where: str, limit: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty):
        raise InvalidError(f"invalid {where}", [FieldError(where, "must be a non-empty string")])
    if len(value) > limit:
        raise InvalidError(f"invalid {where}", [FieldError(
            where, f"must be at most {limit} characters, got {len(value)}")])
    return value


def check_namespace(namespace: str) -> str:
    try:
        return validate_name(namespace, "namespace")
    except (ValueError, TypeError) as err:
        raise InvalidError("invalid namespace", [FieldError("namespace", str(err))]) from None


def check_json(value: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidError(f"invalid {where}", [FieldError(
            where, "must be a mapping with string keys")])
    return dict(value)


def slot_refs(slots: Slots, where: str) -> list[tuple[str, ArtifactRef]]:
    pairs: list[tuple[str, ArtifactRef]] = []
    for slot, refs in slots.items():
        check_text(slot, f"{where}.{slot}", 255)
        items = [refs] if isinstance(refs, int | NewArtifact) else list(refs)
        for ref in items:
            if isinstance(ref, bool) or not isinstance(ref, int | NewArtifact):
                raise InvalidError(f"invalid {where}", [FieldError(
                    f"{where}.{slot}", f"{ref!r} is neither an artifact id nor a NewArtifact")])
            pairs.append((slot, ref))
    return pairs


def check_depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidError("invalid depth", [FieldError(
            "depth", f"must be an integer from 1 to {MAX_DEPTH}, got {depth!r}")])
    return depth


def check_page(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidError("invalid limit", [FieldError(
            "limit", f"must be an integer from 1 to {MAX_PAGE}, got {limit!r}")])
    return limit
