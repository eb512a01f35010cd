"""What a table of objects shows of each: a column's value by its dotted path, as one
cell, and an object's age. ``ketch get`` prints them and the server's Kubernetes
``Table`` answers (what ``kubectl get`` prints) carry the same cells."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["CELL_WIDTH", "age", "cell", "lookup"]

# A table cell longer than this is cut (the whole value is in describe and -o yaml).
CELL_WIDTH = 80


def age(stamp: str | None) -> str:
    """Kubernetes-style age: 12s, 5m, 3h, 2d."""
    if not stamp:
        return "<unknown>"
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return stamp
    secs = max(int((datetime.now(UTC) - then).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def lookup(obj: dict[str, Any], path: str) -> Any:
    """``status.conditions[-1].reason`` into a plain mapping; None when absent."""
    value: Any = obj
    for part in path.split("."):
        match = re.fullmatch(r"(\w+)(?:\[(-?\d+)\])?", part)
        if match is None or not isinstance(value, dict):
            return None
        value = value.get(match.group(1))
        if match.group(2) is not None:
            if not isinstance(value, list) or not value:
                return None
            try:
                value = value[int(match.group(2))]
            except IndexError:
                return None
    return value


def cell(value: Any, width: int = CELL_WIDTH) -> str:
    """A value as one table cell: the last non-blank line of a multi-line text (where a
    traceback says what went wrong), cut to ``width`` characters."""
    if value is None:
        return ""
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text if len(text) <= width else text[:width - 3] + "..."
