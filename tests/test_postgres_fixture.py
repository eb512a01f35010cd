"""The test-suite PostgreSQL helper starts a real, usable server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from _postgres import reset_database, start_postgres  # tests/ is on sys.path (rootdir)


@pytest.mark.postgres
def test_start_postgres_serves_a_real_database(tmp_path: Path) -> None:
    with start_postgres(tmp_path) as url:
        assert url.startswith("postgresql+psycopg://")
        engine = create_engine(url)
        other = create_engine(url)
        try:
            with engine.connect() as conn:
                version = conn.execute(text("select version()")).scalar_one()
                assert version.startswith("PostgreSQL ")
                assert conn.execute(text("select current_database()")).scalar_one() == (
                    engine.url.database
                )

            with engine.begin() as conn:
                conn.execute(text("create table probe (id int primary key, name text)"))
                conn.execute(text("insert into probe values (1, 'committed')"))

            # A second, independent connection (separate pool) sees committed data.
            with other.connect() as conn:
                rows = conn.execute(text("select id, name from probe")).all()
                assert [tuple(r) for r in rows] == [(1, "committed")]

            engine.dispose()
            other.dispose()
            reset_database(url)
            with engine.connect() as conn:
                assert conn.execute(text("select to_regclass('public.probe')")).scalar_one() is None
        finally:
            engine.dispose()
            other.dispose()
