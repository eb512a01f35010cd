"""Watch as server-sent events: each event is ``data: {"type", "object"}``.

Without ``resourceVersion`` the stream opens with ADDED for every existing
object (then follows changes from the list's revision), as Kubernetes does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ketch.core.errors import KetchError
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.runtime import Runtime

__all__ = ["watch_stream"]

_POLL = 0.1
_HEARTBEAT = 15.0


def _sse(payload: dict[str, object]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def watch_stream(request: Request, runtime: Runtime, info: KindInfo,
                       namespace: str | None, selector: LabelSelector, name: str | None,
                       resource_version: str | None,
                       timeout: float | None) -> AsyncIterator[str]:
    store = runtime.store
    ends = time.monotonic() + timeout if timeout else None
    try:
        if resource_version and resource_version != "0":
            since = int(resource_version)
        else:
            listed = await run_in_threadpool(store.list, info, namespace, selector=selector)
            since = int(listed.resource_version)
            for obj in listed.items:
                if name is None or obj.name == name:
                    yield _sse({"type": "ADDED", "object": obj.to_wire()})
        last_beat = time.monotonic()
        while ends is None or time.monotonic() < ends:
            if await request.is_disconnected():
                return
            events = await run_in_threadpool(store.events, since, kind_keys={info.key},
                                             namespace=namespace)
            for event in events:
                since = event.revision
                obj = event.object
                if name is not None and obj.name != name:
                    continue
                if not selector.matches(obj.metadata.labels):
                    continue
                yield _sse(event.to_wire())
            if not events:
                if time.monotonic() - last_beat > _HEARTBEAT:
                    last_beat = time.monotonic()
                    yield ": keep-alive\n\n"
                await asyncio.sleep(_POLL)
    except KetchError as err:
        yield _sse({"type": "ERROR", "object": err.to_body()})
