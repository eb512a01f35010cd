"""``ketch describe``: one object for a person to read.

Metadata, spec and status as YAML (multi-line text as YAML block text, not escaped
one-liners), a conditions table, and for a ``PipelineRun`` a task table in place of the
compiled IR. Tables show the last line of a message; each distinct long message (a
step's traceback is the run's message, its Failed condition's and its task's) is
printed in full once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml

from ketch.cli.output import age, cell
from ketch.core.resources import Resource

__all__ = ["describe"]

_MESSAGE_WIDTH = 100


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings as ``|`` blocks, as a person would write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml(data: Any, indent: str = "  ") -> list[str]:
    if not data:
        return []
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)
    return [indent + line for line in text.rstrip().splitlines()]


def _rows(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip()
            for r in rows]


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


class _Messages:
    """Long messages to print in full once, under a heading each."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, heading: str, text: Any) -> None:
        message = str(text or "").strip()
        if "\n" not in message and len(message) <= _MESSAGE_WIDTH:
            return  # the table cell already shows all of it
        if any(message in shown for _, shown in self.items):
            return
        # A longer message that holds an earlier one replaces it.
        self.items = [(h, shown) for h, shown in self.items if shown not in message]
        self.items.append((heading, message))

    def lines(self) -> list[str]:
        out: list[str] = []
        for heading, message in self.items:
            out.append(f"{heading}:")
            out.extend("  " + line for line in message.splitlines())
        return out


def _run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A PipelineRun's spec with its compiled IR summarized (``-o yaml`` has all of it)."""
    out = dict(spec)
    ir = out.pop("pipelineSpec", None)
    if isinstance(ir, dict):
        name = (ir.get("pipelineInfo") or {}).get("name", "")
        tasks = ((ir.get("root") or {}).get("dag") or {}).get("tasks") or {}
        out = {"pipeline": f"{name} (KFP IR, {len(tasks)} top-level tasks; "
                           "-o yaml shows it)", **out}
    return out


def _run_tasks(status: dict[str, Any], messages: _Messages) -> list[str]:
    # The status tree's walk belongs to the pipelines component; describe only prints it.
    from ketch.pipelines._kind import flatten_tasks

    rows = [["TASK", "PHASE", "ATTEMPTS", "DURATION", "CACHED", "MESSAGE"]]
    for path, st in flatten_tasks(status.get("tasks") or {}):
        if not isinstance(st, dict):
            continue
        rows.append([path, str(st.get("phase", "Pending")), str(st.get("attempts") or ""),
                     duration(st.get("startTime"), st.get("completionTime")),
                     "yes" if st.get("cached") else "",
                     cell(st.get("message"), _MESSAGE_WIDTH)])
        messages.add(f"Task {path}", st.get("message"))
    if len(rows) == 1:
        return []
    return ["Tasks:", *_rows(rows)]


# Per kind (apiVersion group, kind): how to show its spec, and extra sections from its
# status, with the status keys those sections replace.
_SpecView = Callable[[dict[str, Any]], dict[str, Any]]
_Sections = Callable[[dict[str, Any], _Messages], list[str]]
_KINDS: dict[tuple[str, str], tuple[_SpecView, _Sections, tuple[str, ...]]] = {
    ("pipelines.ketch.dev", "PipelineRun"): (_run_spec, _run_tasks, ("tasks", "engine")),
}


def describe(obj: Resource) -> str:
    body = obj.to_wire()
    meta = body["metadata"]
    group = str(body.get("apiVersion", "")).rpartition("/")[0]
    spec_view, sections, replaced = _KINDS.get((group, body.get("kind", "")),
                                               (dict, lambda _s, _m: [], ()))
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
        finalizers = ", ".join(meta.get("finalizers") or []) or "<none>"
        out.append(f"Deleting:     since {meta['deletionTimestamp']} "
                   f"(finalizers: {finalizers})")
    out.append("Spec:")
    out.extend(_yaml(spec_view(body.get("spec") or {})))
    full = dict(body.get("status") or {})
    messages = _Messages()
    messages.add("Message", full.get("message"))
    status = {k: v for k, v in full.items()
              if k not in ("conditions", "active", "message", *replaced)}
    if full.get("message") is not None:
        status["message"] = cell(full["message"], _MESSAGE_WIDTH)
    out.append("Status:")
    out.extend(_yaml(status))
    conditions = [c for c in full.get("conditions") or [] if isinstance(c, dict)]
    if conditions:
        out.append("Conditions:")
        out.extend(_rows([["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]] + [
            [str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")),
             age(c.get("lastTransitionTime")), cell(c.get("message"), _MESSAGE_WIDTH)]
            for c in conditions]))
        for c in conditions:
            messages.add(f"Condition {c.get('type', '')}", c.get("message"))
    out.extend(sections(full, messages))
    out.extend(messages.lines())
    return "\n".join(out)
