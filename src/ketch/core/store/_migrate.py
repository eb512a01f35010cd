"""Schema versioning: Alembic migrations shipped in the package.

At start-up the store reads the schema version directly (cheap, no Alembic
import) and runs Alembic only when the database is new or behind. A database
written by a newer ketch is refused with an instruction, never silently used.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

from ketch.core.errors import StoreError

__all__ = ["HEAD", "ensure_schema", "upgrade"]

# Bump together with a new file in migrations/versions.
HEAD = "0001"
_KNOWN = ("0001",)
MIGRATIONS = Path(__file__).parent / "migrations"


def current_version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine) -> None:
    """Bring the schema to ``HEAD``; raise ``StoreError`` if the database is newer."""
    version = current_version(engine)
    if version == HEAD:
        return
    if version is not None and version not in _KNOWN:
        raise StoreError(
            f"the database schema is at revision {version}, newer than this ketch knows "
            f"({HEAD}); upgrade ketch (pip install -U ketch) to use this database")
    upgrade(engine)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` on ``engine``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
