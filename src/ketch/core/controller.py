"""Controller runtime: level-triggered reconcile loops over a work queue.

A ``Controller`` reconciles one kind: given a key (namespace, name) it reads
the object, compares it with the world, acts, and writes status. It must be
correct when called at any time, any number of times, after a crash at any
line — it gets no event payload, only the key, as in controller-runtime.

The ``WorkQueue`` dedupes keys (a key is processed by one worker at a time; an
add while it is processed re-queues it once afterwards), supports delayed adds
and per-key exponential backoff for failures: 5 ms doubling per consecutive
failure up to 1000 s, client-go's ``DefaultControllerRateLimiter`` item limiter.
"""

from __future__ import annotations

import abc
import heapq
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ketch.core.component_backoff import backoff_delay
from ketch.core.errors import ConflictError

if TYPE_CHECKING:
    from ketch.core.kinds import KindInfo

__all__ = ["Controller", "ObjectKey", "Result", "WorkQueue"]

log = logging.getLogger("ketch.controller")


@dataclass(frozen=True, order=True)
class ObjectKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, or another look after a delay."""

    requeue_after: float | None = None


class WorkQueue:
    """A deduplicating, delaying, rate-limiting queue of keys. Thread-safe."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self._cond = threading.Condition()
        self._queue: list[ObjectKey] = []
        self._queued: set[ObjectKey] = set()
        self._processing: set[ObjectKey] = set()
        self._dirty: set[ObjectKey] = set()
        self._delayed: list[tuple[float, ObjectKey]] = []
        # When each delayed key is due: a key waits once, for its earliest time, as
        # client-go's AddAfter does (otherwise every add of a key that requeues itself
        # starts one more requeue chain that never ends).
        self._due: dict[ObjectKey, float] = {}
        self._failures: dict[ObjectKey, int] = {}
        self._base = base_delay
        self._max = max_delay
        self._closed = False

    def add(self, key: ObjectKey) -> None:
        with self._cond:
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: ObjectKey, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            due = time.monotonic() + delay
            if self._due.get(key, float("inf")) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, key))
            self._cond.notify()

    def add_rate_limited(self, key: ObjectKey) -> None:
        """Re-add ``key`` after its backoff (``base * 2**failures``, capped).

        Called for a key being processed, it also drops the adds made meanwhile:
        a failing reconcile that wrote its object (a claim, a condition) would
        otherwise be re-queued at once by its own write and never back off. The
        delayed add reads the object afresh, so no change is missed, only seen later.
        """
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            self._dirty.discard(key)
        self.add_after(key, backoff_delay(failures + 1, base=self._base, cap=self._max))

    def failures(self, key: ObjectKey) -> int:
        """Consecutive failures of ``key`` since it last succeeded."""
        with self._cond:
            return self._failures.get(key, 0)

    def forget(self, key: ObjectKey) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def get(self, timeout: float | None = None) -> ObjectKey | None:
        """The next key to process, or None when closed or on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                self._promote_delayed()
                if self._queue:
                    key = self._queue.pop(0)
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                wait = self._delayed[0][0] - time.monotonic() if self._delayed else None
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def done(self, key: ObjectKey) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                if key not in self._queued:
                    self._queued.add(key)
                    self._queue.append(key)
                    self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._delayed)

    def _promote_delayed(self) -> None:
        stamp = time.monotonic()
        while self._delayed and self._delayed[0][0] <= stamp:
            due, key = heapq.heappop(self._delayed)
            if self._due.get(key) != due:
                continue  # superseded by an earlier time for the same key
            del self._due[key]
            if key in self._processing:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)


class Controller(abc.ABC):
    """Reconciles one kind. Subclasses set ``kind`` and implement ``reconcile``.

    ``reconcile`` raising ``ConflictError`` re-queues the key at once (another
    writer moved the object; read again); any other exception re-queues it with
    exponential backoff and is logged.
    """

    kind: KindInfo
    workers: int = 2

    def __init__(self) -> None:
        self.queue = WorkQueue()
        self._threads: list[threading.Thread] = []

    @abc.abstractmethod
    def reconcile(self, key: ObjectKey) -> Result | None:
        """Bring the object at ``key`` one step closer to its spec."""

    def enqueue(self, key: ObjectKey, delay: float = 0.0) -> None:
        self.queue.add_after(key, delay)

    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.kind.plural}-{i}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self.queue.close()
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while (key := self.queue.get()) is not None:
            try:
                result = self.reconcile(key)
            except ConflictError:
                self.queue.add(key)
            except Exception:
                log.exception("reconcile %s %s failed; retrying with backoff", self.kind.kind, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if result is not None and result.requeue_after is not None:
                    self.queue.add_after(key, result.requeue_after)
            finally:
                self.queue.done(key)
