"""Watch as server-sent events: each event is ``data: {"type", "object"}``.

Without ``resourceVersion`` the stream opens with ADDED for every existing
object (then follows changes from the list's revision), as Kubernetes does. Changes come
from the process's one change feed (``ketch.server._feed``), not from a poll per stream;
a ``resourceVersion`` the log no longer holds is a 410 before the stream opens.

A request with the ``X-Ketch-Without-Spec: true`` header gets objects without their
``spec`` (``ketch.core.rest.WITHOUT_SPEC_HEADER``): what ``ketch run --wait`` asks for,
which follows a run's status, not its IR.

Besides each kind's own watch, ``GET /api/ketch/watch?kinds=a,b&namespace=NS`` streams
several kinds in one connection: a browser allows six connections per host, and a
dashboard page watching every kind would otherwise run out of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ketch.core.codec import dumps
from ketch.core.errors import BadRequestError, FieldError, InvalidError, KetchError, NotFoundError
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.resources import Resource
from ketch.core.rest import WITHOUT_SPEC_HEADER
from ketch.core.runtime import Runtime
from ketch.server._feed import FeedEvent, Subscription, change_feed

__all__ = ["check_watch_start", "multi_watch_router", "parse_resource_version", "watch_stream"]

_HEARTBEAT = 15.0
# resourceVersion is an int64 in the store (etcd's revision is too).
_MAX_RV = 2**63 - 1


def _sse(payload: dict[str, object]) -> str:
    return f"data: {dumps(payload)}\n\n"


def parse_resource_version(text: str | None) -> int | None:
    """A watch's ``resourceVersion``: None for unset or "0" (start from a list), else the
    revision; anything else is a 400 naming the parameter, as kube-apiserver answers."""
    if not text or text == "0":
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > _MAX_RV:
        raise BadRequestError("invalid resourceVersion", [FieldError(
            "resourceVersion", f"{text[:40]!r} is not a resource version (a non-negative "
            "64-bit integer)")])
    return int(text)


async def check_watch_start(runtime: Runtime, infos: list[KindInfo],
                            since: int | None) -> None:
    """Before the stream opens: a watch from a compacted revision is 410 Gone."""
    if since is not None:
        keys = {one.key for one in infos}
        await run_in_threadpool(runtime.store.events, since, kind_keys=keys, limit=1)


# Put in a stream's queue when its client has gone.
_DISCONNECTED = KetchError("the client went away")


async def _until_disconnect(request: Request, sub: Subscription) -> None:
    # Waits on the connection, costing nothing while it is open: no per-stream polling.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            sub.queue.put_nowait(_DISCONNECTED)
            return


async def watch_stream(request: Request, runtime: Runtime, info: KindInfo | list[KindInfo],
                       namespace: str | None, selector: LabelSelector, name: str | None,
                       resource_version: str | None,
                       timeout: float | None) -> AsyncIterator[str]:
    """The events of one kind, or of several (then without ``name``)."""
    infos = info if isinstance(info, list) else [info]
    keys = frozenset(one.key for one in infos)
    store = runtime.store
    ends = time.monotonic() + timeout if timeout else None
    feed = change_feed(runtime)
    # Subscribed first: whatever is written from here on reaches the queue, so the
    # initial list or the replay from the log below cannot miss it.
    sub = await feed.subscribe(keys, namespace)
    listener = asyncio.create_task(_until_disconnect(request, sub))

    without_spec = request.headers.get(WITHOUT_SPEC_HEADER, "").lower() == "true"

    def wire(obj: Resource) -> dict[str, object]:
        body = obj.to_wire()
        if without_spec:
            body.pop("spec", None)
        return body

    def sse(event: FeedEvent) -> str:
        return event.sse_without_spec if without_spec else event.sse

    def wanted(event: FeedEvent) -> bool:
        raw = event.event
        # Decoded only for a label selector: the feed otherwise never decodes objects.
        return (name is None or raw.name == name) and (
            not selector.requirements or selector.matches(raw.labels()))

    try:
        since = parse_resource_version(resource_version)
        if since is None and name is not None:
            # One object (what `wait` asks for): read it, not the whole namespace.
            since = await run_in_threadpool(store.revision)
            try:
                obj = await run_in_threadpool(store.get, infos[0], namespace, name)
            except NotFoundError:
                pass
            else:
                # A write between the two reads is in the object already: its event
                # (in the queue now) must not come again after this ADDED.
                since = max(since, int(obj.metadata.resource_version or 0))
                if selector.matches(obj.metadata.labels):
                    yield _sse({"type": "ADDED", "object": wire(obj)})
        elif since is None:
            revisions = []
            for one in infos:
                listed = await run_in_threadpool(store.list, one, namespace, selector=selector)
                revisions.append(int(listed.resource_version))
                for obj in listed.items:
                    yield _sse({"type": "ADDED", "object": wire(obj)})
            # From the earliest list on: a change between two lists may come twice,
            # never not at all (clients drop replays by resourceVersion).
            since = min(revisions, default=0)
        # Replay from the log what came before the feed's position at subscription.
        while since < sub.position:
            events = await run_in_threadpool(store.raw_events, since, kind_keys=set(keys),
                                             namespace=namespace)
            events = [e for e in events if e.revision <= sub.position]
            if not events:
                break
            for event in events:
                since = event.revision
                item = FeedEvent(event)
                if wanted(item):
                    yield sse(item)
        while True:
            wait = _HEARTBEAT if ends is None else min(_HEARTBEAT, ends - time.monotonic())
            if wait <= 0:
                return
            try:
                got = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                if ends is not None and time.monotonic() >= ends:
                    return
                yield ": keep-alive\n\n"
                continue
            if got is _DISCONNECTED:
                return
            if isinstance(got, KetchError):
                raise got  # the feed dropped this stream (410: list again)
            if got.revision > since:
                since = got.revision
                if wanted(got):
                    yield sse(got)
    except KetchError as err:
        yield _sse({"type": "ERROR", "object": err.to_body()})
    finally:
        listener.cancel()
        feed.unsubscribe(sub)


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
        selector = LabelSelector.parse(labelSelector)
        await check_watch_start(runtime, infos, parse_resource_version(resourceVersion))
        stream = watch_stream(request, runtime, infos, namespace or None, selector, None,
                              resourceVersion, timeoutSeconds)
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router
