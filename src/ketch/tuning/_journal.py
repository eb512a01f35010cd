"""Optuna's journal storage on ketch's database: an Experiment's study, durable.

``StoreJournal`` is an Optuna ``BaseJournalBackend`` over ``tuning_journal``: every
operation Optuna makes (create a trial, set its parameters, tell its value, system
attributes such as CMA-ES's state) is one row, numbered within the study. A control
plane that restarts replays the rows and has the same study, on SQLite or
PostgreSQL alike; nothing of it lives in process memory only.

An append numbers its rows after the last one it read in the same transaction; the
unique ``(study, seq)`` turns a concurrent append into a conflict, retried after
reading again, so every reader replays one order.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ketch.core.store import ResourceStore
from ketch.tuning._tables import journal

__all__ = ["StoreJournal", "delete_study", "open_study"]

_APPEND_TRIES = 20


class StoreJournal:
    """The journal of one study (an Experiment's uid) in the ketch database.

    ``batch()`` makes what Optuna appends inside it one transaction: an ``ask`` is
    several operations (create the trial, set each parameter), and a crash between
    them must not leave a trial with half its parameters."""

    def __init__(self, store: ResourceStore, study: str) -> None:
        self._store = store
        self._study = study
        self._held: list[dict[str, Any]] | None = None
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            self._held = []
            try:
                yield
                held, self._held = self._held, None
                self._append(held)
            finally:
                self._held = None

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        cols = journal.c
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(select(cols.body).where(
                cols.study == self._study, cols.seq >= log_number_from)
                .order_by(cols.seq)).scalars().all()
            last = conn.execute(select(func.max(cols.seq)).where(
                cols.study == self._study)).scalar() if self._held else None
        logs = [dict(row) for row in rows]
        if self._held:  # this batch's logs so far follow the stored ones (seq 0, 1, ...)
            stored = 0 if last is None else int(last) + 1
            logs += self._held[max(log_number_from - stored, 0):]
        return logs

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with self._lock:
            if self._held is not None:
                self._held.extend(logs)
                return
        self._append(logs)

    def _append(self, logs: list[dict[str, Any]]) -> None:
        if not logs:
            return
        cols = journal.c
        for attempt in range(_APPEND_TRIES):
            try:
                with self._store.transaction(write=True) as conn:
                    last = conn.execute(select(func.max(cols.seq)).where(
                        cols.study == self._study)).scalar()
                    start = -1 if last is None else int(last)
                    conn.execute(insert(journal), [
                        {"study": self._study, "seq": start + 1 + i, "body": log}
                        for i, log in enumerate(logs)])
                return
            except IntegrityError:
                time.sleep(0.01 * (attempt + 1))  # another writer took those numbers
        raise RuntimeError(f"could not append to the journal of study {self._study}")


def open_study(store: ResourceStore, study: str, *, direction: str, sampler: Any,
               pruner: Any = None) -> tuple[Any, StoreJournal]:
    """The Optuna study of an Experiment, created on first use, loaded after; and
    its journal (for ``batch``)."""
    import optuna
    from optuna.storages import JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = StoreJournal(store, study)
    storage = JournalStorage(backend)  # type: ignore[arg-type]
    return optuna.create_study(storage=storage, study_name=study,
                               direction=direction,  # type: ignore[arg-type]
                               sampler=sampler, pruner=pruner, load_if_exists=True), backend


def delete_study(store: ResourceStore, study: str) -> None:
    with store.transaction(write=True) as conn:
        conn.execute(delete(journal).where(journal.c.study == study))
