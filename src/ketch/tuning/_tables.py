"""The tuning component's table: the journal of each Experiment's Optuna study.

Optuna's ``JournalStorage`` keeps a study as an ordered log of operations (create a
trial, set a parameter, tell a value); ``_journal`` stores that log here, one row per
operation, numbered per study. The unique ``(study, seq)`` makes an append from a
second writer fail instead of interleaving, so replay order is the same everywhere.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint

from ketch.core.store import SchemaBranch
from ketch.core.store.types import JsonType

metadata = MetaData()

journal = Table(
    "tuning_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The Experiment's uid: a study per Experiment, gone with it.
    Column("study", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("body", JsonType, nullable=False),
    UniqueConstraint("study", "seq", name="uq_tuning_journal_seq"),
    sqlite_autoincrement=True,
)

SCHEMA = SchemaBranch("tuning", Path(__file__).parent / "migrations", head="tuning_0001",
                      known=("tuning_0001",), metadata=metadata)
