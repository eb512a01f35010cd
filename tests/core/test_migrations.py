"""Schema management: migrations match the tables, newer databases are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from ketch.core.errors import StoreError
from ketch.core.store import open_store
from ketch.core.store._migrate import HEAD
from ketch.core.store._schema import metadata


def test_models_match_migration_head(database_url: str) -> None:
    """Core's and every component's tables are exactly what the migrations make."""
    from ketch.core.component import load_components

    branches = [c.schema for c in load_components() if c.schema is not None]
    assert branches, "the registry component declares its tables"
    store = open_store(database_url, schemas=branches)
    store.close()
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    everything = [metadata, *(b.metadata for b in branches if b.metadata is not None)]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), everything)  # type: ignore[arg-type]
        versions = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    engine.dispose()
    assert diff == []
    assert versions == {HEAD, *(b.head for b in branches)}


def test_reopening_an_existing_database_keeps_data(tmp_path: Path) -> None:
    from ketch.core.resources import Resource
    from ketch.jobs import JOB

    url = f"sqlite:///{tmp_path / 'k.db'}"
    store = open_store(url)
    store.create(JOB, Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "kept"},
        "spec": {"command": ["true"]}}))
    store.close()
    again = open_store(url)
    assert again.get(JOB, "default", "kept").name == "kept"
    again.close()


def test_database_from_a_newer_ketch_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    open_store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer than this ketch"):
        open_store(url)


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    from ketch.core.errors import InvalidError

    with pytest.raises(InvalidError, match="unsupported database URL scheme 'mongodb'"):
        open_store("mongodb://x")
    with pytest.raises(StoreError, match=r"ketch\.db"):
        open_store(f"sqlite:///{tmp_path}/no/such/dir/ketch.db")
