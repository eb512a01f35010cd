"""Serving a registered model, as Kubeflow Model Registry records it: ``ketch serve
model-registry://...`` and KServe YAML with such a URI are recorded as the registry's
InferenceService entities (``desiredState: DEPLOYED``), which refuse deleting the model
while it is served; deleting the service undeploys the record; an ARCHIVED version is
served with a warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from _modelserver import trained_iris
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_services")]

_MR = "/api/model_registry/v1"


def _ketch(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=180, check=False,
                          stdin=subprocess.DEVNULL)


def _register(server: ServerProcess, folder: Path, name: str, version: str) -> None:
    from ketch.registry.client import ModelRegistry

    trained_iris(folder)
    with ModelRegistry(server.url, author="alice") as reg:
        reg.register_model(name, folder.as_uri(), model_format_name="sklearn",
                           version=version)


def _recorded(http: httpx.Client) -> dict[str, dict[str, object]]:
    items = http.get(f"{_MR}/inference_services").json()["items"]
    return {item["name"]: item for item in items}


def test_a_served_model_is_recorded_and_cannot_be_deleted(ketch_server: ServerProcess,
                                                          tmp_path: Path) -> None:
    _register(ketch_server, tmp_path / "forest", "wine", "forest-1.000")
    served = _ketch(ketch_server, "serve", "model-registry://wine/forest-1.000")
    assert served.returncode == 0, served.stderr
    assert "warning" not in served.stderr

    with httpx.Client(base_url=ketch_server.url) as http, Client(ketch_server.url) as client:
        model = http.get(f"{_MR}/registered_model", params={"name": "wine"}).json()
        version = http.get(f"{_MR}/model_version", params={
            "name": "forest-1.000", "parentResourceId": model["id"]}).json()
        envs = http.get(f"{_MR}/serving_environments").json()["items"]
        assert [e["name"] for e in envs] == ["default"]
        entity = _recorded(http)["wine"]
        url = client.get("isvc", "wine").status["url"]
        assert entity["desiredState"] == "DEPLOYED"
        assert entity["registeredModelId"] == model["id"]
        assert entity["modelVersionId"] == version["id"]
        assert entity["servingEnvironmentId"] == envs[0]["id"]
        assert entity["customProperties"]["url"]["string_value"] == url  # type: ignore[index]

        # Deleting the model or its version is refused while it is served, and it serves.
        refused = _ketch(ketch_server, "models", "delete", "wine")
        assert refused.returncode == 1, refused.stdout
        line, = refused.stderr.strip().splitlines()
        assert "still served by inference service 'wine'" in line, line
        assert _ketch(ketch_server, "models", "delete", "wine", "--version",
                      "forest-1.000").returncode == 1
        assert http.delete(f"{_MR}/registered_models/{model['id']}").status_code == 409
        answer = httpx.post(f"{url}/v1/models/wine:predict",
                            json={"instances": [[6.0, 2.2, 4.0, 1.0]]}, timeout=30)
        assert answer.status_code == 200, answer.text

        # KServe YAML with a model-registry:// URI is recorded the same way.
        client.apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                      "metadata": {"name": "wine-yaml"},
                      "spec": {"predictor": {"model": {
                          "modelFormat": {"name": "sklearn"},
                          "storageUri": "model-registry://wine/forest-1.000"}}}})
        client.wait("isvc", "wine-yaml", condition="Ready", timeout=120)
        assert _recorded(http)["wine-yaml"]["desiredState"] == "DEPLOYED"

        # Deleting one service undeploys its record; the other still guards the model.
        client.delete("isvc", "wine")
        wait_for(lambda: _recorded(http)["wine"]["desiredState"] == "UNDEPLOYED",
                 timeout=60, message="wine undeployed")
        assert _ketch(ketch_server, "models", "delete", "wine").returncode == 1
        client.delete("isvc", "wine-yaml")
        wait_for(lambda: _recorded(http)["wine-yaml"]["desiredState"] == "UNDEPLOYED",
                 timeout=60, message="wine-yaml undeployed")
    deleted = _ketch(ketch_server, "models", "delete", "wine")
    assert deleted.returncode == 0, deleted.stderr
    assert "wine deleted" in deleted.stdout


def test_serving_an_archived_version_warns(ketch_server: ServerProcess,
                                           tmp_path: Path) -> None:
    _register(ketch_server, tmp_path / "old", "wine", "v1")
    archived = _ketch(ketch_server, "models", "archive", "wine", "--version", "v1")
    assert archived.returncode == 0, archived.stderr
    served = _ketch(ketch_server, "serve", "model-registry://wine/v1", "--name", "old-wine")
    assert served.returncode == 0, served.stderr
    assert "warning: model-registry://wine/v1: version 'v1' of model 'wine' is ARCHIVED" \
        in served.stderr, served.stderr
    with Client(ketch_server.url) as client:
        conditions = {c["type"]: c for c in client.get("isvc", "old-wine").status["conditions"]}
    assert conditions["ModelArchived"]["status"] == "True"
    assert "ARCHIVED" in conditions["ModelArchived"]["message"]
