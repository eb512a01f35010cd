"""Google-style (and ``:param x:``) docstrings: the pipeline description and the
per-input/output descriptions kfp writes into the IR."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Docstring", "parse_docstring"]

_SECTIONS = {"args", "arguments", "parameters", "params", "returns", "return", "raises",
             "yields", "yield", "example", "examples", "attributes", "note", "notes",
             "warning", "warnings", "see also", "todo", "other parameters", "keyword args",
             "keyword arguments"}
_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "other parameters",
                   "keyword args", "keyword arguments"}
_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_REST = re.compile(r"^:param\s+(?:\S+\s+)?(\w+)\s*:\s*(.*)$")


@dataclass
class Docstring:
    """What kfp reads from a docstring."""

    short: str | None = None
    long: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    returns: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> str | None:
        """``short + '\\n' + long``, as kfp builds a pipeline's description."""
        if self.short and self.long:
            return f"{self.short}\n{self.long}".strip()
        return self.short.strip() if self.short else None


def _items(lines: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    current: str | None = None
    base_indent: int | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        base_indent = indent if base_indent is None else base_indent
        match = _ITEM.match(line.strip())
        if indent <= base_indent and match:
            current = match.group(1).lstrip("*")
            result[current] = match.group(3).strip()
        elif current is not None:
            result[current] = f"{result[current]}\n{line.strip()}".strip()
    return result


def parse_docstring(doc: str | None) -> Docstring:
    """Split a (cleaned, ``inspect.getdoc``) docstring into kfp's pieces."""
    parsed = Docstring()
    if not doc or not doc.strip():
        return parsed
    lines = doc.strip("\n").splitlines()
    rest = [line for line in lines if _REST.match(line.strip())]
    for line in rest:
        match = _REST.match(line.strip())
        if match:
            parsed.params[match.group(1)] = match.group(2).strip()
    lines = [line for line in lines if not line.strip().startswith(":")]
    sections: dict[str, list[str]] = {}
    body: list[str] = []
    current: list[str] | None = None
    for line in lines:
        header = line.strip().rstrip(":").lower()
        if line.strip().endswith(":") and header in _SECTIONS and not line.startswith(" "):
            current = sections.setdefault(header, [])
            continue
        (current if current is not None else body).append(line)
    if body and body[0].strip():
        parsed.short = body[0].strip()
        long = "\n".join(body[1:]).strip()
        parsed.long = long or None
    for name, section in sections.items():
        if name in _PARAM_SECTIONS:
            parsed.params.update(_items(section))
        elif name in ("returns", "return"):
            parsed.returns.update(_items(section))
    return parsed
