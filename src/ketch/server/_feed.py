"""One change feed per server process, fanned out to every watch stream.

Each watch used to poll the change log itself (a database query four times a second per
connection, plus a disconnect check): 300 idle watches took the server to 95% CPU and a
list from 8 ms to 378 ms. Now one task reads the log, woken at once by writes through this
process (``Runtime.subscribe``) and every ``_POLL`` seconds for writes by other control
planes on the same database, and hands each event to the subscribers whose kinds and
namespace match. An idle watch costs nothing but its heartbeat (as kube-apiserver's watch
cache serves every watcher from one etcd watch).

A subscriber that falls ``_MAX_PENDING`` events behind is dropped with 410 Gone (it lists
again, as Kubernetes clients do when the server terminates a slow watcher), so one stalled
client cannot hold the server's memory.

Objects go out as the change log holds them (``ResourceStore.raw_events``): the feed
wraps each stored JSON text in its event envelope and never decodes it, since decoding
and encoding every object again was most of a watch's cost, and grew with the object (a
pipeline run holds its whole IR; its every status write is an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from dataclasses import dataclass, field
from functools import cached_property

from starlette.concurrency import run_in_threadpool

from ketch.core.errors import GoneError, KetchError
from ketch.core.runtime import Runtime
from ketch.core.store import RawEvent

__all__ = ["ChangeFeed", "FeedEvent", "Subscription", "change_feed", "feed_stats"]

log = logging.getLogger("ketch.server.watch")

_POLL = 0.25
_BATCH = 500
_MAX_PENDING = 10_000


@dataclass(eq=False)
class FeedEvent:
    """A change-log entry with its wire text built once for every stream: a server-sent
    event (the dashboard) or a line of newline-delimited JSON (Kubernetes clients)."""

    event: RawEvent

    @property
    def revision(self) -> int:
        return self.event.revision

    @cached_property
    def sse(self) -> str:
        # The envelope {"type", "object"} around the stored text, as it was stored.
        return f'data: {{"type":"{self.event.type}","object":{self.event.body_text}}}\n\n'

    @cached_property
    def sse_without_spec(self) -> str:
        # For the streams that asked for objects without their spec (a status follower).
        body = self.event.text_without_spec()
        return f'data: {{"type":"{self.event.type}","object":{body}}}\n\n'

    @cached_property
    def line(self) -> str:
        # The same envelope as one line: the stored text is compact JSON, never a newline.
        return f'{{"type":"{self.event.type}","object":{self.event.body_text}}}\n'

    @cached_property
    def line_without_spec(self) -> str:
        body = self.event.text_without_spec()
        return f'{{"type":"{self.event.type}","object":{body}}}\n'


@dataclass(eq=False)
class Subscription:
    """What one watch stream receives: events of its kinds (and namespace) after
    ``position``, in revision order; a ``KetchError`` in the queue ends the stream."""

    kind_keys: frozenset[str]
    namespace: str | None
    position: int = 0
    queue: asyncio.Queue[FeedEvent | KetchError] = field(default_factory=asyncio.Queue)

    def wants(self, event: RawEvent) -> bool:
        return event.kind_key in self.kind_keys and (
            self.namespace is None or event.namespace == self.namespace)


class ChangeFeed:
    """The change log of one runtime, read once and fanned out. Runs on one event loop."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._subs: set[Subscription] = set()
        self._position: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.loop = asyncio.get_running_loop()
        self.polls = 0  # change-log reads, for tests and benchmarks

    @property
    def position(self) -> int | None:
        """The last revision handed to the subscribers' queues (None while idle)."""
        return self._position

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    async def subscribe(self, kind_keys: frozenset[str], namespace: str | None) -> Subscription:
        """A subscription that receives every matching event after its ``position``."""
        if self._position is None:
            self._position = await run_in_threadpool(self._runtime.store.revision)
        sub = Subscription(kind_keys, namespace, self._position)
        self._subs.add(sub)
        if self._task is None or self._task.done():
            self._wake = self._runtime.subscribe()
            self._task = asyncio.create_task(self._run(), name="ketch-change-feed")
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        try:
            while self._subs:
                full = await self._pump()
                if full:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), _POLL)
                wake.clear()
        finally:
            self._runtime.unsubscribe(wake)
            # Idle: the next subscriber starts from the log's head, not from here.
            self._position = None

    async def _pump(self) -> bool:
        since = self._position or 0
        self.polls += 1
        try:
            # On the loop's own executor, not anyio's worker threads (run_in_threadpool):
            # this read follows every write, and anyio's capacity limiter and cancel
            # scopes around it cost the event loop more than the read itself.
            events = await self.loop.run_in_executor(
                None, functools.partial(self._runtime.store.raw_events, since, limit=_BATCH))
        except GoneError as err:
            # The log was compacted past this feed (a long stall): every stream lists again.
            self._end_all(err)
            self._position = await run_in_threadpool(self._runtime.store.revision)
            return False
        except KetchError:
            log.warning("change feed: reading the change log failed; retrying", exc_info=True)
            return False
        for event in events:
            item = FeedEvent(event)
            for sub in list(self._subs):
                if not sub.wants(event):
                    continue
                if sub.queue.qsize() >= _MAX_PENDING:
                    self._subs.discard(sub)
                    sub.queue.put_nowait(GoneError(
                        "the watch fell too far behind; list again and watch from the "
                        "list's resourceVersion"))
                    continue
                sub.queue.put_nowait(item)
            self._position = event.revision
        return len(events) == _BATCH

    def _end_all(self, err: KetchError) -> None:
        for sub in self._subs:
            sub.queue.put_nowait(err)
        self._subs.clear()


_feeds: weakref.WeakKeyDictionary[Runtime, ChangeFeed] = weakref.WeakKeyDictionary()


def change_feed(runtime: Runtime) -> ChangeFeed:
    """The runtime's feed on the running event loop (created on first use)."""
    feed = _feeds.get(runtime)
    if feed is None or feed.loop is not asyncio.get_running_loop():
        feed = _feeds[runtime] = ChangeFeed(runtime)
    return feed


def feed_stats(runtime: Runtime) -> tuple[int, int]:
    """(open watch streams, change-log reads so far) of the runtime's feed, for
    ``/metrics``: streams must go when their clients do, and reads must not grow with
    the number of streams."""
    feed = _feeds.get(runtime)
    return (feed.subscribers, feed.polls) if feed is not None else (0, 0)
