"""One control plane per KETCH_HOME: ``ketch up``, ``ketch server``, a background
server started by a CLI call, and clients of the same home, as real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ServerProcess, ketch_env, start_server, wait_for
from ketch.server.run import HomeLock, ServerInfo

pytestmark = pytest.mark.slow

PY = sys.executable


def ketch(env: dict[str, str], *args: str,
          timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "ketch.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def test_a_second_ketch_up_on_one_home_is_refused_naming_the_first(
        ketch_server: ServerProcess) -> None:
    # Before, it started a second control plane on the same home (port 0: no clash).
    second = ketch(ketch_server.env, "up", "--port", "0", timeout=60)
    assert second.returncode != 0
    message = second.stderr.strip().splitlines()[-1]
    assert f"pid {ketch_server.proc.pid}" in message and ketch_server.url in message, message
    assert "ketch up" in message and "ketch stop" in message
    assert ketch_server.proc.poll() is None
    assert ServerInfo(ketch_server.home).read()["pid"] == ketch_server.proc.pid  # type: ignore[index]


def test_a_cli_calls_background_server_then_ketch_up_leaves_one_control_plane(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = ketch_env(home)
    listed = ketch(env, "get", "jobs")
    assert listed.returncode == 0, listed.stderr
    background = HomeLock(home).holder()
    assert background is not None and background["mode"] == "background"
    up = ketch(env, "up", "--port", "0", timeout=60)
    assert up.returncode != 0
    assert f"pid {background['pid']} (ketch background)" in up.stderr, up.stderr
    # ketch stop finds the one control plane, and the home is free after it.
    stopped = ketch(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert HomeLock(home).holder() is None
    server = start_server(home, command="up")
    try:
        assert HomeLock(home).holder() == {"pid": server.proc.pid, "mode": "up"}
    finally:
        server.kill()
    # A control plane killed with SIGKILL leaves no lock: the kernel drops it.
    assert HomeLock(home).holder() is None


def test_a_client_waits_for_the_control_plane_holding_the_home(
        server_factory: object, tmp_path: Path) -> None:
    """While a control plane holds the home but has not written server.json (ketch up
    starting or restarting), a client waits for it instead of starting another."""
    serving = server_factory(tmp_path / "a")  # type: ignore[operator]
    home = tmp_path / "b"
    lock = HomeLock(home)
    lock.acquire("up")  # this test process plays the starting control plane
    try:
        client = subprocess.Popen([PY, "-m", "ketch.cli", "get", "jobs"], env=ketch_env(home),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL)
        try:
            assert client.stderr is not None
            line = client.stderr.readline()
            assert f"waiting for the control plane (pid {os.getpid()})" in line, line
            # The holder becomes ready: its server.json appears (here: a real server's).
            shutil.copy(ServerInfo(serving.home).path, ServerInfo(home).path)
            _, err = client.communicate(timeout=60)
        finally:
            if client.poll() is None:
                client.kill()
        assert client.returncode == 0, err
        assert not (home / "server.log").exists(), "a client started a second server"
    finally:
        lock.release()
    wait_for(lambda: lock.holder() is None, timeout=5, message="lock released")
