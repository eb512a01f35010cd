"""The exit subscribers every backend keeps (``Executor.subscribe``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["ExitSubscribers"]

log = logging.getLogger("ketch.core.executors")


class ExitSubscribers:
    """Callbacks ``fn(unit_id)``: every one is called; one that raises is logged and
    does not stop the others. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[str], None]] = []

    def add(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Subscribe ``callback``; the returned call unsubscribes it (idempotent)."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def notify(self, unit_id: str) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(unit_id)
            except Exception:
                log.exception("exit subscriber failed for unit %s", unit_id)
