"""A real multi-node Ray cluster on this machine, for the ray executor's tests.

``ray start --head`` plus two worker nodes, each with a temporary directory of its
own and custom resources that tell them apart (``worker-a`` / ``worker-b``, and
``worker`` on both), as Ray's own multi-node tests run their nodes on one host.
Node ``a`` is labelled ``ketch-test-pool=a``: the conformance suite's executor takes
only that node, so its slot arithmetic is one node's, while the multi-node tests use
every node. More worker nodes can be added (and killed) by a test.

Started once per session, when a test first asks for it; torn down by killing the
processes of these nodes only (``ray stop`` would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

RAY = str(Path(sys.executable).with_name("ray"))
GIB = 1 << 30
# Node death is noticed after 8 missed health checks a second apart (Ray's default is
# 5 x 3 s): a lost-node test waits seconds, not half a minute, while a node starved of
# CPU for a few seconds on a loaded 2-core machine is not declared dead by mistake.
SYSTEM_CONFIG = {"health_check_initial_delay_ms": 1000, "health_check_period_ms": 1000,
                 "health_check_failure_threshold": 8}


@dataclass
class RayCluster:
    address: str
    root: Path
    nodes: dict[str, Path] = field(default_factory=dict)  # name -> temp dir
    node_ids: dict[str, str] = field(default_factory=dict)  # name -> Ray node id

    def add_node(self, name: str, *, cpus: int = 4, resources: dict[str, float] | None = None,
                 labels: dict[str, str] | None = None, memory: int = 4 * GIB,
                 gpus: int = 0) -> str:
        """Start a worker node; its node id."""
        temp = self.root / name
        temp.mkdir(parents=True, exist_ok=True)
        before = set(_node_ids())
        cmd = [RAY, "start", f"--address={self.address}", f"--num-cpus={cpus}",
               f"--memory={memory}", "--object-store-memory=100000000",
               f"--temp-dir={temp}", "--disable-usage-stats", f"--num-gpus={gpus}"]
        if resources:
            cmd.append(f"--resources={json.dumps(resources)}")
        if labels:
            cmd.append("--labels=" + ",".join(f"{k}={v}" for k, v in labels.items()))
        _run(cmd)
        self.nodes[name] = temp
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = set(_node_ids()) - before
            if new:
                self.node_ids[name] = new.pop()
                return self.node_ids[name]
            time.sleep(0.1)
        raise AssertionError(f"node {name} did not join the cluster")

    def kill_node(self, name: str) -> None:
        """SIGKILL every process of node ``name`` (its raylet and the workers under
        it), as a machine that loses power."""
        temp = str(self.nodes.pop(name))
        for process in _processes_under(temp):
            with contextlib.suppress(psutil.Error):
                process.kill()


def _node_ids() -> list[str]:
    import ray

    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


def _processes_under(marker: str) -> list[psutil.Process]:
    """Processes whose command line names ``marker`` (a node's temp dir), with their
    children (Ray's workers name their session directory, under it)."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in process.info["cmdline"] or ()):
                found[process.pid] = process
                for child in process.children(recursive=True):
                    found[child.pid] = child
        except psutil.Error:
            continue
    return list(found.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    # Short paths: Ray's unix sockets live under the temp dir (AF_UNIX: 107 bytes).
    root = Path(tempfile.mkdtemp(prefix="kr-", dir="/tmp"))
    port = _free_port()
    head = root / "head"
    head.mkdir()
    _run([RAY, "start", "--head", f"--port={port}", "--num-cpus=1",
          "--object-store-memory=100000000", f"--temp-dir={head}",
          "--include-dashboard=false", "--disable-usage-stats",
          f"--system-config={json.dumps(SYSTEM_CONFIG)}"])
    address = f"127.0.0.1:{port}"
    import ray

    ray.init(address=address, namespace="ketch", log_to_driver=False,
             configure_logging=False)
    cluster = RayCluster(address, root, {"head": head})
    try:
        cluster.add_node("a", resources={"worker": 100, "worker-a": 100},
                         labels={"ketch-test-pool": "a"})
        cluster.add_node("b", resources={"worker": 100, "worker-b": 100})
        yield cluster
    finally:
        ray.shutdown()
        for process in _processes_under(str(root)):
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def kill_agents(artifacts_uri: str) -> None:
    """Stop the node agents serving ``artifacts_uri`` (one test's store), so agents do
    not pile up over a session; what they ran is cancelled first by the test."""
    import ray

    from ketch.core.executors._ray_agent import agent_name

    for node in ray.nodes():
        name = agent_name(node["NodeID"], artifacts_uri)
        try:
            ray.kill(ray.get_actor(name, namespace="ketch"), no_restart=True)
        except ValueError:
            continue
