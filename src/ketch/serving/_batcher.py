"""Adaptive batching, with KServe's ``batcher {maxBatchSize, maxLatency, timeout}`` meaning.

Concurrent requests' rows are gathered until ``maxBatchSize`` rows are waiting or
``maxLatency`` milliseconds have passed since the first one arrived, whichever comes
first; then one predict runs on the concatenated rows and each request gets its own
slice of the result back. A request bigger than ``maxBatchSize`` runs as a batch of its
own. Requests whose rows cannot be stacked together (another dtype or row shape) close
the batch being gathered and start the next. ``timeout`` bounds how long a request
waits for its batch's predict (KServe's default is 60 s).

Rows are numpy arrays (the built-in runtimes) or lists of V1 ``instances`` (a custom
model, which then sees one ``{"instances": [...]}`` payload per batch, as behind KServe's
batcher).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ketch.serving._predict import rows_of

__all__ = ["BatchSettings", "BatchTimeout", "Batcher"]

DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_LATENCY_MS = 5000.0
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BatchSettings:
    """KServe's ``batcher`` fields: rows per batch, milliseconds to wait, seconds to give up."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS
    timeout_s: float = DEFAULT_TIMEOUT_S


class BatchTimeout(Exception):
    """The batch a request was in did not finish within the batcher's timeout."""


class Batcher:
    """Gathers rows from concurrent predicts into one call of ``predict``.

    Args:
        predict: Runs one batch (an array, or a list of instances) and returns one result
            row per input row, or an awaitable of that; for arrays, usually
            :meth:`Predictor.run`, which runs it inline or on a thread by its policy.
        max_batch_size: Rows that close a batch at once.
        max_latency_ms: Milliseconds the first request of a batch waits at most for others.
        timeout_s: Seconds a request waits at most for its batch's predict.

    Not thread-safe: call :meth:`submit` on the event loop only.
    """

    def __init__(self, predict: Callable[[Any], Any], *,
                 max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 max_latency_ms: float = DEFAULT_MAX_LATENCY_MS,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if max_batch_size < 1:
            raise ValueError(f"maxBatchSize must be at least 1, got {max_batch_size}")
        if max_latency_ms < 0 or timeout_s <= 0:
            raise ValueError("maxLatency must be >= 0 and timeout > 0")
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self.timeout = timeout_s
        self._items: list[tuple[Any, asyncio.Future[Any]]] = []
        self._rows = 0
        self._key: tuple[Any, ...] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, rows: np.ndarray[Any, Any] | list[Any]) -> Any:
        """Predict on ``rows`` as part of a batch; returns this request's slice.

        Raises:
            BatchTimeout: If the batch's predict took longer than the timeout.
            Exception: Whatever the model raised for the batch.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        n = rows_of(rows)
        key = ("list",) if isinstance(rows, list) else (rows.dtype.str, tuple(rows.shape[1:]))
        if self._items and key != self._key:
            self._flush()
        if n >= self.max_batch_size:  # too big to share: alone, now
            self._start([(rows, future)])
        else:
            if self._rows + n > self.max_batch_size:
                self._flush()
            self._key = key
            self._items.append((rows, future))
            self._rows += n
            if self._rows >= self.max_batch_size:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self.max_latency, self._flush)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            raise BatchTimeout(f"the batch did not finish within the batcher timeout of "
                               f"{self.timeout:g}s") from None

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._items, self._rows, self._key = self._items, [], 0, None
        if items:
            self._start(items)

    def _start(self, items: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, items: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        parts = [rows for rows, _ in items]
        if isinstance(parts[0], list):
            batch: Any = [row for part in parts for row in part]
        else:
            batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
        try:
            out = self.predict(batch)
            if asyncio.isfuture(out) or asyncio.iscoroutine(out):
                out = await out
            if isinstance(batch, list):
                result: Any = list(out) if isinstance(out, list | tuple | np.ndarray) else out
                count = len(result) if isinstance(result, list) else -1
            elif isinstance(out, dict):  # named outputs (ONNX, TorchScript), row-aligned
                result = {k: np.asarray(v) for k, v in out.items()}
                counts = {len(v) if v.ndim else 0 for v in result.values()}
                count = counts.pop() if len(counts) == 1 else -1
            else:
                result = out if isinstance(out, np.ndarray) else np.asarray(out)
                count = len(result) if result.ndim else 0
            if count != len(batch):
                raise ValueError(f"the model returned {max(count, 0)} rows for a batch of "
                                 f"{len(batch)}")
        except Exception as e:
            for _, future in items:
                if not future.done():
                    future.set_exception(e)
            return
        start = 0
        for rows, future in items:
            end = start + rows_of(rows)
            if not future.done():
                future.set_result({k: v[start:end] for k, v in result.items()}
                                  if isinstance(result, dict) else result[start:end])
            start = end
