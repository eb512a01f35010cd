"""Schema management: migrations match the tables, newer databases are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _old_object(name: str, rev: int, status: dict[str, Any],
                spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "labels": {"resourceVersion": str(rev)},
                         "creationTimestamp": "2026-12-01T00:00:00Z",
                         "resourceVersion": str(rev), "generation": 1},
            "spec": spec or {"command": ["true"]}, "status": status}


def test_a_0002_database_keeps_every_object_and_revision(database_url: str) -> None:
    """Objects and change-log entries written in 0002's layout (the whole object in one
    column) read back the same after the upgrade that keeps status apart, through every
    read path, and take writes afterwards."""
    from ketch.core.store._migrate import CORE_SCHEMA, upgrade
    from ketch.jobs import JOB

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine, [CORE_SCHEMA], revision="0002")
    spec = {"command": ["true"], "ir": {f"c{i}": "é" * 50 for i in range(50)}}
    history = [  # (revision, event, object)
        (1, "ADDED", _old_object("kept", 1, {}, spec)),
        (2, "MODIFIED", _old_object("kept", 2, {"phase": "Running", "n": [1, 2.5, None]},
                                    spec)),
        (3, "ADDED", _old_object("gone", 3, {})),
        (4, "DELETED", _old_object("gone", 4, {"phase": "Succeeded"})),
    ]
    with engine.begin() as conn:
        for rev, kind, obj in history:
            conn.execute(text("INSERT INTO ketch_events (revision, event_type, kind_key, "
                              "namespace, name, body, created_at) VALUES (:rev, :kind, :key, "
                              "'default', :name, :body, 1.0)"),
                         {"rev": rev, "kind": kind, "key": JOB.key,
                          "name": obj["metadata"]["name"], "body": json.dumps(obj)})
        conn.execute(text("INSERT INTO ketch_resources (uid, kind_key, namespace, name, "
                          "resource_version, body) VALUES ('uid-kept', :key, 'default', "
                          "'kept', 2, :body)"),
                     {"key": JOB.key, "body": json.dumps(history[1][2])})
        conn.execute(text("UPDATE ketch_revision SET value = 4"))
    engine.dispose()

    store = open_store(database_url)
    try:
        kept = store.get(JOB, "default", "kept")
        assert kept.to_wire() == history[1][2]
        assert [o.to_wire() for o in store.list(JOB).items] == [history[1][2]]
        events = store.events(0)
        assert [(e.revision, e.type, e.object.to_wire()) for e in events] == history
        raw = store.raw_events(0)
        assert [json.loads(r.body_text) for r in raw] == [obj for _, _, obj in history]
        rev = store.write_status(JOB, kept.model_copy(update={"status": {"phase": "Done"}}))
        assert int(rev) == 5
        after = store.get(JOB, "default", "kept")
        assert after.status == {"phase": "Done"} and after.spec == spec
        [last] = store.raw_events(4)
        assert json.loads(last.body_text) == after.to_wire()
        changed = store.update(JOB, after.model_copy(update={"spec": {"command": ["x"]}}))
        assert changed.metadata.generation == 2 and changed.status == {"phase": "Done"}
    finally:
        store.close()
