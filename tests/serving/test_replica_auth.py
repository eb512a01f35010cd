"""With a platform token, a replica's port is no way around it: the model server answers
only that bearer token (what clients send through the front, which relays it) or the
service's replica credential (what the front's probes and scrapes and the controller's
readiness checks send); every other request, on every route, gets 401. Without a token
it checks nothing, as the API itself does on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from _modelserver import start_modelserver, train_iris
from conftest import free_port, port_listening, start_server, wait_for
from ketch import Client
from ketch.serving._router_units import replica_secret

pytestmark = pytest.mark.slow

TOKEN = "replica-test-token-7c41"
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
ROUTES = (("GET", "/v2/health/ready"), ("GET", "/v2/health/live"), ("GET", "/metrics"),
          ("GET", "/v2/models/iris"), ("POST", "/v1/models/iris:predict"))


def _bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def _refuses_all_but(url: str, *accepted: str) -> None:
    for method, path in ROUTES:
        for headers in ({}, _bearer("wrong"), {"authorization": TOKEN},
                        {"authorization": f"Basic {TOKEN}"}):
            answer = httpx.request(method, f"{url}{path}", json=ROW, headers=headers,
                                   timeout=30)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "bearer token" in answer.json()["error"]
        for secret in accepted:
            answer = httpx.request(method, f"{url}{path}", json=ROW, headers=_bearer(secret),
                                   timeout=30)
            assert answer.status_code == 200, (method, path, answer.text)


def test_a_model_server_with_a_token_digest_answers_only_its_bearers(tmp_path: Path) -> None:
    model = train_iris(tmp_path / "iris")
    credential = "the-services-replica-credential"
    env = dict(os.environ,
               KETCH_REPLICA_TOKEN_SHA256=hashlib.sha256(TOKEN.encode()).hexdigest(),
               KETCH_REPLICA_CREDENTIAL_SHA256=hashlib.sha256(credential.encode()).hexdigest())
    server = start_modelserver("--name", "iris", "--model-dir", str(model), "--format",
                               "sklearn", env=env)
    try:
        _refuses_all_but(server.url, TOKEN, credential)
        # One kept-alive connection: a refusal does not close it, nor let the next in.
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/v1/models/iris:predict", json=ROW).status_code == 401
            ok = client.post("/v1/models/iris:predict", json=ROW, headers=_bearer(TOKEN))
            assert ok.status_code == 200 and ok.json()["predictions"] == [0]
            assert client.post("/v1/models/iris:predict", json=ROW).status_code == 401
    finally:
        server.stop()






def test_the_fronts_probe_readmits_a_token_replica_with_the_credential(
        tmp_path: Path) -> None:
    """A replica out of rotation comes back only through the front's readiness probe,
    which a token replica answers only with the credential the controller pushed."""
    model = train_iris(tmp_path / "iris")
    admin, credential = "probe-test-admin", "probe-test-replica-credential"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    port, replica = free_port(), str(tmp_path / "r.sock")
    procs = [subprocess.Popen(
        [sys.executable, "-m", "ketch.serving._front", "--service", "default/iris",
         "--port", str(port)], stdout=subprocess.DEVNULL,
        env=dict(os.environ, KETCH_FRONT_TOKEN_SHA256=digest,
                 KETCH_FRONT_ADMIN_SHA256=hashlib.sha256(admin.encode()).hexdigest()))]
    predict = f"http://127.0.0.1:{port}/v1/models/iris:predict"
    try:
        wait_for(lambda: port_listening(port), timeout=60, message="front listening")
        config = {"version": "t", "timeout": 1, "tokenSha256": digest,
                  "replicaCredential": credential, "revisions": [{
                      "name": "iris-predictor-00001", "percent": 100,
                      "backends": [{"id": "r0", "address": f"unix:{replica}"}]}]}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/ketch/admin",
                          headers=_bearer(admin), timeout=30) as client:
            assert client.put("/config", content=json.dumps(config)).is_success

            def down() -> bool:
                stats = client.get("/stats", params={"seconds": 2}).json()
                return bool(stats["revisions"]["iris-predictor-00001"]["backends"][0][
                    "down"])

            # Not listening yet: refused, out of rotation, the request times out.
            assert httpx.post(predict, json=ROW, headers=_bearer(TOKEN),
                              timeout=30).status_code == 503
            assert down()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "ketch.serving.modelserver", "--name", "iris",
                 "--model-dir", str(model), "--format", "sklearn", "--uds", replica],
                stdout=subprocess.DEVNULL, env=dict(
                    os.environ, KETCH_REPLICA_TOKEN_SHA256=digest,
                    KETCH_REPLICA_CREDENTIAL_SHA256=hashlib.sha256(
                        credential.encode()).hexdigest())))
            wait_for(lambda: not down(), timeout=60, message="probed back into rotation")
        reply = httpx.post(predict, json=ROW, headers=_bearer(TOKEN), timeout=30)
        assert reply.status_code == 200 and reply.json()["predictions"] == [0], reply.text
        assert httpx.post(predict, json=ROW, timeout=30).status_code == 401
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def _replicas(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [rep for rev in status["revisions"] for rep in rev["replicas"]]


def test_replicas_of_a_token_server_refuse_direct_requests_without_it(tmp_path: Path) -> None:
    model = train_iris(tmp_path / "iris")
    server = start_server(tmp_path / "home", command="up", KETCH_TOKEN=TOKEN)
    pids: list[int] = []
    try:
        with Client(server.url, token=TOKEN) as client:
            client.apply({"apiVersion": "serving.kserve.io/v1beta1",
                          "kind": "InferenceService", "metadata": {"name": "iris"},
                          "spec": {"predictor": {"model": {
                              "modelFormat": {"name": "sklearn"},
                              "storageUri": model.as_uri()}}}})
            obj = client.wait("isvc", "iris", condition="Ready", timeout=120)
        status = dict(obj.status)
        replicas = _replicas(status)
        assert replicas and all(rep.get("address") for rep in replicas), status
        pids = [child.pid for rep in replicas
                for child in psutil.Process(rep["handle"]["pid"]).children()]
        url = str(status["url"])
        through = httpx.post(f"{url}/v1/models/iris:predict", json=ROW,
                             headers=_bearer(TOKEN), timeout=30)
        assert through.status_code == 200 and through.json()["predictions"] == [0], \
            through.text

        # The replica credential (derived from the token and the service's uid, the
        # controller's readiness check and the front's probes send it) is let in too.
        credential = replica_secret(TOKEN, str(obj.metadata.uid))
        assert credential is not None
        for rep in replicas:
            _refuses_all_but(f"http://{rep['address']}", TOKEN, credential)

        # The front's metrics page still holds its replicas' own (scraped with the
        # credential): the replica's request counter, labelled with the replica.
        page = httpx.get(f"{url}/metrics", headers=_bearer(TOKEN), timeout=30)
        assert page.status_code == 200, page.text
        wait_for(lambda: f'replica="{replicas[0]["unitId"]}"' in httpx.get(
            f"{url}/metrics", headers=_bearer(TOKEN), timeout=30).text, timeout=30,
            message="the replica's metrics in the front's page")

        with Client(server.url, token=TOKEN) as client:
            client.delete("isvc", "iris")
            wait_for(lambda: not client.list("isvc").items, timeout=60,
                     message="service deleted")
    finally:
        for pid in pids:
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
        server.kill(15)
