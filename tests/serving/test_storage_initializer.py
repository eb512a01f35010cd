"""The model is fetched inside the replica unit (KServe's storage initializer is an
init container of the pod), never in reconcile: two services whose storageUri is an
HTTP server that stalls mid-download do not delay a third service becoming Ready (the
controller has two workers; a download in reconcile would hold both), the stalled
downloads are the replicas' own connections, and once the bytes flow the stalled
services load the model and serve, with the storage-initializer lines in their log."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
from _router_support import ROW, isvc

from _modelserver import train_iris
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = pytest.mark.slow


class _Stall(ThreadingHTTPServer):
    """Serves one model file; a GET sends the headers and half the body, then waits
    until ``release`` is set. ``peers`` are the client ports of the stalled GETs."""

    daemon_threads = True

    def __init__(self, payload: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.payload = payload
        self.release = threading.Event()
        self.peers: list[int] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Stall

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet test output

    def _head(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(self.server.payload)))
        self.end_headers()

    def do_HEAD(self) -> None:
        self._head()

    def do_GET(self) -> None:
        payload = self.server.payload
        self._head()
        self.wfile.write(payload[:len(payload) // 2])
        self.wfile.flush()
        with self.server.lock:
            self.server.peers.append(self.client_address[1])
        # Bounded, so a failing test leaves no thread behind for long.
        self.server.release.wait(timeout=300)
        # fsspec may have given up on this one (it opens more than one GET per file).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload[len(payload) // 2:])


@pytest.fixture
def stall(tmp_path: Path) -> Iterator[_Stall]:
    model = train_iris(tmp_path / "iris") / "model.joblib"
    server = _Stall(model.read_bytes())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def _owner(port: int) -> str:
    """The command line of the process whose TCP connection has local port ``port``."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.pid:
            return " ".join(psutil.Process(conn.pid).cmdline())
    return ""


def _ready(client: Client, name: str) -> bool:
    conditions = client.get("isvc", name).status.get("conditions") or []
    return bool(conditions) and conditions[0]["type"] == "Ready" and \
        conditions[0]["status"] == "True"


def test_a_stalled_download_does_not_delay_another_service(
        server_factory: object, tmp_path: Path, stall: _Stall) -> None:
    cache = tmp_path / "model-cache"
    server: ServerProcess = server_factory(  # type: ignore[operator]
        tmp_path / "home", command="up", KETCH_MODEL_CACHE=str(cache))
    url = f"http://127.0.0.1:{stall.server_address[1]}/models/iris/model.joblib"
    fast_model = train_iris(tmp_path / "fast")
    with Client(server.url) as client:
        try:
            for name in ("slow-a", "slow-b"):
                client.apply(isvc(name, url))
            # Both downloads are under way (the replicas' storage initializers) ...
            wait_for(lambda: len(stall.peers) >= 2, timeout=120,
                     message="both stalled downloads started")
            client.apply(isvc("fast", fast_model.as_uri()))
            # ... and still the third service becomes Ready.
            wait_for(lambda: _ready(client, "fast"), timeout=120,
                     message="fast ready while the others download")
            fast_url = client.get("isvc", "fast").status["url"]
            assert httpx.post(f"{fast_url}/v1/models/fast:predict", json=ROW,
                              timeout=30).status_code == 200
            for name in ("slow-a", "slow-b"):
                obj = client.get("isvc", name)
                ready = obj.status["conditions"][0]
                assert ready["status"] == "False" and ready["reason"] == "Loading", ready
            # The stalled connections still open belong to model server processes of
            # both services, not to the API server.
            owners = [o for o in (_owner(port) for port in stall.peers) if o]
            assert owners and all("ketch.serving.modelserver" in o for o in owners), owners
            assert {o.split("--name ")[1].split()[0] for o in owners} == {"slow-a", "slow-b"}
            assert all("--storage-uri" in o and url in o for o in owners), owners

            # The bytes arrive: the stalled services load the model and serve.
            stall.release.set()
            for name in ("slow-a", "slow-b"):
                wait_for(lambda name=name: _ready(client, name), timeout=120,  # type: ignore[misc]
                         message=f"{name} ready after the download")
                answer = httpx.post(f"{client.get('isvc', name).status['url']}"
                                    f"/v1/models/{name}:predict", json=ROW, timeout=30)
                assert answer.status_code == 200, answer.text
            logs = subprocess.run([sys.executable, "-m", "ketch.cli", "logs", "isvc",
                                   "slow-a"], env=server.env, capture_output=True,
                                  text=True, timeout=60, check=True).stdout
            assert f"storage-initializer: resolving storageUri {url}" in logs, logs
            assert f"storage-initializer: model files at {cache}" in logs, logs
            assert "modelserver: model 'slow-a' loaded in" in logs, logs
        finally:
            stall.release.set()
            for obj in client.list("isvc").items:
                client.delete("isvc", obj.name)
            wait_for(lambda: not client.list("isvc").items, timeout=60,
                     message="inference services deleted")
