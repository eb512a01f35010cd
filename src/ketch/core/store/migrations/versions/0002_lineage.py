"""Lineage tables: the ML Metadata model (artifacts, executions, contexts, events).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "lineage_artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("custom_properties", _json, nullable=False),
        sa.Column("create_ms", sa.BigInteger, nullable=False),
        sa.Column("update_ms", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_lineage_artifacts_type", "lineage_artifacts", ["namespace", "type"])
    op.create_index("ix_lineage_artifacts_uri", "lineage_artifacts", ["uri"])
    op.create_table(
        "lineage_executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("custom_properties", _json, nullable=False),
        sa.Column("cache_key", sa.String(255), nullable=True),
        sa.Column("create_ms", sa.BigInteger, nullable=False),
        sa.Column("update_ms", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_lineage_executions_type", "lineage_executions", ["namespace", "type"])
    op.create_index("ix_lineage_executions_cache_key", "lineage_executions",
                    ["cache_key", "state"])
    op.create_table(
        "lineage_contexts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("lineage_contexts.id"), nullable=True),
        sa.Column("properties", _json, nullable=False),
        sa.Column("create_ms", sa.BigInteger, nullable=False),
        sa.Column("update_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("type", "namespace", "name", name="uq_lineage_contexts_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "lineage_attributions",
        sa.Column("context_id", sa.Integer, sa.ForeignKey("lineage_contexts.id"),
                  primary_key=True),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("lineage_artifacts.id"),
                  primary_key=True),
    )
    op.create_index("ix_lineage_attributions_artifact_id", "lineage_attributions",
                    ["artifact_id"])
    op.create_table(
        "lineage_associations",
        sa.Column("context_id", sa.Integer, sa.ForeignKey("lineage_contexts.id"),
                  primary_key=True),
        sa.Column("execution_id", sa.Integer, sa.ForeignKey("lineage_executions.id"),
                  primary_key=True),
    )
    op.create_index("ix_lineage_associations_execution_id", "lineage_associations",
                    ["execution_id"])
    op.create_table(
        "lineage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("lineage_artifacts.id"),
                  nullable=False),
        sa.Column("execution_id", sa.Integer, sa.ForeignKey("lineage_executions.id"),
                  nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("execution_id", "type", "path", "artifact_id",
                            name="uq_lineage_events_slot"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_lineage_events_artifact_id", "lineage_events", ["artifact_id"])
    op.create_index("ix_lineage_events_execution_id", "lineage_events", ["execution_id"])


def downgrade() -> None:
    for table in ("lineage_events", "lineage_associations", "lineage_attributions",
                  "lineage_contexts", "lineage_executions", "lineage_artifacts"):
        op.drop_table(table)
