"""Unknown fields in a written object, as kube-apiserver's ``fieldValidation`` treats them.

``Strict`` refuses the write with 400 BadRequest naming every unknown field
(``strict decoding error: unknown field "spec.foo"``, each in ``details.causes``);
``Warn`` drops them and says so in a warning (``unknown field "spec.foo"``, which the
server sends as a ``Warning: 299`` header), as a CRD's schema prunes them; ``Ignore``
drops them silently. Without the parameter ketch refuses them as invalid (422 naming
each field): a field the platform does not know is one it would not honour, and the
house rule is that nothing a user wrote is dropped unsaid. kube-apiserver's own default
is ``Warn``; kubectl sends ``Strict``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from ketch.core.errors import BadRequestError, FieldError

__all__ = ["FieldValidation", "UnknownFields", "parse_field_validation"]

Directive = Literal["Strict", "Warn", "Ignore"]
_DIRECTIVES: tuple[Directive, ...] = ("Strict", "Warn", "Ignore")
# Each round removes what pydantic reported; a nested model past a removed field may
# report more the next round, so a few rounds, never an unbounded loop.
_ROUNDS = 8


def parse_field_validation(text: str | None) -> FieldValidation:
    """The request's ``fieldValidation`` (case as Kubernetes spells it); anything else is
    a 400 naming the parameter."""
    if not text:
        return FieldValidation(None)
    for directive in _DIRECTIVES:
        if text == directive:
            return FieldValidation(directive)
    raise BadRequestError("invalid fieldValidation", [FieldError(
        "fieldValidation", f"{text[:40]!r} is not one of Strict, Warn, Ignore")])


@dataclass
class UnknownFields:
    """The unknown fields one write carried, by path (``spec.foo``, ``spec.items[0].x``)."""

    paths: list[str] = field(default_factory=list)


@dataclass
class FieldValidation:
    """One request's directive (None: refuse as invalid) and the warnings it gathered."""

    directive: Directive | None
    warnings: list[str] = field(default_factory=list)

    @property
    def drops(self) -> bool:
        return self.directive in ("Warn", "Ignore", "Strict")

    def prune(self, model: type[BaseModel], data: Any, prefix: str,
              found: UnknownFields) -> Any:
        """``data`` less the fields ``model`` does not declare (added to ``found``); left
        as it is without a directive, so that validation names them as invalid."""
        if not self.drops or not isinstance(data, dict):
            return data
        copied = False
        for _ in range(_ROUNDS):
            try:
                model.model_validate(data)
                return data
            except ValidationError as err:
                extras = [tuple(e["loc"]) for e in err.errors() if e["type"] == "extra_forbidden"]
            if not extras:
                return data
            if not copied:
                data, copied = copy.deepcopy(data), True
            removed = [loc for loc in extras if _remove(data, loc)]
            if not removed:
                return data  # a union's branch named the field: validation reports it
            found.paths.extend(_path(prefix, loc) for loc in removed)
        return data

    def settle(self, found: UnknownFields, kind: str, version: str) -> None:
        """Refuse (Strict) or warn about (Warn) what ``prune`` dropped."""
        if not found.paths:
            return
        if self.directive == "Strict":
            listed = ", ".join(f'unknown field "{p}"' for p in found.paths)
            err = BadRequestError(f'{kind} in version "{version}" cannot be handled as a '
                                  f"{kind}: strict decoding error: {listed}")
            err.fields = [FieldError(p, "field not declared in schema") for p in found.paths]
            raise err
        if self.directive == "Warn":
            self.warnings.extend(f'unknown field "{p}"' for p in found.paths)


def _remove(data: Any, loc: tuple[Any, ...]) -> bool:
    target = data
    for part in loc[:-1]:
        in_dict = isinstance(target, dict) and part in target
        in_list = isinstance(target, list) and isinstance(part, int) and part < len(target)
        if in_dict or in_list:
            target = target[part]
        else:
            return False
    if isinstance(target, dict) and loc and loc[-1] in target:
        del target[loc[-1]]
        return True
    return False


def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    parts += [f"[{p}]" if isinstance(p, int) else str(p) for p in loc]
    return ".".join(parts).replace(".[", "[")
