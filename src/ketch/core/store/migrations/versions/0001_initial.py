"""Initial schema: resources, change log, revision counter, leases.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ketch_resources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("kind_key", sa.String(255), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("resource_version", sa.BigInteger, nullable=False),
        sa.Column("body", _json, nullable=False),
        sa.UniqueConstraint("kind_key", "namespace", "name", name="uq_ketch_resources_key"),
    )
    op.create_index("ix_ketch_resources_resource_version", "ketch_resources",
                    ["resource_version"])
    op.create_table(
        "ketch_events",
        sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("kind_key", sa.String(255), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("body", _json, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_ketch_events_created_at", "ketch_events", ["created_at"])
    revision_table = op.create_table(
        "ketch_revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("pruned_through", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "value": 0, "pruned_through": 0}])
    op.create_table(
        "ketch_leases",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("data", _json, nullable=False),
    )


def downgrade() -> None:
    for table in ("ketch_leases", "ketch_revision", "ketch_events", "ketch_resources"):
        op.drop_table(table)
