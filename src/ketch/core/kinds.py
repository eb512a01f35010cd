"""The kind registry: each component declares its kinds in one place.

A ``KindInfo`` names a kind (group, version, kind, plural, singular, short
names) and carries its spec and status models. The registry resolves what a
user types (``job``, ``jobs``, ``Job``, a short name, or ``jobs.ketch.dev``)
to one kind, and validates a resource's spec against the kind's model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

# Re-exported: components and tests import them from here since before core.component.
from ketch.core.component import Component, LogReader
from ketch.core.errors import FieldError, InvalidError, UnknownKindError
from ketch.core.resources import Resource

__all__ = [
    "Column", "Component", "KindInfo", "KindRegistry", "LogOptions", "LogReader",
    "validation_fields",
]


@dataclass(frozen=True)
class Column:
    """A column of ``ketch get`` output: a header and a dotted path into the object."""

    name: str
    path: str
    wide_only: bool = False


@dataclass(frozen=True)
class KindInfo:
    """Everything the platform needs to know about one kind."""

    group: str
    version: str
    kind: str
    plural: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    has_logs: bool = False
    columns: tuple[Column, ...] = ()
    # The condition types a ``wait --for=condition=X`` may name, for help text.
    conditions: tuple[str, ...] = ()
    # Finalizers added on create, so the kind's controller cleans up on delete.
    finalizers: tuple[str, ...] = ()
    # Called as ``check_update(stored, proposed)`` before an update that changes the
    # spec; raises ``InvalidError`` to refuse it (say, a kind whose spec is immutable).
    check_update: Callable[[Resource, Resource], None] | None = None
    # Wire paths a list's ``fieldSelector`` may name beyond ``metadata.name`` (an
    # Event's ``involvedObject.name``); empty: ``metadata.name`` only.
    field_selectors: tuple[str, ...] = ()
    # Called as ``check(resource)`` with every validated object a client sends
    # (create, update, apply): rules across fields that a model cannot state with its
    # paths (a reference in one field to a name in another). Raises ``InvalidError``.
    check: Callable[[Resource], None] | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Stable identity of the kind in the store: ``plural.group``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def validate(self, resource: Resource, source: str | None = None) -> Resource:
        """Validate ``spec`` (and ``status`` if present); return it normalized.

        Raises ``InvalidError`` naming every wrong field as ``spec.x.y``.
        """
        if resource.api_version != self.api_version:
            raise InvalidError(
                "unsupported apiVersion",
                [FieldError("apiVersion", f"expected {self.api_version!r} for kind "
                            f"{self.kind}, got {resource.api_version!r}")],
                source,
            )
        spec = _validated(self.spec_model, resource.spec, "spec", source)
        status = (_validated(self.status_model, resource.status, "status", source)
                  if resource.status else {})
        checked = resource.model_copy(update={"spec": spec, "status": status})
        if self.check is not None:
            try:
                self.check(checked)
            except InvalidError as err:
                if source is None or err.source is not None or not err.fields:
                    raise
                raise InvalidError(f"invalid {self.kind}", err.fields, source) from None
        return checked

    def parse_spec(self, resource: Resource) -> Any:
        """The typed spec model of a stored (already valid) resource."""
        return self.spec_model.model_validate(resource.spec)

    def parse_status(self, resource: Resource) -> Any:
        return self.status_model.model_validate(resource.status or {})


def validation_fields(err: ValidationError, prefix: str = "") -> list[FieldError]:
    """Turn pydantic's errors into field paths such as ``spec.resources.cpu``."""
    fields = []
    for item in err.errors():
        parts = [prefix] if prefix else []
        parts += [f"[{p}]" if isinstance(p, int) else str(p) for p in item["loc"]]
        path = ".".join(parts).replace(".[", "[")
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "value_error":
            # A validator's own sentence; pydantic's prefix only adds noise to it.
            message = message.removeprefix("Value error, ")
        fields.append(FieldError(path, message))
    return fields


def _validated(model: type[BaseModel], data: dict[str, Any], prefix: str,
               source: str | None) -> dict[str, Any]:
    try:
        obj = model.model_validate(data)
    except ValidationError as err:
        raise InvalidError(f"invalid {prefix}", validation_fields(err, prefix), source) from None
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    attempt: int | None = None
    # A part of the object with a log of its own: a pipeline run's task (``train``,
    # ``for-loop-1/0/train``). Kinds without parts reject it.
    task: str | None = None
    # How long a follow waits for an object that has not started yet.
    start_timeout: float = 120.0


def upstream_choice(groups: Sequence[str]) -> int | None:
    """Of several kinds that answer to one name, the index of the single one in an
    upstream group (``kubeflow.org``, ``serving.kserve.io``, ...) rather than ketch's own
    (``*.ketch.dev``), as on a cluster: ``experiments`` is Katib's, while the pipelines'
    Experiment stays reachable by its short name ``exp`` or as
    ``experiments.pipelines.ketch.dev``. None when that does not settle it."""
    upstream = [i for i, group in enumerate(groups)
                if group != "ketch.dev" and not group.endswith(".ketch.dev")]
    return upstream[0] if len(upstream) == 1 else None


@dataclass
class KindRegistry:
    """All kinds known to this control plane, looked up by any of their names."""

    _kinds: dict[str, KindInfo] = field(default_factory=dict)

    def add(self, info: KindInfo) -> None:
        if info.key in self._kinds:
            raise ValueError(f"kind {info.key} is registered twice")
        self._kinds[info.key] = info

    def __iter__(self) -> Iterator[KindInfo]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    @classmethod
    def of(cls, kinds: Iterable[KindInfo]) -> KindRegistry:
        registry = cls()
        for info in kinds:
            registry.add(info)
        return registry

    def resolve(self, name: str) -> KindInfo:
        """A kind by plural, singular, kind or short name, case-insensitive.

        ``name`` may be qualified with its group (``jobs.ketch.dev``) to pick one
        of two kinds that share a short name.
        """
        wanted = name.strip().lower()
        matches = [info for info in self._kinds.values() if _names_of(info, wanted)]
        if len(matches) == 1:
            return matches[0]
        choice = upstream_choice([info.group for info in matches])
        if choice is not None:
            return matches[choice]
        if not matches:
            known = ", ".join(sorted(info.plural for info in self._kinds.values()))
            raise UnknownKindError(f"unknown kind {name!r}; known kinds: {known}")
        options = ", ".join(sorted(info.key for info in matches))
        raise UnknownKindError(f"kind {name!r} is ambiguous; say one of: {options}")

    def for_object(self, api_version: str, kind: str) -> KindInfo:
        """The kind a document declares by ``apiVersion`` and ``kind``."""
        group, _, version = api_version.rpartition("/")
        for info in self._kinds.values():
            if info.kind == kind and info.group == group:
                if info.version != version:
                    raise UnknownKindError(
                        f"{kind} is served as {info.api_version}, not {api_version}")
                return info
        raise UnknownKindError(f"unknown kind {kind!r} in apiVersion {api_version!r}")

    def for_plural(self, group: str, version: str, plural: str) -> KindInfo:
        info = self._kinds.get(f"{plural}.{group}" if group else plural)
        if info is None or info.version != version:
            raise UnknownKindError(f"the server has no resource {plural!r} in {group}/{version}")
        return info


def _names_of(info: KindInfo, wanted: str) -> bool:
    plain = {info.plural, info.singular, info.kind.lower(), *(s.lower() for s in info.short_names)}
    if wanted in plain:
        return True
    return any(wanted == f"{n}.{info.group}" for n in plain)
