"""The local executor's shortcut between a service's front and its replicas: both are
server units published at ``127.0.0.1:PORT`` (what controllers pass around), and the
backend also gives each a unix socket named by its port (``KETCH_UNIT_UDS``), which the
model server listens on besides the port and the front uses for a replica's loopback
address, falling back to the port where there is no live socket. A real LocalExecutor
running the real front and model server units; the controller's unit builders and
admin client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from _modelserver import train_iris
from conftest import wait_for
from ketch.core.artifacts import ArtifactStore
from ketch.core.executors import Handle, ResourceRequest
from ketch.core.executors.local import LocalExecutor
from ketch.serving._router_units import FrontClient, front_unit, replica_ready, replica_unit

pytestmark = pytest.mark.slow

SECRET = "local-socket-admin-secret"
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture
def ex(tmp_path: Path) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(tmp_path / "runs", ArtifactStore(str(tmp_path / "artifacts")),
                             cpus=4, memory=8 << 30, gpus=[], kill_grace_seconds=5.0)
    yield executor
    executor.close()


def _process(handle: Handle, module: str) -> psutil.Process:
    """The unit's own process (the handle names its shell wrapper)."""
    wrapper = psutil.Process(handle["pid"])
    return next(p for p in wrapper.children(recursive=True) if module in " ".join(p.cmdline()))


def _config(address: str, backend: str) -> dict[str, Any]:
    return {"version": backend, "revisions": [{"name": "iris-predictor-00001", "percent": 100,
                                               "backends": [{"id": backend,
                                                             "address": address}]}]}


def _serve_through(front: str, address: str, backend: str = "r") -> None:
    client = FrontClient(front, SECRET)
    try:
        assert wait_for(lambda: client.configure(_config(address, backend)),
                        message="front configured")
    finally:
        client.close()
    reply = httpx.post(f"http://{front}/v1/models/iris:predict", json=ROW, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": [0]}


def test_the_front_reaches_a_local_replica_over_its_socket_else_over_its_port(
        ex: LocalExecutor, tmp_path: Path) -> None:
    model = train_iris(tmp_path / "iris")
    replica = ex.submit(replica_unit(unit_id="replica", name="iris", source=model.as_uri(),
                                     fmt="sklearn", args=[], resources=ResourceRequest(),
                                     log_key="logs/replica", token=None,
                                     credential=None))
    front = ex.submit(front_unit(unit_id="front", service="default/iris",
                                 log_key="logs/front", token=None, admin=SECRET))
    try:
        address, front_address = ex.endpoint(replica), ex.endpoint(front)
        assert address is not None and front_address is not None
        host, _, port = address.rpartition(":")
        assert host == "127.0.0.1" and port.isdigit(), "controllers still see host:port"
        assert wait_for(lambda: replica_ready(address), timeout=60, message="replica ready")
        sock = tmp_path / "runs" / ".sockets" / f"{port}.sock"
        assert sock.is_socket(), "the model server listens on its socket besides its port"

        _serve_through(front_address, address)
        # The front's kept-alive connection is on the replica's socket, not its port.
        front_proc = _process(front, "ketch.serving._front")
        assert not [c for c in front_proc.net_connections("tcp")
                    if c.raddr and c.raddr.port == int(port)]
        accepted = [c for c in _process(replica, "ketch.serving.modelserver")
                    .net_connections("unix") if c.laddr == str(sock)]
        assert len(accepted) >= 2, "the listening socket and the front's connection"

        # Without a live socket (a dead server's file in its place) the port serves:
        # a new backend id makes the front open a new connection.
        sock.unlink()
        with socket.socket(socket.AF_UNIX) as dead:
            dead.bind(str(sock))  # bound, never listening: connections are refused
            _serve_through(front_address, address, backend="r2")
        assert [c for c in front_proc.net_connections("tcp")
                if c.raddr and c.raddr.port == int(port)]
    finally:
        for handle in (front, replica):
            ex.cancel(handle, grace_seconds=5.0)
            ex.forget(handle)

