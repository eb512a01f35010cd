"""Column types for the live table definitions of core and of the components that
keep tables of their own in the store's database (the model registry).

Migrations do not import this: they are frozen history and spell their types out.
"""

from __future__ import annotations

from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["JsonType"]

#: A JSON document column: JSONB on PostgreSQL (indexed, compact), JSON text elsewhere.
JsonType = JSON().with_variant(JSONB(), "postgresql")
