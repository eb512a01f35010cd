"""The SQL store, run against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ketch.core.config import redact_url
from ketch.core.errors import (
    AlreadyExistsError,
    ConflictError,
    GoneError,
    InvalidError,
    NotFoundError,
    RequestEntityTooLargeError,
    StoreError,
)
from ketch.core.labels import LabelSelector
from ketch.core.resources import Resource
from ketch.core.store import ResourceStore, open_store
from ketch.jobs import JOB


@pytest.fixture
def store(database_url: str) -> Iterator[ResourceStore]:
    s = open_store(database_url)
    yield s
    s.close()


def job(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
        command: list[str] | None = None) -> Resource:
    return Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"command": command or ["true"]}})


def test_create_sets_identity_and_get_returns_it(store: ResourceStore) -> None:
    created = store.create(JOB, job("a"))
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.metadata.generation == 1
    assert int(created.metadata.resource_version or 0) > 0
    got = store.get(JOB, "default", "a")
    assert got.to_wire() == created.to_wire()
    with pytest.raises(AlreadyExistsError, match='"a" already exists'):
        store.create(JOB, job("a"))
    with pytest.raises(NotFoundError, match="not found"):
        store.get(JOB, "default", "missing")
    # The same name in another namespace is another object.
    assert store.create(JOB, job("a", "team-b")).namespace == "team-b"


def test_stale_resource_version_is_a_conflict_not_a_lost_update(store: ResourceStore) -> None:
    obj = store.create(JOB, job("a"))
    first = obj.model_copy(update={"spec": {"command": ["echo", "1"]}})
    second = obj.model_copy(update={"spec": {"command": ["echo", "2"]}})
    updated = store.update(JOB, first)
    assert updated.metadata.generation == 2
    with pytest.raises(ConflictError, match="has been modified"):
        store.update(JOB, second)
    assert store.get(JOB, "default", "a").spec == {"command": ["echo", "1"]}


def test_status_writes_do_not_touch_spec_and_noop_keeps_version(store: ResourceStore) -> None:
    obj = store.create(JOB, job("a"))
    obj.status = {"phase": "Running"}
    obj.spec = {"command": ["ignored"]}
    written = store.update_status(JOB, obj)
    assert written.spec == {"command": ["true"]}
    assert written.status == {"phase": "Running"}
    assert written.metadata.generation == 1
    again = store.update_status(JOB, written)
    assert again.metadata.resource_version == written.metadata.resource_version


def test_concurrent_writers_never_lose_an_update(store: ResourceStore) -> None:
    store.create(JOB, job("counter"))
    per_thread, threads = 15, 4

    def bump() -> None:
        for _ in range(per_thread):
            while True:
                obj = store.get(JOB, "default", "counter")
                obj.status = {"attempts": int(obj.status.get("attempts", 0)) + 1}
                try:
                    store.update_status(JOB, obj)
                    break
                except ConflictError:
                    continue

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert store.get(JOB, "default", "counter").status["attempts"] == per_thread * threads


def test_list_paginates_filters_and_spans_namespaces(store: ResourceStore) -> None:
    for i in range(25):
        store.create(JOB, job(f"j{i:02d}", labels={"team": "a" if i % 2 else "b"}))
    store.create(JOB, job("other", "ns2", labels={"team": "a"}))
    page = store.list(JOB, "default", limit=10)
    names = [o.name for o in page.items]
    assert names == [f"j{i:02d}" for i in range(10)]
    seen = list(names)
    while page.continue_token:
        page = store.list(JOB, "default", limit=10, continue_token=page.continue_token)
        seen += [o.name for o in page.items]
    assert seen == [f"j{i:02d}" for i in range(25)]
    team_a = store.list(JOB, "default", selector=LabelSelector.parse("team=a"), limit=5)
    assert len(team_a.items) == 5 and all(o.metadata.labels["team"] == "a" for o in team_a.items)
    assert team_a.continue_token is not None
    everywhere = store.list(JOB, None, selector=LabelSelector.parse("team in (a)"))
    assert len(everywhere.items) == 13
    assert {o.namespace for o in everywhere.items} == {"default", "ns2"}
    assert store.namespaces() == ["default", "ns2"]


def test_finalizers_hold_deletion_until_removed(store: ResourceStore) -> None:
    obj = job("a")
    obj.metadata.finalizers = ["ketch.dev/test"]
    created = store.create(JOB, obj)
    marked = store.delete(JOB, "default", "a")
    assert marked.metadata.deletion_timestamp
    assert store.get(JOB, "default", "a").metadata.deletion_timestamp
    marked.metadata.finalizers = []
    store.update(JOB, marked)
    with pytest.raises(NotFoundError):
        store.get(JOB, "default", "a")
    assert created.metadata.uid


def test_change_log_orders_events_and_expires(store: ResourceStore) -> None:
    start = store.revision()
    store.create(JOB, job("a"))
    obj = store.get(JOB, "default", "a")
    obj.status = {"phase": "Running"}
    store.update_status(JOB, obj)
    store.delete(JOB, "default", "a")
    events = store.events(start)
    assert [(e.type, e.object.name) for e in events] == [
        ("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert [e.revision for e in events] == sorted(e.revision for e in events)
    assert store.events(events[-1].revision) == []
    assert store.prune_events(-1) == 3
    with pytest.raises(GoneError, match="too old"):
        store.events(start)


def test_raw_events_are_the_change_log_with_objects_as_stored_json_text(
        store: ResourceStore) -> None:
    """What watch streams send: the same entries as ``events``, each object as the JSON
    text the database holds (decoding it gives the stored object), filtered alike; the
    status write through json_set (a partial update on PostgreSQL's jsonb) included."""
    import json

    start = store.revision()
    store.create(JOB, job("a", labels={"team": "x"}))
    store.create(JOB, job("b", "team-b"))
    obj = store.get(JOB, "default", "a")
    obj.status = {"phase": "Running", "note": "ünïcode \" \\ \n"}
    store.update_status(JOB, obj)
    store.delete(JOB, "team-b", "b")
    decoded = store.events(start)
    raw = store.raw_events(start)
    assert [(r.revision, r.type, r.kind_key, r.namespace, r.name) for r in raw] == [
        (e.revision, e.type, e.kind_key, e.object.namespace, e.object.name) for e in decoded]
    assert [json.loads(r.body_text) for r in raw] == [e.to_wire()["object"] for e in decoded]
    assert all("\n" not in r.body_text for r in raw)  # one server-sent-event line each
    assert raw[0].labels() == {"team": "x"} and raw[1].labels() == {}
    assert [r.name for r in store.raw_events(start, namespace="team-b")] == ["b", "b"]
    assert store.raw_events(raw[-1].revision) == []
    store.prune_events(-1)
    with pytest.raises(GoneError, match="too old"):
        store.raw_events(start)


def test_delete_with_stale_version_is_refused(store: ResourceStore) -> None:
    obj = store.create(JOB, job("a"))
    obj.status = {"phase": "Running"}
    store.update_status(JOB, obj)
    with pytest.raises(ConflictError):
        store.delete(JOB, "default", "a", resource_version=obj.metadata.resource_version)
    assert store.get(JOB, "default", "a")


def test_leases_are_exclusive_until_expired(store: ResourceStore) -> None:
    assert store.acquire_lease("work", "alpha", 30)
    assert not store.acquire_lease("work", "beta", 30)
    assert store.acquire_lease("work", "alpha", 30, {"pid": 1})
    lease = store.get_lease("work")
    assert lease is not None and lease.holder == "alpha" and lease.data == {"pid": 1}
    store.release_lease("work", "beta")  # not the holder: nothing happens
    assert store.get_lease("work") is not None
    assert store.acquire_lease("short", "alpha", -1)  # born expired
    assert store.acquire_lease("short", "beta", 30)
    store.release_lease("work", "alpha")
    assert store.get_lease("work") is None


def test_two_store_instances_see_each_others_writes(database_url: str) -> None:
    one, two = open_store(database_url), open_store(database_url)
    try:
        one.create(JOB, job("shared"))
        assert two.get(JOB, "default", "shared").name == "shared"
        assert [e.object.name for e in two.events(0)] == ["shared"]
    finally:
        one.close()
        two.close()


def test_change_log_is_compacted_to_a_window_of_revisions(store: ResourceStore) -> None:
    """Issue 10.7: the log kept every status write of every object for 15 minutes (one
    object with a 50 MB annotation grew the database by 250 MB). Now it keeps a window of
    recent revisions, and a watch from before the window is Gone, as after etcd compacts."""
    start = store.revision()
    obj = store.create(JOB, job("busy"))
    for n in range(30):
        obj.status = {"phase": "Running", "message": str(n)}
        obj = store.update_status(JOB, obj)
    latest = store.revision()
    assert store.prune_events(3600, keep_revisions=10) == 21
    # The last 10 revisions can still be followed; anything before is Gone.
    assert [e.revision for e in store.events(latest - 10)] == list(range(latest - 9,
                                                                         latest + 1))
    with pytest.raises(GoneError, match="too old"):
        store.events(start)
    with pytest.raises(GoneError):
        store.events(latest - 11)
    assert store.prune_events(3600, keep_revisions=10) == 0  # nothing more to drop


def test_size_limits_are_kept_by_every_writer(store: ResourceStore) -> None:
    notes = job("notes")
    notes.metadata.annotations = {"a": "x" * 262144}  # with its key, one byte over
    with pytest.raises(InvalidError, match=r"metadata\.annotations: Too long: must have at "
                                            "most 262144 bytes"):
        store.create(JOB, notes)
    obj = store.create(JOB, job("grows"))
    obj.status = {"message": "m" * (3 * 512 * 1024)}
    with pytest.raises(RequestEntityTooLargeError, match="limit is 1572864"):
        store.update_status(JOB, obj)
    assert store.get(JOB, "default", "grows").status == {}
    with pytest.raises(NotFoundError):
        store.get(JOB, "default", "notes")


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://ketch@127.0.0.1:1/ketch?password=hunter22&connect_timeout=2",
    "postgresql+psycopg://ketch:hunter22@127.0.0.1:1/ketch?connect_timeout=2",
    "postgresql+psycopg://ketch:hunter22@127.0.0.1:1?password=hunter22",
])
def test_database_passwords_never_appear_in_errors(url: str) -> None:
    """Issue 10.10: only ``user:pw@`` was masked; ``?password=`` was printed in clear."""
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert "hunter22" not in str(caught.value)
    assert "***" in str(caught.value)
    assert redact_url(url).count("hunter22") == 0
