"""Tables of the SQL store. Private: only ``_sql.py`` and migrations use them.

The schema is created and changed only through the Alembic migrations in
``migrations/versions``; a test checks that these tables match the head.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# JSONB on PostgreSQL (indexed, compact); JSON text elsewhere.
JsonType = JSON().with_variant(JSONB(), "postgresql")

resources = Table(
    "ketch_resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(36), nullable=False, unique=True),
    Column("kind_key", String(255), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("name", String(253), nullable=False),
    Column("resource_version", BigInteger, nullable=False, index=True),
    Column("body", JsonType, nullable=False),
    UniqueConstraint("kind_key", "namespace", "name", name="uq_ketch_resources_key"),
)

events = Table(
    "ketch_events",
    metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("event_type", String(16), nullable=False),
    Column("kind_key", String(255), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("name", String(253), nullable=False),
    Column("body", JsonType, nullable=False),
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
