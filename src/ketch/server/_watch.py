"""Watch as Kubernetes streams it, or as server-sent events for the dashboard.

Each event is ``{"type", "object"}``: one line of newline-delimited JSON
(``application/json``, chunked) as kube-apiserver sends it and the Kubernetes clients read
it, or ``data: {...}`` server-sent events when the request's ``Accept`` names
``text/event-stream`` (a browser's ``EventSource`` always does). ``allowWatchBookmarks``
adds BOOKMARK events (the object holds only its kind and ``metadata.resourceVersion``)
every ``_HEARTBEAT`` seconds and just before a ``timeoutSeconds`` ends the stream, as
kube-apiserver sends one before a watch times out; server-sent streams keep their
comment heartbeats instead (a JSON stream gets no blank lines: the Python client would
hand each one to its caller as an empty event).

Without ``resourceVersion`` the stream opens with ADDED for every existing
object (then follows changes from the list's revision), as Kubernetes does. Changes come
from the process's one change feed (``ketch.server._feed``), not from a poll per stream;
a ``resourceVersion`` the log no longer holds is a 410 before the stream opens, and a
stream the feed drops ends with an ERROR event holding a 410 Status.

A field selector on ``status.phase`` turns an object's move out of the selection into a
DELETED event and its move in into ADDED, as kube-apiserver's watch cache does.

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
from dataclasses import dataclass

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ketch.core.codec import dumps, loads
from ketch.core.errors import BadRequestError, FieldError, InvalidError, KetchError, NotFoundError
from ketch.core.fields import FieldSelector
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.resources import Resource
from ketch.core.rest import WITHOUT_SPEC_HEADER
from ketch.core.runtime import Runtime
from ketch.server._feed import FeedEvent, Subscription, change_feed

__all__ = ["SSE", "WatchFormat", "check_watch_start", "multi_watch_router",
           "parse_resource_version", "watch_format", "watch_response", "watch_stream"]

_HEARTBEAT = 15.0
# resourceVersion is an int64 in the store (etcd's revision is too).
_MAX_RV = 2**63 - 1


@dataclass(frozen=True)
class WatchFormat:
    """How one stream frames its events: server-sent events or JSON lines."""

    sse: bool
    bookmarks: bool = False

    @property
    def media_type(self) -> str:
        return "text/event-stream" if self.sse else "application/json"

    def payload(self, payload: dict[str, object]) -> str:
        text = dumps(payload)
        return f"data: {text}\n\n" if self.sse else f"{text}\n"

    def event(self, event: FeedEvent, without_spec: bool) -> str:
        if self.sse:
            return event.sse_without_spec if without_spec else event.sse
        return event.line_without_spec if without_spec else event.line


SSE = WatchFormat(sse=True)


def watch_format(request: Request, allow_bookmarks: bool = False) -> WatchFormat:
    """Server-sent events when ``Accept`` names ``text/event-stream``, else JSON lines."""
    accept = request.headers.get("accept", "").lower()
    return WatchFormat(sse="text/event-stream" in accept, bookmarks=allow_bookmarks)


def watch_response(stream: AsyncIterator[str], fmt: WatchFormat) -> StreamingResponse:
    """The streaming response of a watch (chunked: its length is never known)."""
    return StreamingResponse(stream, media_type=fmt.media_type,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


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
                       namespace: str | None, selector: LabelSelector, fields: FieldSelector,
                       resource_version: str | None, timeout: float | None,
                       fmt: WatchFormat = SSE) -> AsyncIterator[str]:
    """The events of one kind, or of several (then without a field selector)."""
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
    name = fields.name
    # The objects a phase selector holds now, to turn moves in and out into ADDED and
    # DELETED; None without such a selector (names and namespaces never change).
    members: set[tuple[str, str]] | None = set() if fields.on_phase else None
    # The objects whose state the stream knows: listed, or seen in an event since.
    known: set[tuple[str, str]] = set()
    since = parse_resource_version(resource_version)
    resumed = since is not None

    def added(obj: Resource) -> str | None:
        body = obj.to_wire()
        if members is not None:
            known.add((obj.namespace, obj.name))
        if not (selector.matches(obj.metadata.labels) and fields.matches(body)):
            return None
        if members is not None:
            members.add((obj.namespace, obj.name))
        if without_spec:
            body.pop("spec", None)
        return fmt.payload({"type": "ADDED", "object": body})

    def render(event: FeedEvent) -> str | None:
        raw = event.event
        # Labels decoded only for a label selector: the feed otherwise never decodes.
        if (name is not None and raw.name != name) or (
                selector.requirements and not selector.matches(raw.labels())):
            return None
        if members is None:
            return fmt.event(event, without_spec) if fields.matches_event(raw) else None
        key = (raw.namespace, raw.name)
        body = loads(raw.body_text)
        now = raw.type != "DELETED" and fields.matches(body)
        if key in known or not resumed or raw.type == "ADDED":
            was = key in members
        else:
            # Resumed, and the first event of an object this stream never saw: the log
            # keeps no previous object, so take it as unchanged in that respect.
            was = fields.matches(body)
        known.add(key)
        if now:
            members.add(key)
            kind = raw.type if was else "ADDED"
        elif was:
            members.discard(key)
            kind = "DELETED"
        else:
            return None
        if kind == raw.type:
            return fmt.event(event, without_spec)
        if without_spec:
            body.pop("spec", None)
        return fmt.payload({"type": kind, "object": body})

    def bookmark() -> str:
        # Everything up to the feed's position is in the queue, so an empty queue means
        # this stream has seen it all: a resume from there misses nothing.
        position = max(since or 0, feed.position or 0) if sub.queue.empty() else since or 0
        return fmt.payload({"type": "BOOKMARK", "object": {
            "kind": infos[0].kind, "apiVersion": infos[0].api_version,
            "metadata": {"resourceVersion": str(position)}}})

    try:
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
                if (text := added(obj)) is not None:
                    yield text
        elif since is None:
            revisions = []
            for one in infos:
                listed = await run_in_threadpool(store.list, one, namespace, selector=selector)
                revisions.append(int(listed.resource_version))
                for obj in listed.items:
                    if (text := added(obj)) is not None:
                        yield text
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
                if (text := render(FeedEvent(event))) is not None:
                    yield text
        while True:
            wait = _HEARTBEAT if ends is None else min(_HEARTBEAT, ends - time.monotonic())
            if wait <= 0:
                if fmt.bookmarks:
                    yield bookmark()
                return
            try:
                got = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                if ends is not None and time.monotonic() >= ends:
                    if fmt.bookmarks:
                        yield bookmark()
                    return
                if fmt.sse:
                    yield ": keep-alive\n\n"
                elif fmt.bookmarks:
                    yield bookmark()
                continue
            if got is _DISCONNECTED:
                return
            if isinstance(got, KetchError):
                raise got  # the feed dropped this stream (410: list again)
            if got.revision > since:
                since = got.revision
                if (text := render(got)) is not None:
                    yield text
    except KetchError as err:
        yield fmt.payload({"type": "ERROR", "object": err.to_body()})
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
        # Server-sent events whatever the request accepts: this is the dashboard's stream.
        stream = watch_stream(request, runtime, infos, namespace or None, selector,
                              FieldSelector(), resourceVersion, timeoutSeconds, SSE)
        return watch_response(stream, SSE)

    return router
