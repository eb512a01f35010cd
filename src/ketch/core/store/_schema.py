"""Tables of the SQL store. Private: only ``_sql.py``, ``ketch.core.lineage`` and
migrations use them.

The schema is created and changed only through the Alembic migrations in
``migrations/versions``; a test checks that these tables match the head.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from ketch.core.store.types import JsonType

metadata = MetaData()

resources = Table(
    "ketch_resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(36), nullable=False, unique=True),
    Column("kind_key", String(255), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("name", String(253), nullable=False),
    Column("resource_version", BigInteger, nullable=False, index=True),
    # The object is its body (``ketch_bodies``: all but status) and its status, kept
    # apart so that a status write rewrites only the status (see ``_bodies``).
    Column("body_id", Integer, nullable=False, index=True),
    Column("status", JsonType, nullable=False),
    UniqueConstraint("kind_key", "namespace", "name", name="uq_ketch_resources_key"),
)

# The rest of an object (apiVersion, kind, metadata, spec) as of the revision that wrote
# it; rows that neither a resource nor the change log refers to go with log compaction.
bodies = Table(
    "ketch_bodies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("revision", BigInteger, nullable=False),
    Column("body", JsonType, nullable=False),
    # Bytes of the body's JSON text (the object-size limit, without reading the body).
    Column("size", Integer, nullable=False),
    # Where the resourceVersion value starts in the stored text, when the database keeps
    # the text as written (SQLite); NULL for jsonb.
    Column("rv_at", Integer, nullable=True),
    sqlite_autoincrement=True,
)

events = Table(
    "ketch_events",
    metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("event_type", String(16), nullable=False),
    Column("kind_key", String(255), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("name", String(253), nullable=False),
    # The object at this revision: the body current then, and the status.
    Column("body_id", Integer, nullable=False, index=True),
    Column("status", JsonType, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
)

# One row: the last revision handed out, and the newest revision pruned from
# the change log (watches from before it get 410 Gone).
revision = Table(
    "ketch_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
    Column("pruned_through", BigInteger, nullable=False),
)

leases = Table(
    "ketch_leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("data", JsonType, nullable=False),
)

# -- lineage: the ML Metadata model (see ketch.core.lineage) --------------------
# Ids are never reused (sqlite_autoincrement), so a stale id cannot find a newcomer.

lineage_artifacts = Table(
    "lineage_artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(63), nullable=False),
    Column("type", String(255), nullable=False),
    Column("uri", String(2048), nullable=False),
    Column("name", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("custom_properties", JsonType, nullable=False),
    Column("create_ms", BigInteger, nullable=False),
    Column("update_ms", BigInteger, nullable=False),
    Index("ix_lineage_artifacts_type", "namespace", "type"),
    Index("ix_lineage_artifacts_uri", "uri"),
    sqlite_autoincrement=True,
)

lineage_executions = Table(
    "lineage_executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(63), nullable=False),
    Column("type", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("custom_properties", JsonType, nullable=False),
    # What the engine's cache looks executions up by (a digest of component and inputs).
    Column("cache_key", String(255), nullable=True),
    Column("create_ms", BigInteger, nullable=False),
    Column("update_ms", BigInteger, nullable=False),
    Index("ix_lineage_executions_type", "namespace", "type"),
    Index("ix_lineage_executions_cache_key", "cache_key", "state"),
    sqlite_autoincrement=True,
)

lineage_contexts = Table(
    "lineage_contexts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(63), nullable=False),
    Column("type", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("parent_id", Integer, ForeignKey("lineage_contexts.id"), nullable=True),
    Column("properties", JsonType, nullable=False),
    Column("create_ms", BigInteger, nullable=False),
    Column("update_ms", BigInteger, nullable=False),
    UniqueConstraint("type", "namespace", "name", name="uq_lineage_contexts_name"),
    sqlite_autoincrement=True,
)

lineage_attributions = Table(
    "lineage_attributions",
    metadata,
    Column("context_id", Integer, ForeignKey("lineage_contexts.id"), primary_key=True),
    Column("artifact_id", Integer, ForeignKey("lineage_artifacts.id"), primary_key=True,
           index=True),
)

lineage_associations = Table(
    "lineage_associations",
    metadata,
    Column("context_id", Integer, ForeignKey("lineage_contexts.id"), primary_key=True),
    Column("execution_id", Integer, ForeignKey("lineage_executions.id"), primary_key=True,
           index=True),
)

lineage_events = Table(
    "lineage_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("artifact_id", Integer, ForeignKey("lineage_artifacts.id"), nullable=False,
           index=True),
    Column("execution_id", Integer, ForeignKey("lineage_executions.id"), nullable=False,
           index=True),
    Column("type", String(16), nullable=False),
    # The slot: the input or output name the artifact was bound to.
    Column("path", String(255), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    UniqueConstraint("execution_id", "type", "path", "artifact_id",
                     name="uq_lineage_events_slot"),
    sqlite_autoincrement=True,
)
