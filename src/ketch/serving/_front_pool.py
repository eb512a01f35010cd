"""The front's routing state: revisions, replicas, the queue, and what it measured.

Pure bookkeeping with no I/O, so the hot path in ``_front.py`` stays a few attribute
reads and the policies here can be read (and tested) on their own:

* **Traffic split** between revisions by percent, deterministic and evenly spread
  (an accumulator, not a coin: 20% is exactly 20 of every 100 requests).
* **Least outstanding requests** among a revision's replicas that are up, with a
  rotating start so equal replicas share sequential traffic.
* **Bounded concurrency and queue**: a replica takes at most ``containerConcurrency``
  requests at once (0: no limit); beyond that, and while a revision has no replica up
  (scaled to zero, or starting), requests wait in its FIFO queue up to ``queueLimit``;
  the caller answers 503 when the queue is full.
* **Measurements** for the autoscaler: the time-weighted average concurrency (in flight
  plus queued) per second, and request counts, kept for the last few minutes.
"""

from __future__ import annotations

import bisect
import collections
import time
from typing import Any

__all__ = ["LATENCY_BUCKETS", "Backend", "Revision", "Router"]

# Prometheus' default latency buckets, which suit model servers (ms to seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                   7.5, 10.0)
_HISTORY_SECONDS = 360  # the longest autoscaling window the controller may ask for


class Backend:
    """One replica: its address and the connections and requests it holds."""

    __slots__ = ("address", "conns", "down", "id", "idle", "outstanding", "revision",
                 "served")

    def __init__(self, backend_id: str, address: str, revision: Revision) -> None:
        self.id = backend_id
        self.address = address  # "unix:/path" or "tcp:host:port"
        self.revision = revision
        self.outstanding = 0
        self.served = 0
        self.down = False
        self.idle: list[Any] = []  # keep-alive upstream connections ready for reuse
        self.conns: set[Any] = set()  # every open upstream connection (for the sweeper)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "address": self.address, "outstanding": self.outstanding,
                "served": self.served, "down": self.down}


class Revision:
    """One revision's replicas, queue and measurements."""

    __slots__ = ("_area", "_bucket_start", "_last", "backends", "buckets", "codes",
                 "concurrency", "header", "in_flight", "last_request", "latency_count",
                 "latency_counts", "latency_sum", "name", "requests", "rr", "waiters")

    def __init__(self, name: str, now: float | None = None) -> None:
        self.name = name
        # Added to every response so clients (and tests) can tell revisions apart.
        self.header = b"ketch-revision: " + name.encode() + b"\r\n"
        self.backends: list[Backend] = []
        self.waiters: collections.deque[Any] = collections.deque()
        self.rr = 0
        self.in_flight = 0
        self.concurrency = 0  # in flight + queued, integrated over time below
        self.requests = 0
        self.last_request = 0.0
        self.codes: dict[int, int] = {}
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0
        now = time.monotonic() if now is None else now
        self._area = 0.0
        self._last = now
        self._bucket_start = now
        # (average concurrency, requests) per closed second, newest last.
        self.buckets: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=_HISTORY_SECONDS)

    # -- concurrency integral (called on every change, so keep it two lines) ------

    def add_concurrency(self, delta: int, now: float) -> None:
        self._area += self.concurrency * (now - self._last)
        self._last = now
        self.concurrency += delta

    def close_bucket(self, now: float) -> None:
        """Close the current one-second bucket (called by the front's ticker)."""
        self.add_concurrency(0, now)
        span = now - self._bucket_start
        if span <= 0:
            return
        self.buckets.append((self._area / span, self.requests))
        self._area = 0.0
        self._bucket_start = now

    def observe(self, code: int, seconds: float) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.latency_count += 1

    # -- choosing a replica --------------------------------------------------------

    def up(self) -> int:
        return sum(1 for b in self.backends if not b.down)

    def pick(self, limit: int) -> Backend | None:
        """The up replica with the fewest outstanding requests below ``limit``
        (0: no limit), starting the scan at a rotating index to break ties fairly."""
        backends = self.backends
        count = len(backends)
        if not count:
            return None
        start = self.rr = (self.rr + 1) % count
        best: Backend | None = None
        for i in range(count):
            b = backends[(start + i) % count]
            if b.down or (limit and b.outstanding >= limit):
                continue
            if best is None or b.outstanding < best.outstanding:
                best = b
                if not b.outstanding:
                    break
        return best

    def stats(self, seconds: int) -> dict[str, Any]:
        recent = list(self.buckets)[-seconds:] if seconds > 0 else []
        return {
            "concurrency": [round(c, 4) for c, _ in recent],
            "requestsPerSecond": [n - p for (_, n), (_, p) in zip(recent[1:], recent,
                                                                  strict=False)],
            "requests": self.requests,
            "inFlight": self.in_flight,
            "queued": len(self.waiters),
            "idleSeconds": (time.monotonic() - self.last_request) if self.last_request
            else None,
            "backends": [b.describe() for b in self.backends],
        }


class Router:
    """The routing table the controller pushes, and the split and queue policies."""

    def __init__(self) -> None:
        self.revisions: dict[str, Revision] = {}
        self.split: list[tuple[Revision, int]] = []
        self._weights: list[int] = []
        self._total = 0
        self.container_concurrency = 0
        self.queue_limit = 100
        self.timeout = 60.0
        self.version = ""
        self.configured = False
        # Requests that arrived before the controller pushed any routing table.
        self.unrouted: collections.deque[Any] = collections.deque()

    def choose(self) -> Revision | None:
        """The revision for the next request: smooth weighted round robin (as nginx
        does), so a 20% split is exactly 20 of every 100 requests, evenly spread."""
        split = self.split
        if len(split) == 1:
            return split[0][0]
        if not split:
            return None
        weights = self._weights
        best = 0
        for i, (_, percent) in enumerate(split):
            weights[i] += percent
            if weights[i] > weights[best]:
                best = i
        weights[best] -= self._total
        return split[best][0]

    def configure(self, config: dict[str, Any]) -> tuple[list[Backend], list[Any]]:
        """Apply a routing table. Returns the backends that were removed (to close) and
        the requests queued on revisions that no longer take traffic (to route again).

        ``config``: ``{"version", "containerConcurrency", "queueLimit", "timeout",
        "revisions": [{"name", "percent", "backends": [{"id", "address"}]}]}``.
        """
        self.container_concurrency = int(config.get("containerConcurrency") or 0)
        self.queue_limit = int(config.get("queueLimit", 100))
        self.timeout = float(config.get("timeout") or 60.0)
        self.version = str(config.get("version", ""))
        removed: list[Backend] = []
        wanted: dict[str, Revision] = {}
        split: list[tuple[Revision, int]] = []
        for entry in config.get("revisions") or []:
            name = str(entry["name"])
            rev = self.revisions.get(name) or Revision(name)
            wanted[name] = rev
            old = {b.id: b for b in rev.backends}
            fresh: list[Backend] = []
            for item in entry.get("backends") or []:
                b = old.pop(str(item["id"]), None)
                if b is None or b.address != item["address"]:
                    if b is not None:
                        removed.append(b)
                    b = Backend(str(item["id"]), str(item["address"]), rev)
                fresh.append(b)
            removed.extend(old.values())
            rev.backends = fresh
            if int(entry.get("percent", 0)) > 0:
                split.append((rev, int(entry["percent"])))
        requeue: list[Any] = []
        live = {rev.name for rev, _ in split}
        for name, rev in self.revisions.items():
            if name not in wanted:
                removed.extend(rev.backends)
                rev.backends = []
            if name not in live:
                requeue.extend(rev.waiters)
                rev.waiters.clear()
        self.revisions = wanted
        self.split = split
        self._weights = [0] * len(split)
        self._total = sum(percent for _, percent in split)
        self.configured = True
        return removed, requeue
