"""Field selectors as kube-apiserver reads them, on list and watch.

``metadata.name``, ``metadata.namespace`` and, where the kind's status has a phase,
``status.phase``; terms joined by commas (all must hold), each ``=``, ``==`` or ``!=``.
Any other field is a 400 naming ``fieldSelector``, with kube-apiserver's own words
(``field label not supported``). Names and namespaces are read from the change log's
columns; only ``status.phase`` decodes an object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ketch.core.codec import loads
from ketch.core.errors import BadRequestError, FieldError
from ketch.core.kinds import KindInfo
from ketch.core.store import RawEvent

__all__ = ["FieldSelector", "has_phase"]

_META_FIELDS = ("metadata.name", "metadata.namespace")


def has_phase(info: KindInfo) -> bool:
    """Whether the kind's status has a ``phase`` (so ``status.phase`` can be selected)."""
    return "phase" in getattr(info.status_model, "model_fields", {})


@dataclass(frozen=True)
class _Term:
    field: str
    equal: bool
    value: str

    def holds(self, actual: str | None) -> bool:
        return (actual == self.value) == self.equal


@dataclass(frozen=True)
class FieldSelector:
    """The terms of one ``fieldSelector``; empty selects everything."""

    terms: tuple[_Term, ...] = ()

    @classmethod
    def parse(cls, text: str | None, info: KindInfo) -> FieldSelector:
        if not text or not text.strip():
            return cls()
        supported = (*_META_FIELDS, "status.phase") if has_phase(info) else _META_FIELDS
        terms = []
        for part in text.split(","):
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

    @property
    def name(self) -> str | None:
        """The one name an equality term pins: a watch then reads only that object."""
        return next((t.value for t in self.terms
                     if t.field == "metadata.name" and t.equal), None)

    @property
    def on_phase(self) -> bool:
        """Whether a term reads ``status.phase``, which changes as the object does."""
        return any(t.field == "status.phase" for t in self.terms)

    def matches(self, body: dict[str, Any]) -> bool:
        """Whether an object (its wire form) is selected."""
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        values = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
                  "status.phase": status.get("phase")}
        return all(t.holds(values[t.field]) for t in self.terms)

    def matches_event(self, event: RawEvent) -> bool:
        """Whether a change-log entry's object is selected, decoding it only for a phase."""
        if self.on_phase:
            return self.matches(loads(event.body_text))
        values = {"metadata.name": event.name, "metadata.namespace": event.namespace}
        return all(t.holds(values[t.field]) for t in self.terms)
