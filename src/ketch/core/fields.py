"""Field selectors as kube-apiserver reads them, on list and watch.

Every kind allows ``metadata.name`` and ``metadata.namespace``, ``status.phase`` where its
status has a phase, and the paths it declares (``KindInfo.field_selectors``: an Event's
``involvedObject.name``...). Terms are joined by commas (all must hold), each ``=``,
``==`` or ``!=``, matched against the object's wire form. Any other field is a 400 naming
``fieldSelector``, in kube-apiserver's words (``field label not supported``). Names and
namespaces are read from the change log's columns; any other path decodes the object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ketch.core.codec import loads
from ketch.core.errors import BadRequestError, FieldError

if TYPE_CHECKING:
    from ketch.core.kinds import KindInfo
    from ketch.core.store import RawEvent

__all__ = ["FieldSelector", "has_phase"]

_META_FIELDS = ("metadata.name", "metadata.namespace")


def has_phase(info: KindInfo) -> bool:
    """Whether the kind's status has a ``phase`` (so ``status.phase`` can be selected)."""
    return "phase" in getattr(info.status_model, "model_fields", {})


def allowed_fields(info: KindInfo) -> tuple[str, ...]:
    """The paths a field selector may name on this kind."""
    phase = ("status.phase",) if has_phase(info) else ()
    declared = tuple(f for f in info.field_selectors if f not in _META_FIELDS + phase)
    return (*_META_FIELDS, *phase, *declared)


@dataclass(frozen=True)
class _Term:
    field: str
    equal: bool
    value: str

    def holds(self, actual: Any) -> bool:
        return (("" if actual is None else str(actual)) == self.value) == self.equal


@dataclass(frozen=True)
class FieldSelector:
    """The terms of one ``fieldSelector``; empty selects everything."""

    terms: tuple[_Term, ...] = ()

    @classmethod
    def for_kind(cls, text: str | None, info: KindInfo) -> FieldSelector:
        return cls.parse(text, allowed_fields(info))

    @classmethod
    def parse(cls, text: str | None, allowed: Iterable[str]) -> FieldSelector:
        if not text or not text.strip():
            return cls()
        supported = tuple(allowed)
        terms = []
        for part in text.split(","):
            if not part.strip():
                continue
            if "!=" in part:
                key, _, value = part.partition("!=")
                equal = False
            elif "=" in part:
                key, _, value = part.partition("=")
                value = value.removeprefix("=")  # "==" reads as "="
                equal = True
            else:
                raise BadRequestError("invalid field selector", [FieldError(
                    "fieldSelector", f"{part.strip()!r}: a term is FIELD=VALUE, "
                    "FIELD==VALUE or FIELD!=VALUE")])
            key = key.strip()
            if key not in supported:
                raise BadRequestError(f"field label not supported: {key}", [FieldError(
                    "fieldSelector", f"field label not supported: {key} (supported: "
                    f"{', '.join(supported)})")])
            terms.append(_Term(key, equal, value.strip()))
        return cls(tuple(terms))

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def name(self) -> str | None:
        """The one name an equality term pins: a watch then reads only that object."""
        return next((t.value for t in self.terms
                     if t.field == "metadata.name" and t.equal), None)

    @property
    def on_phase(self) -> bool:
        """Whether a term reads something other than the name and namespace (the phase,
        a declared path), which can change as the object does."""
        return any(t.field not in _META_FIELDS for t in self.terms)

    def matches(self, body: dict[str, Any]) -> bool:
        """Whether an object (its wire form) is selected."""
        return all(t.holds(_dig(body, t.field)) for t in self.terms)

    def matches_event(self, event: RawEvent) -> bool:
        """Whether a change-log entry's object is selected, decoding it only when a term
        reads more than its name and namespace."""
        if self.on_phase:
            return self.matches(loads(event.body_text))
        values = {"metadata.name": event.name, "metadata.namespace": event.namespace}
        return all(t.holds(values[t.field]) for t in self.terms)


def _dig(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
