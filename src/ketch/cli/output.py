"""Printing resources: tables, JSON, YAML, ages (public: components' CLI verbs use it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml

from ketch.client import KindRef

# Shared with the server's Kubernetes Table answers (kubectl get shows the same cells).
from ketch.core.columns import age, cell, lookup
from ketch.core.resources import Resource

__all__ = ["age", "cell", "dump", "duration", "lookup", "table"]


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
