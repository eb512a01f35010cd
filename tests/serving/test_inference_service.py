"""InferenceServices end to end: ``ketch up``, KServe YAML, the model server
started by the controller, and Triton's real HTTP client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml

from _modelserver import trained_iris
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_services")]

ROOT = Path(__file__).resolve().parents[2]


def _isvc(name: str, uri: str) -> dict[str, object]:
    doc = yaml.safe_load((ROOT / "examples" / "serving" / "iris.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["predictor"]["model"]["storageUri"] = uri
    return doc  # type: ignore[no-any-return]


def _triton_predict(url: str, model: str, rows: np.ndarray) -> np.ndarray:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url.removeprefix("http://"))
    inp = httpclient.InferInput("input-0", list(rows.shape), "FP64")
    inp.set_data_from_numpy(rows, binary_data=True)
    out = httpclient.InferRequestedOutput("output-0", binary_data=True)
    return client.infer(model, [inp], outputs=[out]).as_numpy("output-0")  # type: ignore[no-any-return]


def _condition(obj: object, type_: str) -> dict[str, str]:
    return next(c for c in obj.status["conditions"] if c["type"] == type_)  # type: ignore[attr-defined]


def test_example_iris_service_serves_triton_and_rolls_out(ketch_server: ServerProcess,
                                                          tmp_path: Path) -> None:
    model = trained_iris(tmp_path / "iris")
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
    with Client(ketch_server.url) as client:
        client.apply(_isvc("iris", (tmp_path / "iris").as_uri()))
        ready = client.wait("isvc", "iris", condition="Ready", timeout=120)
        url = ready.status["url"]
        assert url.startswith("http://127.0.0.1:")
        assert ready.status["modelStatus"]["states"]["activeModelState"] == "Loaded"
        expected = model.predict(rows)
        assert _triton_predict(url, "iris", rows).tolist() == expected.tolist()

        # The same service through the main server's /serving/{namespace}/{name} route.
        import httpx

        base = f"{ketch_server.url}/serving/default/iris"
        v2 = httpx.post(f"{base}/v2/models/iris/infer", json={"inputs": [{
            "name": "input-0", "shape": [2, 4], "datatype": "FP64",
            "data": rows.flatten().tolist()}]})
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["data"] == expected.tolist()
        v1 = httpx.post(f"{base}/v1/models/iris:predict", json={"instances": rows.tolist()})
        assert v1.json() == {"predictions": expected.tolist()}
        # Triton's client with the binary tensor extension, through the route too.
        assert _triton_predict(base, "iris", rows).tolist() == expected.tolist()
        missing = httpx.post(f"{ketch_server.url}/serving/default/nope/v2/models/nope/infer",
                             json={})
        assert missing.status_code == 404 and "not found" in missing.json()["error"]

        # A rollout to a model that cannot load: the old revision keeps serving.
        client.patch("isvc", "iris", {"spec": {"predictor": {"model": {
            "storageUri": (tmp_path / "missing").as_uri()}}}})
        failed = wait_for(lambda: (o := client.get("isvc", "iris")).status.get(
            "modelStatus", {}).get("lastFailureInfo") and o, timeout=60,
            message="failed rollout reported")
        info = failed.status["modelStatus"]["lastFailureInfo"]  # type: ignore[attr-defined]
        assert info["reason"] == "StorageUriError" and "does not exist" in info["message"]
        assert _condition(failed, "Ready")["status"] == "True"
        assert _condition(failed, "PredictorReady")["status"] == "False"
        assert _triton_predict(url, "iris", rows).tolist() == expected.tolist()

        # ketch get shows it; delete stops the model server.
        got = subprocess.run([sys.executable, "-m", "ketch.cli", "get", "isvc"],
                             env=ketch_server.env, capture_output=True, text=True, check=True)
        assert "iris" in got.stdout and url in got.stdout
        port = int(url.rsplit(":", 1)[1])
        server_pids = [c.pid for c in psutil.net_connections("tcp")
                       if c.laddr and c.laddr.port == port and c.status == "LISTEN" and c.pid]
        client.delete("isvc", "iris")
        wait_for(lambda: not any(psutil.pid_exists(p) for p in server_pids), timeout=30,
                 message="model server stopped")


def test_corrupt_model_is_a_condition_not_a_crash(ketch_server: ServerProcess,
                                                  tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.joblib").write_bytes(b"this is not a pickle")
    with Client(ketch_server.url) as client:
        client.apply(_isvc("broken", bad.as_uri()))
        failed = wait_for(lambda: (o := client.get("isvc", "broken")).status.get(
            "modelStatus", {}).get("lastFailureInfo") and o, timeout=60,
            message="load failure reported")
        info = failed.status["modelStatus"]["lastFailureInfo"]  # type: ignore[attr-defined]
        assert info["reason"] == "ModelLoadFailed" and info["message"]
        assert _condition(failed, "Ready")["status"] == "False"
        assert client.get("isvc", "broken").status["modelStatus"]["states"][
            "targetModelState"] == "FailedToLoad"
        # The control plane is fine and serves everything else.
        assert client.list("jobs").items == []


def test_model_registry_uri_resolves_to_the_registered_artifact(ketch_server: ServerProcess,
                                                                 tmp_path: Path) -> None:
    from ketch.registry.client import ModelRegistry

    model = trained_iris(tmp_path / "iris-reg")
    with ModelRegistry(ketch_server.url, author="alice") as reg:
        reg.register_model("iris", (tmp_path / "iris-reg").as_uri(),
                           model_format_name="sklearn", version="v1")
    rows = np.array([[6.0, 2.2, 4.0, 1.0]], dtype=np.float64)
    with Client(ketch_server.url) as client:
        client.apply(_isvc("iris-from-registry", "model-registry://iris/v1"))
        ready = client.wait("isvc", "iris-from-registry", condition="Ready", timeout=120)
        got = _triton_predict(ready.status["url"], "iris-from-registry", rows)
    assert got.tolist() == model.predict(rows).tolist()  # type: ignore[attr-defined]


def test_ketch_serve_shortcut_from_the_registry(ketch_server: ServerProcess,
                                                tmp_path: Path) -> None:
    from ketch.registry.client import ModelRegistry

    trained_iris(tmp_path / "m")
    with ModelRegistry(ketch_server.url, author="alice") as reg:
        reg.register_model("flowers", (tmp_path / "m").as_uri(), model_format_name="sklearn",
                           version="v3")
    out = subprocess.run([sys.executable, "-m", "ketch.cli", "serve",
                          "model-registry://flowers/v3"], env=ketch_server.env,
                         capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr
    assert "inferenceservice.serving.kserve.io/flowers created" in out.stdout
    url = out.stdout.split("serving at ")[1].split()[0]
    rows = np.array([[5.9, 3.0, 5.1, 1.8]], dtype=np.float64)
    assert _triton_predict(url, "flowers", rows).shape == (1,)
    bad = subprocess.run([sys.executable, "-m", "ketch.cli", "serve", str(tmp_path / "m")],
                         env=ketch_server.env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert bad.returncode == 1 and "--format is required" in bad.stderr
