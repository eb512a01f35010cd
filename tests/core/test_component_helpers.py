"""Core's helpers for every component: the backoff formula, the typed base status and
the claim/adopt helper (two real control planes on one database, SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ketch.core.component_backoff import backoff_delay
from ketch.core.component_claim import Claims, Owner
from ketch.core.component_status import BaseStatus
from ketch.core.config import Settings
from ketch.core.errors import ConflictError
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.jobs import JOB


def test_backoff_grows_by_factor_from_base_and_stops_at_cap() -> None:
    assert [backoff_delay(n, base=1.0, cap=60.0) for n in range(1, 9)] == [
        1, 2, 4, 8, 16, 32, 60, 60]
    # KFP's retryPolicy: backoffDuration 5s, factor 3, max 100s.
    assert [backoff_delay(n, base=5.0, factor=3.0, cap=100.0) for n in (1, 2, 3, 4)] == [
        5, 15, 45, 100]
    # A failure count no float can raise to: the cap, not an OverflowError.
    assert backoff_delay(10**6, base=0.005, cap=1000.0) == 1000.0
    assert backoff_delay(3, base=0.0, cap=10.0) == 0.0


@pytest.mark.parametrize(("args", "word"), [
    ({"attempt": 0, "base": 1.0, "cap": 1.0}, "attempt"),
    ({"attempt": 1, "base": -1.0, "cap": 1.0}, "base"),
    ({"attempt": 1, "base": 1.0, "cap": 1.0, "factor": 0.0}, "factor"),
])
def test_backoff_refuses_bad_input_naming_it(args: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        backoff_delay(int(args.pop("attempt")), **args)


class _TrialStatus(BaseStatus):
    phase: str = "Pending"


def test_base_status_is_camel_case_on_the_wire_and_keeps_transition_times() -> None:
    obj = Resource.model_validate({"apiVersion": "ketch.dev/v1", "kind": "Job",
                                   "metadata": {"name": "a", "generation": 3},
                                   "status": {"phase": "Running", "controlPlane": "cp-1"}})
    status = _TrialStatus.of(obj)
    assert status.control_plane == "cp-1" and status.phase == "Running"
    status.observe(obj)
    status.set_condition("Ready", False, "Loading", "model loading")
    first = status.condition("Ready")
    assert first is not None and not status.is_true("Ready")
    status.set_condition("Ready", False, "Loading", "still loading")
    again = status.condition("Ready")
    assert again is not None
    assert again["lastTransitionTime"] == first["lastTransitionTime"]
    wire = status.to_wire()
    assert wire["observedGeneration"] == 3 and wire["controlPlane"] == "cp-1"
    assert wire["conditions"][0]["message"] == "still loading"
    with pytest.raises(ValueError, match="unknownField"):
        _TrialStatus.model_validate({"unknownField": 1})


def _runtime(home: Path, database_url: str) -> Runtime:
    # No components: nothing but the test writes these objects' status.
    return Runtime(Settings.from_env({"KETCH_HOME": str(home),
                                      "KETCH_DATABASE_URL": database_url}), [])


@pytest.fixture
def planes(tmp_path: Path, database_url: str) -> Iterator[tuple[Runtime, Runtime]]:
    a, b = _runtime(tmp_path / "a", database_url), _runtime(tmp_path / "b", database_url)
    a.start()
    b.start()
    yield a, b
    for rt in (a, b):
        rt.stop()


def _job(rt: Runtime, name: str) -> Resource:
    return rt.store.create(JOB, Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"command": ["true"]}}))


def test_two_control_planes_claiming_from_one_read_one_wins(
        planes: tuple[Runtime, Runtime]) -> None:
    a, b = planes
    job = _job(a, "race")
    read_by_a, read_by_b = a.store.get(JOB, "default", "race"), b.store.get(JOB, "default",
                                                                            "race")
    claimed = Claims(a, JOB).claim(read_by_a, lambda st: st.update(active={"unitId": "u-1"}))
    assert claimed is not None and claimed.status["controlPlane"] == a.id
    assert claimed.status["active"] == {"unitId": "u-1"}
    # b read the same version: its claim is stale and lands nowhere.
    assert Claims(b, JOB).claim(read_by_b) is None
    stored = b.store.get(JOB, "default", "race")
    assert stored.status["controlPlane"] == a.id
    assert Claims(b, JOB).owner(stored) is Owner.ALIVE
    assert Claims(b, JOB).wait_for_owner(stored) is not None
    assert Claims(b, JOB).adopt(stored) is None
    with pytest.raises(ConflictError, match="live control plane"):
        Claims(b, JOB).claim(stored)
    assert job.metadata.resource_version != stored.metadata.resource_version


def test_work_of_a_dead_control_plane_is_adopted(tmp_path: Path, database_url: str) -> None:
    a, b = _runtime(tmp_path / "a", database_url), _runtime(tmp_path / "b", database_url)
    a.start()
    b.start()
    a_running = True
    try:
        _job(a, "orphan")
        claimed = Claims(a, JOB).claim(a.store.get(JOB, "default", "orphan"))
        assert claimed is not None
        a.stop()  # releases its lease: a is dead to b at once
        a_running = False
        stored = b.store.get(JOB, "default", "orphan")
        assert Claims(b, JOB).owner(stored) is Owner.DEAD
        assert Claims(b, JOB).wait_for_owner(stored) is None
        adopted = Claims(b, JOB).adopt(stored)
        assert adopted is not None and adopted.status["controlPlane"] == b.id
        assert Claims(b, JOB).owner(adopted) is Owner.ME
        assert Claims(b, JOB).adopt(adopted) is adopted
    finally:
        b.stop()
        if a_running:
            a.stop()
