"""The controller's admin client of a service's front: its polls reuse one kept-alive
connection (an idle service's poll once made a new client, with its SSL context, every
second). A real front process, no control plane."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import wait_for
from ketch.serving._router_units import FrontClient

pytestmark = pytest.mark.slow


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[psutil.Process, str]]:
    admin = str(tmp_path / "admin.sock")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ketch.serving._front", "--service",
                             "default/idle", "--port", str(port), "--admin", admin],
                            stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: Path(admin).exists(), timeout=60, message="front listening")
        yield psutil.Process(proc.pid), admin
    finally:
        proc.terminate()
        proc.wait(30)


def _admin_fds(proc: psutil.Process, admin: str) -> set[int]:
    """The front's unix sockets: the admin listener, the event loop's own pair, and the
    admin connections it accepted (which Linux lists without a path)."""
    return {c.fd for c in proc.net_connections(kind="unix") if c.laddr in (admin, "")}


def test_polls_reuse_one_connection(front: tuple[psutil.Process, str]) -> None:
    proc, admin = front
    listening = _admin_fds(proc, admin)
    client = FrontClient(admin)
    try:
        assert client.stats(60) is not None
        # The connection stays open between polls...
        open_after_first = wait_for(lambda: _admin_fds(proc, admin) - listening,
                                    timeout=10, message="a kept-alive admin connection")
        for _ in range(30):
            assert client.stats(60) is not None
        assert client.configure({"version": "v1", "revisions": []})
        # ...and every later poll and push went over that same one.
        assert _admin_fds(proc, admin) - listening == open_after_first
    finally:
        client.close()
    wait_for(lambda: _admin_fds(proc, admin) == listening, timeout=10,
             message="the connection closed with the client")
