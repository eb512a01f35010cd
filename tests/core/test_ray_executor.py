"""What the ray executor does beyond the conformance suite, on the session's real cluster:
gangs placed by Ray's strategies, GPU ids from Ray's assignment, warm units that leave
nothing behind in the worker that ran them, and placement on custom resources.

GPUs here are Ray's logical GPUs (``ray start --num-gpus=2`` on a node without any):
Ray assigns their ids exactly as on real ones, which is all the executor reads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _ray import RayCluster, kill_agents
from conftest import wait_unit_done
from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import InsufficientResourcesError
from ketch.core.executors import PythonEntry, ResourceRequest, UnitState, WorkUnit
from ketch.core.executors.ray import RayExecutor

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(300)]

UNITS = """\
import os, sys


def leaves(arg):
    os.environ["KETCH_TEST_LEFT_BEHIND"] = "yes"
    import ketch_test_imported_once  # noqa: F401
    print("set")


def looks(arg):
    print("env", os.environ.get("KETCH_TEST_LEFT_BEHIND", "clean"))
    print("module", "ketch_test_imported_once" in sys.modules)
    print("given", os.environ.get("GIVEN"))
"""


@pytest.fixture
def ex(ray_cluster: RayCluster, tmp_path: Path) -> Iterator[RayExecutor]:
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    executor = RayExecutor(artifacts, address=ray_cluster.address)
    yield executor
    executor.close()
    kill_agents(artifacts.root_uri)


def _unit(unit_id: str, code: str, **kwargs: object) -> WorkUnit:
    return WorkUnit(unit_id=unit_id, command=[sys.executable, "-c", code],
                    **kwargs)  # type: ignore[arg-type]


def _log(ex: RayExecutor, handle: dict[str, object]) -> str:
    return b"".join(ex.logs(handle)).decode()


def test_a_strict_spread_gang_puts_each_member_on_its_own_node(ex: RayExecutor) -> None:
    members = [_unit(f"spread-{i}", "print('member')",
                     resources=ResourceRequest(cpu=1, custom={"worker": 1}))
               for i in range(2)]
    handles = ex.submit_gang(members, placement="STRICT_SPREAD")
    assert len({ex.node(h) for h in handles}) == 2, "one worker node each"
    for handle in handles:
        assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
        ex.finalize(handle)
    # Three members cannot each have a worker node of their own: none starts.
    with pytest.raises(InsufficientResourcesError, match="STRICT_SPREAD"):
        ex.submit_gang([_unit(f"three-{i}", "pass",
                              resources=ResourceRequest(cpu=1, custom={"worker": 1}))
                        for i in range(3)], placement="STRICT_SPREAD")
    assert all(ex.lookup(f"three-{i}") is None for i in range(3))


def test_gpu_units_see_the_ids_ray_gave_them_and_others_see_none(
        ray_cluster: RayCluster, ex: RayExecutor) -> None:
    # Two of Ray's logical GPUs on a node of their own.
    if "gpu2" not in ray_cluster.nodes:
        ray_cluster.add_node("gpu2", cpus=2, gpus=2, resources={"two-gpus": 10})
    code = "import os; print(repr(os.environ.get('CUDA_VISIBLE_DEVICES')))"
    both = [ex.submit(_unit(f"gpu-{i}", code, resources=ResourceRequest(
        cpu=0.5, gpu=1, custom={"two-gpus": 1}))) for i in range(2)]
    none = ex.submit(_unit("no-gpu", code, resources=ResourceRequest(
        cpu=0.5, custom={"two-gpus": 1})))
    seen = []
    for handle in [*both, none]:
        assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
        seen.append(_log(ex, handle).strip())
        ex.finalize(handle)
    assert sorted(seen[:2]) == ["'0'", "'1'"], "each its own GPU, as Ray assigned them"
    assert seen[2] == "''", "a unit that asked for none on a GPU node sees none"


def test_warm_units_leave_neither_env_nor_modules_in_the_worker(ex: RayExecutor,
                                                                tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "warm_units.py").write_text(UNITS)
    (modules / "ketch_test_imported_once.py").write_text("")
    # Pinned to one node with one CPU's worth of it, so both run in the same worker
    # (Ray reuses an idle worker), the case where leftovers could leak.
    env = {"PYTHONPATH": str(modules)}
    pin = ResourceRequest(cpu=1, custom={"worker-a": 1})
    first = ex.submit(WorkUnit(unit_id="warm-1", env=env, resources=pin,
                               python=PythonEntry("warm_units", "leaves")))
    assert "task" in first, "a plain Python unit takes the warm path"
    assert wait_unit_done(ex, first).state is UnitState.SUCCEEDED
    second = ex.submit(WorkUnit(unit_id="warm-2", env={**env, "GIVEN": "mine"},
                                resources=pin, python=PythonEntry("warm_units", "looks")))
    assert wait_unit_done(ex, second).state is UnitState.SUCCEEDED
    assert _log(ex, second).splitlines() == ["env clean", "module False", "given mine"]
    assert ex.node(second) == ex.node(first)
    for handle in (first, second):
        ex.finalize(handle)
        ex.forget(handle)
        assert ex.lookup(handle["unitId"]) is None


def test_a_warm_unit_gives_back_env_directory_path_and_modules(tmp_path: Path) -> None:
    """The mechanism itself, deterministically (Ray does not promise which worker runs
    the next task): what the task body does around the call, in this process."""
    from ketch.core.executors._ray_task import _as_unit

    (tmp_path / "ketch_test_given_back.py").write_text("VALUE = 1\n")
    before = (dict(os.environ), os.getcwd(), list(sys.path))
    with _as_unit({"PYTHONPATH": str(tmp_path), "GIVEN": "x"}, str(tmp_path)):
        import ketch_test_given_back  # noqa: F401

        os.environ["SET_BY_THE_UNIT"] = "1"
        assert os.getcwd() == str(tmp_path) and os.environ["GIVEN"] == "x"
    assert "ketch_test_given_back" not in sys.modules
    assert (dict(os.environ), os.getcwd(), list(sys.path)) == before


def test_units_land_on_the_node_their_custom_resource_names(ray_cluster: RayCluster,
                                                            ex: RayExecutor) -> None:
    for name in ("a", "b"):
        handle = ex.submit(_unit(f"on-{name}", "print(1)", resources=ResourceRequest(
            cpu=1, custom={f"worker-{name}": 1})))
        assert ex.node(handle) == ray_cluster.node_ids[name]
        assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
        ex.finalize(handle)
