"""Printing resources: tables, JSON, YAML, describe."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import yaml

from ketch.client import KindRef
from ketch.core.resources import Resource

__all__ = ["age", "describe", "dump", "lookup", "table"]


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


def table(ref: KindRef, items: list[Resource], *, wide: bool, all_namespaces: bool) -> str:
    columns = [c for c in ref.columns if wide or not c.get("wideOnly")]
    header = (["NAMESPACE"] if all_namespaces else []) + ["NAME"] + [c["name"] for c in columns]
    header.append("AGE")
    rows = []
    for obj in items:
        body = obj.to_wire()
        row = [obj.namespace] if all_namespaces else []
        row.append(obj.name)
        for col in columns:
            value = lookup(body, col["path"])
            row.append("" if value is None else str(value))
        row.append(age(obj.metadata.creation_timestamp))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


def dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()


def describe(obj: Resource) -> str:
    body = obj.to_wire()
    meta = body["metadata"]
    out = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', '')}",
           f"Kind:         {body['kind']} ({body['apiVersion']})",
           f"UID:          {meta.get('uid', '')}",
           f"Created:      {meta.get('creationTimestamp', '')} "
           f"({age(meta.get('creationTimestamp'))} ago)"]
    for key in ("labels", "annotations"):
        values = meta.get(key) or {}
        text = ", ".join(f"{k}={v}" for k, v in values.items()) or "<none>"
        out.append(f"{key.capitalize() + ':':<14}{text}")
    if meta.get("deletionTimestamp"):
        out.append(f"Deleting:     since {meta['deletionTimestamp']}")
    out.append("Spec:")
    out.extend("  " + line for line in dump(body.get("spec", {}), "yaml").splitlines())
    status = dict(body.get("status") or {})
    conditions = status.pop("conditions", [])
    status.pop("active", None)
    out.append("Status:")
    out.extend("  " + line for line in dump(status, "yaml").splitlines() if status)
    if conditions:
        out.append("Conditions:")
        rows = [["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]] + [
            [c.get("type", ""), c.get("status", ""), c.get("reason", ""),
             age(c.get("lastTransitionTime")), c.get("message", "")] for c in conditions]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths,
                                                                   strict=True)) + "  " + r[4])
    return "\n".join(out)
