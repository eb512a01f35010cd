"""Import lines for custom artifact classes a component's signature uses.

kfp embeds ``from <module> import <Class>`` (or ``import <module>``) ahead of the
function's source so that ``Output[my_types.VertexModel]`` still resolves when the step
runs; the name imported is the one the annotation starts with.
"""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Callable
from typing import Any

from ketch.pipelines.dsl import _types as t
from ketch.pipelines.dsl._artifacts import SCHEMA_TITLE_TO_TYPE

__all__ = ["custom_artifact_imports"]

_STANDARD = set(SCHEMA_TITLE_TO_TYPE.values())


def _base_symbol(node: ast.expr | None) -> str | None:
    """``Output[a.b.C]`` -> ``a``; ``C`` -> ``C`` (the first name of the annotation)."""
    while node is not None and not isinstance(node, ast.Name):
        if isinstance(node, ast.Subscript):
            node = node.slice
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return None
    return node.id if node is not None else None


def _import_line(cls: type, symbol: str | None) -> str | None:
    parts = f"{cls.__module__}.{cls.__qualname__}".split(".")
    if symbol is None or symbol not in parts:
        raise TypeError(f"custom artifact class {cls.__qualname__} is referenced through an "
                        f"alias ({symbol!r}); reference it by the name it is defined with")
    path = parts[:parts.index(symbol) + 1]
    if len(path) == 1:
        return f"import {path[0]}"
    return f"from {'.'.join(path[:-1])} import {path[-1]}"


def _custom(annotation: Any) -> type | None:
    inner = t.unwrap_marker(t.strip_optional(annotation)[0])
    if t.marker_of(annotation) is None:
        return None
    if t.is_artifact_class(inner) and inner not in _STANDARD:
        return inner  # type: ignore[no-any-return]
    return None


def custom_artifact_imports(func: Callable[..., Any], source: str) -> list[str]:
    """The import lines kfp adds for ``func``'s custom artifact annotations."""
    hints = typing.get_type_hints(func, include_extras=True)
    try:
        node = ast.parse(source).body[0]
    except (SyntaxError, IndexError):
        return []
    if not isinstance(node, ast.FunctionDef):
        return []
    arg_nodes = {a.arg: a.annotation for a in node.args.args}
    lines: list[str] = []
    for name in inspect.signature(func).parameters:
        cls = _custom(hints.get(name))
        if cls is not None:
            line = _import_line(cls, _base_symbol(arg_nodes.get(name)))
            if line and line not in lines:
                lines.append(line)
    returned = hints.get("return")
    if isinstance(returned, type) and t.is_artifact_class(returned) and \
            returned not in _STANDARD:
        line = _import_line(returned, _base_symbol(node.returns))
        if line and line not in lines:
            lines.append(line)
    return lines
