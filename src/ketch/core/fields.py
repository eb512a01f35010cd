"""Field selectors (``fieldSelector=involvedObject.name=x,type!=Normal``) on the paths a
kind allows, as kube-apiserver accepts them: ``=``, ``==`` and ``!=`` terms joined by
commas, matched against the object's wire form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ketch.core.errors import BadRequestError, FieldError

__all__ = ["FieldSelector"]


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, str, bool], ...] = ()

    @classmethod
    def parse(cls, text: str | None, allowed: Iterable[str], what: str) -> FieldSelector:
        """``BadRequestError`` naming ``fieldSelector`` for a path not in ``allowed``."""
        allowed = tuple(allowed)
        terms = []
        for term in (text or "").split(","):
            if not term.strip():
                continue
            equal = "!=" not in term
            key, sep, value = term.replace("!=", "=").replace("==", "=").partition("=")
            key = key.strip()
            if not sep or key not in allowed:
                raise BadRequestError("unsupported field selector", [FieldError(
                    "fieldSelector", f"{term.strip()!r}: {what} support field selectors on "
                    f"{', '.join(allowed)}")])
            terms.append((key, value.strip(), equal))
        return cls(tuple(terms))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, body: dict[str, Any]) -> bool:
        return all((_text(_dig(body, key)) == value) == equal
                   for key, value, equal in self.terms)

    def only_name(self) -> str | None:
        """The name of a selector that is exactly ``metadata.name=X``, else None."""
        if len(self.terms) == 1 and self.terms[0][0] == "metadata.name" and self.terms[0][2]:
            return self.terms[0][1]
        return None


def _dig(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)
