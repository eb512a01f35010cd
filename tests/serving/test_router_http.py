"""The front's HTTP/1.1 handling, on raw sockets: pipelining, ``Expect: 100-continue``,
chunked bodies, HEAD, malformed requests, a client that leaves mid-request, requests
held until routes arrive, and the admin routes. One real model server on a unix
socket (a backend may choose one: the front's connector takes ``unix:PATH`` as well as
``host:port``) behind one real front process; no control plane (the test pushes the routes
as the controller would)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from _modelserver import train_iris
from conftest import free_port, port_listening, wait_for

pytestmark = pytest.mark.slow

BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
REVISION = "iris-predictor-00001"
ADMIN = "router-http-admin-secret"


@dataclass
class Front:
    port: int
    replica: str

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}/ketch/admin",
                            headers={"authorization": f"Bearer {ADMIN}"})

    def configure(self, backends: list[str], **extra: object) -> None:
        config = {"version": "t", "revisions": [{"name": REVISION, "percent": 100,
                  "backends": [{"id": f"r{i}", "address": f"unix:{b}"}
                               for i, b in enumerate(backends)]}], **extra}
        with self.admin() as admin:
            assert admin.put("/config", content=json.dumps(config)).json() == {
                "version": "t"}






@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    base = tmp_path_factory.mktemp("front")
    model = train_iris(base / "iris")
    replica, port = str(base / "r.sock"), free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "ketch.serving.modelserver", "--name",
                               "iris", "--model-dir", str(model), "--format", "sklearn",
                               "--uds", replica], stdout=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-m", "ketch.serving._front", "--service",
                               "default/iris", "--port", str(port), "--max-body-mb", "1"],
                              stdout=subprocess.DEVNULL, env={
                                  **os.environ, "KETCH_FRONT_ADMIN_SHA256":
                                  hashlib.sha256(ADMIN.encode()).hexdigest()})]
    try:
        wait_for(lambda: Path(replica).exists() and port_listening(port), timeout=60,
                 message="model server and front listening")
        yield Front(port, replica)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def _exchange(port: int, payload: bytes, until: bytes, count: int = 1) -> bytes:
    """Send raw bytes; read until ``until`` was seen ``count`` times after the headers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(until) < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _post(path: bytes = b"/v1/models/iris:predict", body: bytes = BODY,
          extra: bytes = b"") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + extra + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_requests_wait_for_routes_then_are_served(front: Front) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=30) as sock:
        sock.sendall(_post())  # no routes yet: held in the front
        front.configure([front.replica])
        reply = b""
        while b'"predictions"' not in reply:
            reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert f"ketch-revision: {REVISION}".encode() in reply


def test_pipelined_requests_are_answered_in_order(front: Front) -> None:
    front.configure([front.replica])
    v1 = _post()
    v2 = _post(b"/v2/models/iris/infer", b'{"inputs": [{"name": "input-0", "shape": [1, 4], '
               b'"datatype": "FP64", "data": [6.7, 3.0, 5.2, 2.3]}]}')
    reply = _exchange(front.port, v1 + v2 + v1, b"HTTP/1.1 200", count=3)
    first, second, third = reply.split(b"HTTP/1.1 200")[1:]
    assert b'"predictions":[0]' in first.replace(b" ", b"")
    assert b'"outputs"' in second and b"[2]" in second
    assert b'"predictions"' in third


def test_expect_continue_chunked_body_and_head(front: Front) -> None:
    front.configure([front.replica])
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        head = _post(extra=b"expect: 100-continue\r\n")
        sock.sendall(head[:-len(BODY)])
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(BODY)
        reply = b""
        while b'"predictions"' not in reply:
            reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200 ")
    chunked = (b"POST /v1/models/iris:predict HTTP/1.1\r\nhost: x\r\ntransfer-encoding: "
               b"chunked\r\ncontent-type: application/json\r\n\r\n"
               + f"{len(BODY[:10]):x}".encode() + b"\r\n" + BODY[:10] + b"\r\n"
               + f"{len(BODY[10:]):x}".encode() + b"\r\n" + BODY[10:] + b"\r\n0\r\n\r\n")
    assert b'"predictions"' in _exchange(front.port, chunked, b'"predictions"')
    # HEAD then GET on the same connection: the HEAD's response has no body.
    both = (b"HEAD /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n")
    reply = _exchange(front.port, both, b"HTTP/1.1 ", count=2)
    assert reply.count(b"HTTP/1.1 ") == 2


def test_malformed_request_is_a_400_and_the_front_keeps_serving(front: Front) -> None:
    front.configure([front.replica])
    reply = _exchange(front.port, b"NOT HTTP AT ALL\r\n\r\n", b"}")
    assert reply.startswith(b"HTTP/1.1 400 ") and b'"error"' in reply
    big = httpx.post(f"http://127.0.0.1:{front.port}/v1/models/iris:predict",
                     content=b" " * (2 << 20))
    assert big.status_code == 413 and "over 1 MiB" in big.json()["error"]
    # A client that leaves with its request in flight.
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(_post())
    assert httpx.post(f"http://127.0.0.1:{front.port}/v1/models/iris:predict",
                      content=BODY).json() == {"predictions": [0]}


def test_a_replica_that_refuses_is_skipped_and_readmitted_when_ready(front: Front,
                                                                     tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.sock")
    front.configure([missing, front.replica])
    for _ in range(10):
        reply = httpx.post(f"http://127.0.0.1:{front.port}/v1/models/iris:predict",
                           content=BODY)
        assert reply.status_code == 200
    with front.admin() as admin:
        stats = admin.get("/stats", params={"seconds": 2}).json()
        backends = {b["address"]: b for b in stats["revisions"][REVISION]["backends"]}
        assert backends[f"unix:{missing}"]["down"] is True
        assert backends[f"unix:{front.replica}"]["served"] >= 10
        assert admin.get("/nope").status_code == 404
        assert admin.put("/config", content=b"[1]").status_code == 400


def test_no_replica_and_a_full_queue_answer_503(front: Front, tmp_path: Path) -> None:
    never = str(tmp_path / "never.sock")
    front.configure([never], queueLimit=5, timeout=1)
    reply = httpx.post(f"http://127.0.0.1:{front.port}/v1/models/iris:predict", content=BODY,
                       timeout=10)
    assert reply.status_code == 503 and "became ready in 1s" in reply.json()["error"]
    # The same replica, still out of rotation, and no room to wait: refused at once.
    front.configure([never], queueLimit=0, timeout=1)
    reply = httpx.post(f"http://127.0.0.1:{front.port}/v1/models/iris:predict", content=BODY,
                       timeout=10)
    assert reply.status_code == 503 and "queue limit 0" in reply.json()["error"]
