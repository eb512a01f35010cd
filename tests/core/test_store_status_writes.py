"""The store's cheap paths for controllers on large objects, against SQLite and a real
PostgreSQL: ``write_status`` (the status swapped in by the database, not a decode and
re-encode of the whole object), ``resource_version`` and ``changed_keys`` (no bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ketch.core.errors import ConflictError, NotFoundError, RequestEntityTooLargeError
from ketch.core.resources import Resource
from ketch.core.store import ResourceStore, open_store
from ketch.jobs import JOB


@pytest.fixture
def store(database_url: str) -> Iterator[ResourceStore]:
    s = open_store(database_url)
    yield s
    s.close()


def job(name: str) -> Resource:
    return Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default", "labels": {"team": "a"},
                     "annotations": {"note": "ü"}},
        "spec": {"command": ["true"], "env": [{"name": "X", "value": "1"}]}})


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in body["metadata"].items()
            if k not in ("name", "uid", "creationTimestamp", "resourceVersion")}
    return {**body, "metadata": meta}


STATUSES: list[dict[str, Any]] = [
    {"phase": "Running", "tasks": {"a": {"phase": "Pending", "n": [1, 2.5, None, True]}}},
    {"phase": "Running", "tasks": {"a": {"phase": "Succeeded", "text": "é \u2603 \"q\""}},
     "big": 2**62},
    {},
]


def test_write_status_stores_what_update_status_stores(store: ResourceStore) -> None:
    by_update = store.create(JOB, job("by-update"))
    by_write = store.create(JOB, job("by-write"))
    for status in STATUSES:
        # The caller's spec and labels are not the stored ones: a status write ignores them.
        local = {"spec": {"command": ["ignored"]}, "status": status}
        by_update = store.update_status(JOB, by_update.model_copy(update=local))
        rev = store.write_status(JOB, by_write.model_copy(update=local))
        stored = store.get(JOB, "default", "by-write")
        assert stored.metadata.resource_version == rev
        assert _comparable(stored.to_wire()) == _comparable(by_update.to_wire())
        # The same keys in the same order (what -o yaml shows).
        assert list(stored.to_wire()) == list(by_update.to_wire())
        assert stored.spec == {"command": ["true"], "env": [{"name": "X", "value": "1"}]}
        # The change log holds the object as stored.
        last = store.events(int(rev) - 1)
        assert [(e.type, e.revision) for e in last] == [("MODIFIED", int(rev))]
        assert last[0].object.to_wire() == stored.to_wire()
        by_write = stored


def test_write_status_no_op_keeps_version_and_logs_nothing(store: ResourceStore) -> None:
    obj = store.create(JOB, job("a"))
    rev = store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Running"}}))
    held = store.get(JOB, "default", "a")
    assert store.write_status(JOB, held) == rev
    assert store.revision() == int(rev)
    assert store.events(int(rev)) == []


def test_write_status_keeps_the_store_contract(store: ResourceStore) -> None:
    obj = store.create(JOB, job("a"))
    store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Running"}}))
    with pytest.raises(ConflictError, match="has been modified"):
        store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Failed"}}))
    with pytest.raises(NotFoundError, match='"missing" not found'):
        store.write_status(JOB, job("missing"))
    current = store.get(JOB, "default", "a")
    huge = {"phase": "Running", "log": "x" * (2 * 1024 * 1024)}
    with pytest.raises(RequestEntityTooLargeError, match="too large"):
        store.write_status(JOB, current.model_copy(update={"status": huge}))
    # Refused as a whole: nothing written, nothing logged.
    after = store.get(JOB, "default", "a")
    assert after.to_wire() == current.to_wire()
    assert store.events(int(current.metadata.resource_version or 0)) == []


def test_resource_version_and_changed_keys_read_no_bodies(store: ResourceStore) -> None:
    start = store.revision()
    obj = store.create(JOB, job("a"))
    assert store.resource_version(JOB, "default", "a") == obj.metadata.resource_version
    rev = store.write_status(JOB, obj.model_copy(update={"status": {"phase": "Running"}}))
    assert store.resource_version(JOB, "default", "a") == rev
    with pytest.raises(NotFoundError, match='"b" not found'):
        store.resource_version(JOB, "default", "b")
    keys = store.changed_keys(start, kind_keys={JOB.key})
    assert [(k.revision, k.kind_key, k.namespace, k.name) for k in keys] == [
        (int(obj.metadata.resource_version or 0), JOB.key, "default", "a"),
        (int(rev), JOB.key, "default", "a")]
    assert store.changed_keys(start, kind_keys={"other"}) == []
    assert [k.revision for k in store.changed_keys(start, limit=1)] == [
        int(obj.metadata.resource_version or 0)]
