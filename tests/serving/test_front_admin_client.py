"""The controller's admin client of a service's front, over the front's published TCP
address: its polls reuse one kept-alive connection (an idle service's poll once made a
new client, with its SSL context, every second), and the admin routes refuse every
request without the front's own admin credential (the platform token included). A
real front process, no control plane."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest

from conftest import port_listening, wait_for
from ketch.serving._router_units import FrontClient

pytestmark = pytest.mark.slow

SECRET = "admin-secret-for-this-front"
TOKEN = "platform-token-4e1b"


@dataclass
class Front:
    proc: psutil.Process
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"




@pytest.fixture
def front() -> Iterator[Front]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Where the local executor would put them: the address it chose, the credentials'
    # digests in the environment (never argv).
    env = {**os.environ, "KETCH_UNIT_HOST": "127.0.0.1", "KETCH_UNIT_PORT": str(port),
           "KETCH_FRONT_ADMIN_SHA256": hashlib.sha256(SECRET.encode()).hexdigest(),
           "KETCH_FRONT_TOKEN_SHA256": hashlib.sha256(TOKEN.encode()).hexdigest()}
    proc = subprocess.Popen([sys.executable, "-m", "ketch.serving._front", "--service",
                             "default/idle"], stdout=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: port_listening(port), timeout=60, message="front listening")
        yield Front(psutil.Process(proc.pid), port)
    finally:
        proc.terminate()
        proc.wait(30)


def _accepted(front: Front) -> set[tuple[str, int]]:
    """The client ends of the connections the front holds open on its port."""
    return {tuple(c.raddr) for c in front.proc.net_connections(kind="tcp")  # type: ignore[misc]
            if c.laddr and c.laddr.port == front.port and c.raddr
            and c.status == psutil.CONN_ESTABLISHED}


def test_polls_reuse_one_connection(front: Front) -> None:
    client = FrontClient(front.address, SECRET)
    try:
        assert client.stats(60) is not None
        # The connection stays open between polls...
        first = wait_for(lambda: _accepted(front), timeout=10,
                         message="a kept-alive admin connection")
        for _ in range(30):
            assert client.stats(60) is not None
        assert client.configure({"version": "v1", "revisions": []})
        # ...and every later poll and push went over that same one.
        assert _accepted(front) == first
    finally:
        client.close()
    wait_for(lambda: not _accepted(front), timeout=10,
             message="the connection closed with the client")


def test_the_admin_routes_refuse_without_the_admin_credential(front: Front) -> None:
    url = f"http://{front.address}/ketch/admin"
    config = '{"version": "evil", "revisions": []}'
    for headers in ({}, {"authorization": f"Bearer {TOKEN}"},  # the platform's is not it
                    {"authorization": "Bearer wrong"}, {"authorization": SECRET}):
        for method, path, body in (("GET", "/stats", None), ("PUT", "/config", config)):
            answer = httpx.request(method, url + path, headers=headers, content=body,
                                   timeout=10)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert "admin API" in answer.json()["error"]
    # Nothing was configured by those, and a client with a wrong secret gets nothing.
    wrong = FrontClient(front.address, "not-the-secret")
    try:
        assert wrong.stats(5) is None
        assert not wrong.configure({"version": "evil", "revisions": []})
    finally:
        wrong.close()
    right = FrontClient(front.address, SECRET)
    try:
        assert (right.stats(5) or {}).get("version") != "evil"
        assert right.configure({"version": "v2", "revisions": []})
        assert (right.stats(5) or {})["version"] == "v2"
    finally:
        right.close()
    # The admin credential opens only the admin routes: the data plane still wants the
    # platform token.
    data = httpx.get(f"http://{front.address}/v2/health/ready",
                     headers={"authorization": f"Bearer {SECRET}"}, timeout=10)
    assert data.status_code == 401
