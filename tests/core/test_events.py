"""Events recorded from condition changes go with the object they are about, on SQLite
and a real PostgreSQL: deleted with it (a plain delete, or the update that takes its last
finalizer), and, for Events a recorder did not write itself (a restarted control plane),
at the next prune."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ketch.core.core_kinds import CORE_KINDS, EVENT
from ketch.core.events import EventRecorder
from ketch.core.kinds import KindRegistry
from ketch.core.resources import Resource, now
from ketch.core.store import ResourceStore, open_store
from ketch.jobs import JOB

REGISTRY = KindRegistry.of([*CORE_KINDS, JOB])


@pytest.fixture
def store(database_url: str) -> Iterator[ResourceStore]:
    s = open_store(database_url)
    yield s
    s.close()


def _job(name: str, finalizers: list[str] | None = None) -> Resource:
    return Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default", "finalizers": finalizers or []},
        "spec": {"command": ["true"]}})


def _succeed(store: ResourceStore, name: str) -> Resource:
    job = store.get(JOB, "default", name)
    stamp = now()
    status = {"phase": "Succeeded", "conditions": [
        {"type": "Running", "status": "False", "reason": "Completed",
         "lastTransitionTime": stamp},
        {"type": "Succeeded", "status": "True", "reason": "Completed",
         "lastTransitionTime": stamp}]}
    return store.update_status(JOB, job.model_copy(update={"status": status}))


def _about(store: ResourceStore, name: str) -> list[Resource]:
    return [e for e in store.list(EVENT, "default").items
            if e.spec["involvedObject"]["name"] == name]


def test_a_deleted_objects_events_go_with_it(store: ResourceStore) -> None:
    EventRecorder(store, "test-host", REGISTRY).install()
    for name in ("gone", "kept"):
        store.create(JOB, _job(name))
        _succeed(store, name)
    assert _about(store, "gone") and _about(store, "kept")

    store.delete(JOB, "default", "gone")
    assert _about(store, "gone") == []
    assert _about(store, "kept"), "another object's events stay"


def test_events_go_when_the_last_finalizer_does(store: ResourceStore) -> None:
    EventRecorder(store, "test-host", REGISTRY).install()
    store.create(JOB, _job("held", finalizers=["ketch.dev/cleanup"]))
    _succeed(store, "held")
    store.delete(JOB, "default", "held")
    assert _about(store, "held"), "still being deleted: its events stay"

    held = store.get(JOB, "default", "held")
    store.update(JOB, held.model_copy(update={
        "metadata": held.metadata.model_copy(update={"finalizers": []})}))
    assert _about(store, "held") == []


def test_a_prune_deletes_events_of_objects_gone_or_recreated(
        store: ResourceStore, database_url: str) -> None:
    # The first control plane records events, then stops without seeing the deletes.
    before = EventRecorder(store, "first", REGISTRY)
    before.install()
    for name in ("deleted", "recreated", "alive"):
        store.create(JOB, _job(name))
        _succeed(store, name)
    plain = open_store(database_url)
    try:
        # Writes through another store instance: no listener of the first one hears them.
        plain.delete(JOB, "default", "deleted")
        plain.delete(JOB, "default", "recreated")
        plain.create(JOB, _job("recreated"))
    finally:
        plain.close()

    orphans = len(_about(store, "deleted")) + len(_about(store, "recreated"))
    assert orphans
    assert EventRecorder(store, "second", REGISTRY).prune() == orphans
    assert _about(store, "deleted") == [] and _about(store, "recreated") == []
    assert _about(store, "alive"), "events of a live object stay"
