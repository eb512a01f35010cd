"""ketch's components unchanged on the ray executor, on a real multi-node Ray cluster.

A ``ketch server`` with ``KETCH_EXECUTOR=ray`` joins the session's cluster
(tests/_ray.py: a head and two worker nodes with custom resources ``worker-a`` /
``worker-b`` and ``worker`` on both): a pipeline's ParallelFor spreads over both
workers, an InferenceService's replicas serve from worker nodes with the front
routing to them over TCP, a Job survives the loss of a node it does not run on and
is retried after the loss of its own, and a control plane killed with -9 and
started again adopts the unit it left running. Bad configuration fails at start
with the reason.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from _modelserver import trained_iris
from _ray import RayCluster, kill_agents
from conftest import ServerProcess, start_server, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def ray_env(cluster: RayCluster, **extra: str) -> dict[str, str]:
    return {"KETCH_EXECUTOR": "ray", "KETCH_RAY_ADDRESS": cluster.address, **extra}


@pytest.fixture
def ray_server(ray_cluster: RayCluster, tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_server(tmp_path / "home", timeout=90, **ray_env(ray_cluster))
    yield server
    server.kill(signal.SIGTERM)
    kill_agents(str(tmp_path / "home" / "artifacts"))  # this home's, so none pile up


def reserved_by_ketch() -> list[str]:
    """Placement groups of ketch units that still hold resources on the cluster."""
    from ray.util.placement_group import placement_group_table

    return [pg["name"] for pg in placement_group_table().values()
            if pg["name"].startswith("ketch-") and pg["state"] != "REMOVED"]


def ketch(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=240, check=False)


def nodes_in(value: Any) -> list[str]:
    """Every ``node`` a status records, anywhere in it."""
    if isinstance(value, dict):
        found = [str(value["node"])] if isinstance(value.get("node"), str) else []
        return found + [n for v in value.values() for n in nodes_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in nodes_in(v)]
    return []


SPREAD = textwrap.dedent('''
    from ketch import dsl

    @dsl.component
    def square(i: int) -> int:
        return i * i

    @dsl.pipeline(name="spread")
    def spread():
        with dsl.ParallelFor(items=list(range(20))) as i:
            square(i=i).set_accelerator_type("worker").set_accelerator_limit(1)
''')


def test_a_parallel_for_pinned_by_a_custom_resource_spreads_over_both_workers(
        ray_cluster: RayCluster, ray_server: ServerProcess, tmp_path: Path) -> None:
    pipeline = tmp_path / "spread.py"
    pipeline.write_text(SPREAD)
    done = ketch(ray_server, "run", str(pipeline), "--wait", "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"]["phase"] == "Succeeded"
    nodes = nodes_in(run["status"]["tasks"])
    assert len(nodes) == 20, "every iteration records the node it ran on"
    workers = {ray_cluster.node_ids["a"], ray_cluster.node_ids["b"]}
    assert set(nodes) == workers, "pinned by `worker`: both worker nodes, never the head"


def replica_nodes(status: dict[str, Any]) -> list[str]:
    """The node of each model server replica (not the front's: it asks for nothing and
    may run on any node)."""
    return [str(rep["node"]) for rev in status.get("revisions") or []
            for rep in rev.get("replicas") or [] if rep.get("node")]


def _isvc(name: str, uri: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / "serving" / "iris.yaml").read_text())
    doc["metadata"]["name"] = name
    predictor = doc["spec"]["predictor"]
    predictor["minReplicas"] = 2
    predictor["model"]["storageUri"] = uri
    # An extended resource only worker node b has: both replicas land there.
    predictor["model"]["resources"] = {"requests": {"worker-b": "1"}}
    return doc  # type: ignore[no-any-return]


def test_an_inference_service_serves_from_a_worker_node_through_the_front(
        ray_cluster: RayCluster, ray_server: ServerProcess, tmp_path: Path) -> None:
    import httpx

    model = trained_iris(tmp_path / "iris")
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
    with Client(ray_server.url) as client:
        client.apply(_isvc("iris", (tmp_path / "iris").as_uri()))
        try:
            ready = client.wait("isvc", "iris", condition="Ready", timeout=180)

            def two_replicas() -> list[str]:
                found = replica_nodes(client.get("isvc", "iris").status)
                return found if len(found) >= 2 else []

            nodes = wait_for(two_replicas, timeout=120, message="two replicas running")
            assert set(nodes) == {ray_cluster.node_ids["b"]}, _placement_report(
                ray_cluster, client.get("isvc", "iris").status)
            base = f"{ray_server.url}/serving/default/iris"
            for _ in range(4):  # the front spreads them over both replicas
                v1 = httpx.post(f"{base}/v1/models/iris:predict",
                                json={"instances": rows.tolist()}, timeout=30)
                assert v1.status_code == 200, v1.text
                assert v1.json() == {"predictions": model.predict(rows).tolist()}
            assert ready.status["url"].startswith("http://")
        finally:
            client.delete("isvc", "iris")
        wait_for(lambda: not reserved_by_ketch(), timeout=60,
                 message="the deleted service's replicas to give their reservations back")


GATED = "import os, time\nwhile not os.path.exists({gate!r}): time.sleep(0.05)\nprint('done')\n"


def _job(name: str, gate: Path, resource: str, backoff: int = 0) -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"command": [sys.executable, "-c", GATED.format(gate=str(gate))],
                     "resources": {"cpu": 1, "custom": {resource: 1}},
                     "backoffLimit": backoff}}


def test_a_job_survives_another_nodes_loss_and_is_retried_after_its_own(
        ray_cluster: RayCluster, ray_server: ServerProcess, tmp_path: Path) -> None:
    first = ray_cluster.add_node("loss-1", cpus=2, resources={"loss": 1})
    bystander = ray_cluster.add_node("loss-2", cpus=2, resources={"bystander": 1})
    gate = tmp_path / "gate"
    with Client(ray_server.url) as client:
        client.apply(_job("survivor", gate, "loss", backoff=1))
        running = wait_for(lambda: (j := client.get("job", "survivor")).status.get(
            "phase") == "Running" and j, timeout=60, message="the job to run")
        assert running.status["node"] == first  # type: ignore[attr-defined]

        ray_cluster.kill_node("loss-2")  # a node the Job does not run on
        wait_for(lambda: bystander not in _alive_nodes(), timeout=60,
                 message="Ray to notice the bystander node is gone")
        job = client.get("job", "survivor")
        assert job.status["phase"] == "Running" and job.status["attempts"] == 1

        ray_cluster.kill_node("loss-1")  # its own node: the attempt is lost
        second = ray_cluster.add_node("loss-3", cpus=2, resources={"loss": 1})
        retried = wait_for(lambda: (j := client.get("job", "survivor")).status.get(
            "attempts") == 2 and j.status.get("phase") == "Running" and j, timeout=90,
            message="the second attempt to run")
        assert retried.status["node"] == second  # type: ignore[attr-defined]
        gate.touch()
        ended = client.wait("job", "survivor", condition="Succeeded", timeout=60)
        assert ended.status["attempts"] == 2 and ended.status["exitCode"] == 0


def _placement_report(cluster: RayCluster, status: Any) -> str:
    """Where the replicas are, by node name, with ketch's reservations and every
    node's resources: what a wrong placement needs to be understood."""
    import ray
    from ray.util.placement_group import placement_group_table

    names = {v: k for k, v in cluster.node_ids.items()}
    lines = [f"replica nodes: {[names.get(n, n) for n in replica_nodes(status)]}",
             f"status: {json.dumps(status, default=str)}"]
    for pg in placement_group_table().values():
        if pg["name"].startswith("ketch-"):
            where = {i: names.get(n, n) for i, n in pg["bundles_to_node_id"].items()}
            lines.append(f"{pg['name']} {pg['state']} {pg['bundles']} on {where}")
    for n in ray.nodes():
        if n.get("Alive"):
            lines.append(f"{names.get(n['NodeID'], n['NodeID'])}: {n['Resources']}")
    return "\n".join(lines)


def _alive_nodes() -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}


def test_a_control_plane_killed_with_9_is_adopted_by_the_next(
        ray_cluster: RayCluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    home = tmp_path / "home"
    server = start_server(home, timeout=90, **ray_env(ray_cluster))
    try:
        with Client(server.url) as client:
            client.apply(_job("adopted", gate, "worker"))
            wait_for(lambda: client.get("job", "adopted").status.get("phase") == "Running",
                     timeout=60, message="the job to run")
        server.kill(signal.SIGKILL)
        server = start_server(home, timeout=90, **ray_env(ray_cluster))
        gate.touch()
        with Client(server.url) as client:
            ended = client.wait("job", "adopted", condition="Succeeded", timeout=90)
            assert ended.status["attempts"] == 1, "adopted, not started again"
        logs = ketch(server, "logs", "job", "adopted")
        assert logs.stdout == "done\n"
    finally:
        server.kill(signal.SIGTERM)
        kill_agents(str(home / "artifacts"))


def test_a_request_no_node_can_meet_is_unschedulable_naming_the_nodes(
        ray_server: ServerProcess, tmp_path: Path) -> None:
    with Client(ray_server.url) as client:
        client.apply(_job("too-big", tmp_path / "never", "no-such-resource"))
        job = wait_for(lambda: (j := client.get("job", "too-big")).status.get(
            "conditions") and j, timeout=60, message="the job to be scheduled or not")
        scheduled = next(c for c in job.status["conditions"]  # type: ignore[attr-defined]
                         if c["type"] == "Scheduled")
        assert scheduled["reason"] == "Unschedulable"
        assert "no node of the Ray cluster has" in scheduled["message"]
        assert "no-such-resource 1" in scheduled["message"]
        assert "worker-a 100" in scheduled["message"], "the cluster's nodes are named"


def test_an_unreachable_ray_address_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=re.escape("KETCH_RAY_ADDRESS='127.0.0.1:9'")):
        start_server(tmp_path / "home", timeout=120, KETCH_EXECUTOR="ray",
                     KETCH_RAY_ADDRESS="127.0.0.1:9")


def test_a_store_the_nodes_cannot_reach_is_refused_at_start(ray_cluster: RayCluster,
                                                             tmp_path: Path) -> None:
    # memory:// is this process's memory: no node's agent can read what it writes.
    with pytest.raises(RuntimeError, match="not reachable from Ray node"):
        start_server(tmp_path / "home", timeout=120,
                     **ray_env(ray_cluster, KETCH_ARTIFACTS_URI="memory://ketch-artifacts"))
