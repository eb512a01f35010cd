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

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ketch.core.store import ResourceStore
from ketch.tuning._tables import journal

__all__ = ["StoreJournal", "delete_study", "open_study"]

_APPEND_TRIES = 20


class StoreJournal:
    """The journal of one study (an Experiment's uid) in the ketch database."""

    def __init__(self, store: ResourceStore, study: str) -> None:
        self._store = store
        self._study = study

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        cols = journal.c
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(select(cols.body).where(
                cols.study == self._study, cols.seq >= log_number_from)
                .order_by(cols.seq)).scalars().all()
        return [dict(row) for row in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
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
               pruner: Any = None) -> Any:
    """The Optuna study of an Experiment, created on first use, loaded after."""
    import optuna
    from optuna.storages import JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(StoreJournal(store, study))  # type: ignore[arg-type]
    return optuna.create_study(storage=storage, study_name=study,
                               direction=direction,  # type: ignore[arg-type]
                               sampler=sampler, pruner=pruner, load_if_exists=True)


def delete_study(store: ResourceStore, study: str) -> None:
    with store.transaction(write=True) as conn:
        conn.execute(delete(journal).where(journal.c.study == study))
