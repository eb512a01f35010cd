"""Model registry tables.

Revision ID: registry_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None  # independent of core: both heads stay in alembic_version

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "registry_entities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("create_ms", sa.BigInteger, nullable=False),
        sa.Column("update_ms", sa.BigInteger, nullable=False),
        sa.Column("body", _json, nullable=False),
        sa.UniqueConstraint("namespace", "scope", "parent_id", "name", name="uq_registry_name"),
        sa.UniqueConstraint("namespace", "scope", "external_id", name="uq_registry_external_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_registry_type_parent", "registry_entities",
                    ["namespace", "entity_type", "parent_id"])


def downgrade() -> None:
    op.drop_table("registry_entities")
