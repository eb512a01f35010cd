"""Every port the platform opens asks for its credentials: with a token, a service's
front (``status.url``) answers 401 without that bearer token, on every path, and keeps
asking after ``ketch stop``; ``ketch stop --all`` stops the services' processes too, and
the next server starts them again."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil
import pytest

from _modelserver import train_iris
from conftest import ServerProcess, start_server, wait_for
from ketch import Client

pytestmark = pytest.mark.slow

TOKEN = "front-test-token-3f9a"
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def _serve(server: ServerProcess, model: Path) -> dict[str, object]:
    with Client(server.url, token=TOKEN) as client:
        client.apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                      "metadata": {"name": "iris"}, "spec": {"predictor": {"model": {
                          "modelFormat": {"name": "sklearn"}, "storageUri": model.as_uri()}}}})
        return dict(client.wait("isvc", "iris", condition="Ready", timeout=120).status)


def _pids(status: dict[str, object]) -> list[int]:
    """The front's and the replicas' processes (children of the executor's wrappers)."""
    wrappers = [status["front"]["handle"]["pid"]] + [  # type: ignore[index]
        rep["handle"]["pid"] for rev in status["revisions"]  # type: ignore[attr-defined]
        for rep in rev["replicas"]]
    return [child.pid for pid in wrappers for child in psutil.Process(pid).children()]


def _stop(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    # Reaped as it exits: `ketch stop` waits for the pid to go, and an unreaped child of
    # this test would linger as a zombie.
    threading.Thread(target=server.proc.wait, daemon=True).start()
    return subprocess.run([sys.executable, "-m", "ketch.cli", "stop", *args], env=server.env,
                          capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)


def _asks_for_the_token(url: str) -> None:
    bearer = {"authorization": f"Bearer {TOKEN}"}
    for method, path in (("GET", "/v2/health/ready"), ("GET", "/metrics"),
                         ("POST", "/v1/models/iris:predict")):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            answer = httpx.request(method, f"{url}{path}", json=ROW, headers=headers,
                                   timeout=30)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "bearer token" in answer.json()["error"]
        answer = httpx.request(method, f"{url}{path}", json=ROW, headers=bearer, timeout=30)
        assert answer.status_code == 200, (method, path, answer.text)


def test_the_front_requires_the_platform_token(tmp_path: Path) -> None:
    model = train_iris(tmp_path / "iris")
    home = tmp_path / "home"
    server = start_server(home, command="up", KETCH_TOKEN=TOKEN)
    pids: list[int] = []
    try:
        status = _serve(server, model)
        url = str(status["url"])
        pids = _pids(status)
        _asks_for_the_token(url)
        # The main server's route passes the caller's check, then the front's.
        via = httpx.post(f"{server.url}/serving/default/iris/v1/models/iris:predict",
                         json=ROW, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert via.status_code == 200, via.text

        # Plain `ketch stop`: the services keep serving, and keep asking.
        stopped = _stop(server)
        assert stopped.returncode == 0, stopped.stderr
        _asks_for_the_token(url)

        # The next server adopts them; `ketch stop --all` stops their processes too.
        server = start_server(home, command="up", KETCH_TOKEN=TOKEN)
        with Client(server.url, token=TOKEN) as client:
            assert client.wait("isvc", "iris", condition="Ready", timeout=60).status[
                "url"] == url
        stopped = _stop(server, "--all")
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped 2 inference service processes" in stopped.stdout, stopped.stdout
        wait_for(lambda: not any(psutil.pid_exists(p) for p in pids), timeout=30,
                 message="front and replica stopped")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/v2/health/ready", timeout=5)

        # The resource stays: the next server starts its processes again.
        server = start_server(home, command="up", KETCH_TOKEN=TOKEN)
        status = _serve(server, model)
        pids = _pids(status)
        _asks_for_the_token(str(status["url"]))
        with Client(server.url, token=TOKEN) as client:
            client.delete("isvc", "iris")
            wait_for(lambda: not client.list("isvc").items, timeout=60,
                     message="service deleted")
    finally:
        for pid in pids:
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
        server.kill(15)
