"""Watch as server-sent events: each event is ``data: {"type", "object"}``.

Without ``resourceVersion`` the stream opens with ADDED for every existing
object (then follows changes from the list's revision), as Kubernetes does.

Besides each kind's own watch, ``GET /api/ketch/watch?kinds=a,b&namespace=NS`` streams
several kinds in one connection: a browser allows six connections per host, and a
dashboard page watching every kind would otherwise run out of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ketch.core.codec import dumps
from ketch.core.errors import FieldError, InvalidError, KetchError, NotFoundError
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.runtime import Runtime

__all__ = ["multi_watch_router", "watch_stream"]

# Writes through this process wake the stream at once; the poll only picks up
# writes by other control planes sharing the database.
_POLL = 0.25
_HEARTBEAT = 15.0


def _sse(payload: dict[str, object]) -> str:
    return f"data: {dumps(payload)}\n\n"


async def watch_stream(request: Request, runtime: Runtime, info: KindInfo | list[KindInfo],
                       namespace: str | None, selector: LabelSelector, name: str | None,
                       resource_version: str | None,
                       timeout: float | None) -> AsyncIterator[str]:
    """The events of one kind, or of several (then without ``name``)."""
    infos = info if isinstance(info, list) else [info]
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
                obj = await run_in_threadpool(store.get, infos[0], namespace, name)
            except NotFoundError:
                pass
            else:
                if selector.matches(obj.metadata.labels):
                    yield _sse({"type": "ADDED", "object": obj.to_wire()})
        else:
            revisions = []
            for one in infos:
                listed = await run_in_threadpool(store.list, one, namespace, selector=selector)
                revisions.append(int(listed.resource_version))
                for obj in listed.items:
                    yield _sse({"type": "ADDED", "object": obj.to_wire()})
            # From the earliest list on: a change between two lists may come twice,
            # never not at all (clients drop replays by resourceVersion).
            since = min(revisions, default=0)
        last_beat = time.monotonic()
        while ends is None or time.monotonic() < ends:
            if await request.is_disconnected():
                return
            events = await run_in_threadpool(store.events, since,
                                             kind_keys={one.key for one in infos},
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


def multi_watch_router(runtime: Runtime) -> APIRouter:
    """``GET /api/ketch/watch?kinds=...``: several kinds' events on one stream."""
    router = APIRouter(tags=["watch"])

    @router.get("/api/ketch/watch", summary="Watch several kinds on one stream",
                response_class=StreamingResponse,
                responses={200: {"content": {"text/event-stream": {}}}})
    async def watch_kinds(request: Request,
                          kinds: str = Query(..., description="comma-separated kinds "
                                             "(plural.group, plural or Kind)"),
                          namespace: str | None = None, labelSelector: str | None = None,
                          resourceVersion: str | None = None,
                          timeoutSeconds: int | None = Query(None, ge=1)) -> StreamingResponse:
        infos: list[KindInfo] = []
        for text in kinds.split(","):
            if text.strip():
                found = runtime.registry.resolve(text.strip())
                if found not in infos:
                    infos.append(found)
        if not infos:
            raise InvalidError("no kinds to watch", [FieldError("kinds", "name one or more")])
        rv = resourceVersion or ""
        if rv and not (rv.isascii() and rv.isdigit()):
            raise InvalidError("invalid resourceVersion", [FieldError(
                "resourceVersion", f"{resourceVersion!r} is not a non-negative integer")])
        selector = LabelSelector.parse(labelSelector)
        stream = watch_stream(request, runtime, infos, namespace or None, selector, None,
                              resourceVersion, timeoutSeconds)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router
