"""``meta.k8s.io/v1`` Table answers: what ``kubectl get`` prints, asked for with
``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``.

The columns are the kind's own (``KindInfo.columns``, the ones ``ketch get`` prints,
wide-only ones at priority 1 as ``-o wide`` shows them) between NAME and AGE; pods get
the columns kubectl shows for pods. Each row carries the object's metadata
(``PartialObjectMetadata``), its whole self with ``includeObject=Object``, or nothing
with ``includeObject=None``. A watch asked for as a Table sends one a line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ketch.core.codec import dumps, loads
from ketch.core.columns import age, cell, lookup
from ketch.core.core_kinds import POD
from ketch.core.errors import FieldError, InvalidError
from ketch.core.kinds import KindInfo

__all__ = ["table", "table_response", "table_watch", "wants_table"]

_META = "meta.k8s.io"
_INCLUDE = ("Metadata", "Object", "None")
Row = Callable[[dict[str, Any]], list[Any]]


def wants_table(request: Request) -> bool:
    """Whether ``Accept`` asks for a Table (v1 or v1beta1) before plain JSON."""
    for media in request.headers.get("accept", "").split(","):
        base, *params = (p.strip() for p in media.split(";"))
        named = dict(p.partition("=")[::2] for p in params)
        if named.get("as") == "Table" and named.get("g") == _META:
            if named.get("v") in ("v1", "v1beta1"):
                return True
            continue
        if base:
            return False
    return False


def _column(name: str, description: str, priority: int = 0, fmt: str = "",
            kind: str = "string") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": description,
            "priority": priority}


_NAME = _column("Name", "The object's name, unique in its namespace.", fmt="name")
_AGE = _column("Age", "How long ago the object was created.", kind="date")


def _pod_columns() -> tuple[list[dict[str, Any]], Row]:
    columns = [_NAME, _column("Ready", "Ready containers of all containers."),
               _column("Status", "The pod's phase, or why it is not running."),
               _column("Restarts", "Container restarts.", kind="integer"), _AGE,
               _column("IP", "The pod's address.", priority=1),
               _column("Node", "Where the pod runs.", priority=1)]

    def row(pod: dict[str, Any]) -> list[Any]:
        status = pod.get("status") or {}
        containers = status.get("containerStatuses") or []
        ready = sum(1 for c in containers if c.get("ready"))
        # As kubectl shows a pod that has ended: Completed, Error.
        phase = str(status.get("phase") or "Unknown")
        phase = status.get("reason") or {"Succeeded": "Completed",
                                         "Failed": "Error"}.get(phase, phase)
        return [pod["metadata"]["name"], f"{ready}/{len(containers)}", phase,
                sum(int(c.get("restartCount") or 0) for c in containers),
                age(pod["metadata"].get("creationTimestamp")),
                status.get("podIP") or "<none>",
                (pod.get("spec") or {}).get("nodeName") or "<none>"]

    return columns, row


def _columns(info: KindInfo) -> tuple[list[dict[str, Any]], Row]:
    if info.key == POD.key:
        return _pod_columns()
    own = [_column(c.name, f"{c.path} of the object.", priority=1 if c.wide_only else 0)
           for c in info.columns]

    def row(body: dict[str, Any]) -> list[Any]:
        meta = body.get("metadata") or {}
        return [meta.get("name", ""), *(cell(lookup(body, c.path)) for c in info.columns),
                age(meta.get("creationTimestamp"))]

    return [_NAME, *own, _AGE], row


def _include(request: Request) -> str:
    value = request.query_params.get("includeObject") or "Metadata"
    if value not in _INCLUDE:
        raise InvalidError("invalid includeObject", [FieldError(
            "includeObject", f"{value[:40]!r}: must be one of {', '.join(_INCLUDE)}")])
    return value


def _row(body: dict[str, Any], row: Row, include: str) -> dict[str, Any]:
    out: dict[str, Any] = {"cells": row(body)}
    if include == "Object":
        out["object"] = body
    elif include == "Metadata":
        out["object"] = {"kind": "PartialObjectMetadata", "apiVersion": f"{_META}/v1",
                         "metadata": body.get("metadata") or {}}
    return out


def table(info: KindInfo, items: list[dict[str, Any]], include: str = "Metadata",
          list_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Table of ``items`` (wire bodies of ``info``'s kind)."""
    columns, row = _columns(info)
    return {"kind": "Table", "apiVersion": f"{_META}/v1", "metadata": list_meta or {},
            "columnDefinitions": columns, "rows": [_row(b, row, include) for b in items]}


def table_response(request: Request, info: KindInfo, items: list[dict[str, Any]],
                   list_meta: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(table(info, items, _include(request), list_meta))


def table_watch(request: Request, info: KindInfo,
                lines: AsyncIterator[str] | AsyncIterator[bytes]) -> AsyncIterator[str]:
    """A JSON-lines watch with each event's object turned into a one-row Table (a
    BOOKMARK's and an ERROR's stay as they are, as Kubernetes sends them)."""
    include = _include(request)  # checked before the stream opens: a 400, not an event

    async def events() -> AsyncIterator[str]:
        async for chunk in lines:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            for line in text.splitlines():
                if not line.strip():
                    continue
                event = loads(line)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    event["object"] = table(info, [event["object"]], include)
                yield dumps(event) + "\n"

    return events()
