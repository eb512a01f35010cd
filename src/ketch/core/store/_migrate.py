"""Schema versioning: Alembic migrations shipped in the package.

Core's tables have one migration history (``migrations/versions``); a component
with tables of its own declares a ``SchemaBranch``: its own versions directory,
an Alembic branch that starts from core's first revision. ``alembic_version``
then holds one row per branch head.

At start-up the store reads those rows directly (cheap, no Alembic import) and
runs Alembic only when the database is new or behind. A database written by a
newer ketch is refused with an instruction, never silently used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, MetaData, inspect, text

from ketch.core.errors import StoreError

__all__ = ["CORE_SCHEMA", "HEAD", "SchemaBranch", "ensure_schema", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class SchemaBranch:
    """One migration history: where its revisions live, its head, every revision id
    it has ever had (to tell "behind" from "newer than this ketch"), and the tables
    it should produce (for the test that models match migrations)."""

    name: str
    versions_dir: Path
    head: str
    known: tuple[str, ...]
    metadata: MetaData | None = None


def _core_metadata() -> MetaData:
    from ketch.core.store._schema import metadata

    return metadata


# Bump ``head`` and ``known`` together with a new file in migrations/versions.
CORE_SCHEMA = SchemaBranch("core", MIGRATIONS / "versions", head="0003",
                           known=("0001", "0002", "0003"))
HEAD = CORE_SCHEMA.head


def current_versions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return {str(v) for v in rows}


def ensure_schema(engine: Engine, branches: Sequence[SchemaBranch] = ()) -> None:
    """Bring every branch to its head; raise ``StoreError`` if the database is newer."""
    everything = [CORE_SCHEMA, *branches]
    current = current_versions(engine)
    if current == {b.head for b in everything}:
        return
    known = {rev for b in everything for rev in b.known}
    unknown = sorted(current - known)
    if unknown:
        raise StoreError(
            f"the database schema has revision(s) {', '.join(unknown)}, newer than this ketch "
            f"knows; upgrade ketch (pip install -U ketch) to use this database")
    upgrade(engine, everything)


def upgrade(engine: Engine, branches: Sequence[SchemaBranch] = (CORE_SCHEMA,),
            revision: str = "heads") -> None:
    """Run the Alembic migrations of ``branches`` up to ``revision`` on ``engine``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations",
                           " ".join(str(b.versions_dir) for b in branches))
    config.set_main_option("path_separator", "space")
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
