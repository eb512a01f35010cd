"""Printing resources: tables, JSON, YAML, ages (public: components' CLI verbs use it)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import yaml

from ketch.client import KindRef
from ketch.core.resources import Resource

__all__ = ["age", "cell", "dump", "duration", "lookup", "table"]

# A table cell longer than this is cut (the whole value is in describe and -o yaml).
CELL_WIDTH = 80


def _parse_time(stamp: Any) -> datetime | None:
    try:
        return datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def duration(start: Any, end: Any) -> str:
    """``4s``, ``2m5s``, ``1h3m``; from ``start`` to ``end`` (to now while running)."""
    began = _parse_time(start) if start else None
    if began is None:
        return ""
    ended = (_parse_time(end) if end else None) or datetime.now(UTC)
    secs = max(int((ended - began).total_seconds()), 0)
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60}s"
    return f"{secs // 3600}h{secs % 3600 // 60}m"


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


def table(ref: KindRef, items: list[Resource], *, wide: bool, all_namespaces: bool,
          name_prefix: str = "") -> str:
    """Rows of ``ref``'s columns; ``name_prefix`` (``job.ketch.dev/``) goes before
    each name when several kinds are printed together."""
    columns = [c for c in ref.columns if wide or not c.get("wideOnly")]
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME"] + [c["name"] for c in columns]
    header.append("AGE")
    rows = []
    for obj in items:
        body = obj.to_wire()
        row = [obj.namespace] if all_namespaces else []
        row.append(name_prefix + obj.name)
        for col in columns:
            row.append(cell(lookup(body, col["path"])))
        row.append(age(obj.metadata.creation_timestamp))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(text.ljust(w) for text, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()
