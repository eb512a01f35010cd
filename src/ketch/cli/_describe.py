"""``ketch describe``: one object for a person to read.

Metadata, spec and status as YAML (multi-line text as YAML block text, not escaped
one-liners), a conditions table, and what the kind's component declares beyond that
(a ``DescribeView``: for a ``PipelineRun``, a task table in place of the compiled IR).
Tables show the last line of a message; each distinct long message (a step's traceback
is the run's message, its Failed condition's and its task's) is printed in full once,
at the end.
"""

from __future__ import annotations

from typing import Any

import yaml

from ketch.cli.output import age, cell
from ketch.core.component import DescribeTable, DescribeView, describe_view, load_components
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


def _table(table: DescribeTable, messages: _Messages) -> list[str]:
    rows = [list(table.columns)]
    for row in table.rows:
        rows.append([cell(value, _MESSAGE_WIDTH) for value in row])
        messages.add(f"{table.row_heading} {row[0]}".strip(), row[-1])
    return [f"{table.title}:", *_rows(rows)]


def describe(obj: Resource) -> str:
    body = obj.to_wire()
    meta = body["metadata"]
    group = str(body.get("apiVersion", "")).rpartition("/")[0]
    view = describe_view(load_components(), str(body.get("kind", "")), group) or \
        DescribeView()
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
    spec = body.get("spec") or {}
    out.extend(_yaml(view.spec(spec) if view.spec else spec))
    full = dict(body.get("status") or {})
    messages = _Messages()
    messages.add("Message", full.get("message"))
    status = {k: v for k, v in full.items()
              if k not in ("conditions", "active", "message", *view.replaces)}
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
    for table in view.tables(full) if view.tables else []:
        out.extend(_table(table, messages))
    out.extend(messages.lines())
    return "\n".join(out)
