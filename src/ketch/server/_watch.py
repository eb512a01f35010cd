"""Watch as server-sent events: each event is ``data: {"type", "object"}``.

Without ``resourceVersion`` the stream opens with ADDED for every existing
object (then follows changes from the list's revision), as Kubernetes does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ketch.core.errors import KetchError, NotFoundError
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.runtime import Runtime

__all__ = ["watch_stream"]

# Writes through this process wake the stream at once; the poll only picks up
# writes by other control planes sharing the database.
_POLL = 0.25
_HEARTBEAT = 15.0


def _sse(payload: dict[str, object]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def watch_stream(request: Request, runtime: Runtime, info: KindInfo,
                       namespace: str | None, selector: LabelSelector, name: str | None,
                       resource_version: str | None,
                       timeout: float | None) -> AsyncIterator[str]:
    store = runtime.store
    ends = time.monotonic() + timeout if timeout else None
    woken = runtime.subscribe()
    try:
        if resource_version and resource_version != "0":
            since = int(resource_version)
        elif name is not None:
            # One object (what `wait` asks for): read it, not the whole namespace.
            since = await run_in_threadpool(store.revision)
            try:
                obj = await run_in_threadpool(store.get, info, namespace, name)
            except NotFoundError:
                pass
            else:
                if selector.matches(obj.metadata.labels):
                    yield _sse({"type": "ADDED", "object": obj.to_wire()})
        else:
            listed = await run_in_threadpool(store.list, info, namespace, selector=selector)
            since = int(listed.resource_version)
            for obj in listed.items:
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), _POLL)
                woken.clear()
    except KetchError as err:
        yield _sse({"type": "ERROR", "object": err.to_body()})
    finally:
        runtime.unsubscribe(woken)
