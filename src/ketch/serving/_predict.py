"""Where a model's ``predict`` runs: inline on the event loop, or on a worker thread.

A thread hop costs tens of microseconds on a small machine, more than a 1-row sklearn
predict, so running tiny predicts inline is measurably faster (benchmarks/serving.py).
But a slow predict inline would stall every other request, health checks included. The
``auto`` policy therefore times every call and keeps running inline only while the
expected time for this request's rows stays under ``inline_budget`` (1 ms by default);
a model it has not timed yet runs on a thread, and one timed above 20 ms is never run
inline again. ``thread`` and ``inline`` force one way.

The expected time is the larger of the smoothed seconds per call and the smoothed
seconds per row times the rows: right both for a model whose cost is per call (a 1-row
sklearn predict is all validation) and for one whose cost grows with rows, and never
the sum of the two, which counted a 0.6 ms predict as 1.2 ms and sent it to a thread,
where each request also paid the hop and the wait for the GIL the busy event loop holds
(FP32 rows before the sklearn fast path took them: 1,950 req/s where FP64 did 9,700).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ketch.serving._metrics import ReplicaMetrics
from ketch.serving._runtimes import Runtime

__all__ = ["OFFLOAD_MODES", "Predictor"]

OFFLOAD_MODES = ("auto", "thread", "inline")
_SMOOTHING = 0.2  # weight of the newest observation in the moving averages
_PROBE_EVERY = 200  # off-loop calls between two inline timings of a not-so-slow model
_PROBE_LIMIT = 0.02  # seconds: a model expected to take longer is never timed inline


def rows_of(data: Any) -> int:
    """Rows (instances) in a batch: the first dimension, 1 for a scalar."""
    shape = getattr(data, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else 1
    return len(data) if isinstance(data, list) else 1


class Predictor:
    """Runs ``runtime.predict`` and records its duration and batch size.

    Args:
        runtime: The loaded model.
        metrics: Where predict latency and batch sizes are recorded.
        mode: ``auto``, ``thread`` or ``inline`` (see the module docstring).
        threads: Worker threads for off-loop predicts.
        inline_budget: Seconds a predict may be expected to take and still run inline.
        clock: Seconds, monotonic (``time.perf_counter``; tests pass their own).

    Not thread-safe: call :meth:`run` on the event loop only.
    """

    def __init__(self, runtime: Runtime, metrics: ReplicaMetrics, *, mode: str = "auto",
                 threads: int = 2, inline_budget: float = 0.001,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if mode not in OFFLOAD_MODES:
            raise ValueError(f"offload mode must be one of {', '.join(OFFLOAD_MODES)}, "
                             f"got {mode!r}")
        self.runtime = runtime
        self.metrics = metrics
        self.mode = mode
        self.inline_budget = inline_budget
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._threads = threads
        self._per_row: float | None = None  # moving average of seconds per row
        self._per_call: float | None = None  # moving average of seconds per call
        self._skipped = 0

    def warm_up(self, sample: Any) -> None:
        """Time predicts on ``sample`` (at load time), so ``auto`` starts informed.

        The first call pays one-off costs (lazy imports, cold caches), so the fastest
        of three counts.
        """
        best = float("inf")
        for _ in range(3):
            start = self._clock()
            self.runtime.predict(sample)
            best = min(best, self._clock() - start)
        self._learn(best, rows_of(sample), record=False)

    def inline_for(self, rows: int) -> bool:
        """Whether a predict of ``rows`` rows runs on the event loop now."""
        if self.mode != "auto":
            return self.mode == "inline"
        expected = self._expected(rows)
        if expected is None:
            return False
        if expected < self.inline_budget:
            return True
        # Timings on a thread include waiting for the GIL the busy event loop holds (up
        # to the 5 ms switch interval), so a fast model once sent to a thread would look
        # slow forever. Now and then, a model that is not grossly slow is timed inline.
        self._skipped += 1
        return self._skipped % _PROBE_EVERY == 0 and expected < _PROBE_LIMIT

    def run(self, data: Any, call: Callable[[Any], Any] | None = None) -> Any:
        """Predict on ``data``: the result itself when run inline, else an awaitable.

        Args:
            data: The model's input (rows first).
            call: What to run instead of ``runtime.predict`` (a custom model's predict).

        Raises:
            Exception: Whatever the model raises (inline); the awaitable raises it too.
        """
        fn = call or self.runtime.predict
        rows = rows_of(data)
        if not self.inline_for(rows):
            return self._threaded(fn, data, rows)
        probe = self.mode == "auto" and not self._cheap(rows)
        start = self._clock()
        out = fn(data)
        self._learn(self._clock() - start, rows, reset=probe)
        return out

    def _expected(self, rows: int) -> float | None:
        """Seconds a predict of ``rows`` rows is expected to take (None: never timed)."""
        if self._per_call is None or self._per_row is None:
            return None
        return max(self._per_call, self._per_row * rows)

    def _cheap(self, rows: int) -> bool:
        expected = self._expected(rows)
        return expected is not None and expected < self.inline_budget

    async def _threaded(self, fn: Callable[[Any], Any], data: Any, rows: int) -> Any:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="predict")
        out, seconds = await asyncio.get_running_loop().run_in_executor(
            self._pool, _timed, fn, data, self._clock)
        self._learn(seconds, rows)
        return out

    def _learn(self, seconds: float, rows: int, record: bool = True,
               reset: bool = False) -> None:
        if record:
            self.metrics.predict.observe(seconds)
            self.metrics.batch.observe(rows)
        per_row = seconds / max(rows, 1)
        if reset or self._per_call is None or self._per_row is None:
            # The first timing, or an inline probe (no GIL wait in it): taken as is.
            self._per_call, self._per_row = seconds, per_row
            return
        # Both smoothed; one outlier (a GC pause, a preempted process) moves the
        # estimate by a clipped step only.
        self._per_call += _SMOOTHING * (min(seconds, self._per_call * 4) - self._per_call)
        self._per_row += _SMOOTHING * (min(per_row, self._per_row * 4) - self._per_row)

    def close(self) -> None:
        """Stop the worker threads (waits for a predict in progress)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _timed(fn: Callable[[Any], Any], data: Any, clock: Callable[[], float]
           ) -> tuple[Any, float]:
    """Run ``fn(data)`` on a worker thread, timing it there (not the queue before it)."""
    start = clock()
    out = fn(data)
    return out, clock() - start
