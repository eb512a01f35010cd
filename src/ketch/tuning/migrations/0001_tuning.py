"""Tuning tables: the journal of each Experiment's Optuna study.

Revision ID: tuning_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "tuning_0001"
down_revision = None
branch_labels = ("tuning",)
depends_on = None  # independent of core: both heads stay in alembic_version

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tuning_journal",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("body", _json, nullable=False),
        sa.UniqueConstraint("study", "seq", name="uq_tuning_journal_seq"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("tuning_journal")
