"""The model server's data plane, driven through a real process by real clients.

Each test talks to ``python -m ketch.serving.modelserver`` started with ``--port 0`` on
an iris ``LogisticRegression`` trained here. Clients: Triton's ``tritonclient.http``
(binary tensor extension and JSON), KServe's ``InferenceRESTClient`` for V1 and V2, and
plain httpx for the error paths.

KServe 0.21.0 pins ``psutil<6`` (ketch uses psutil 7), so it is not in ketch's venv: the
``kserve_python`` fixture builds a separate venv once, cached under
``~/.cache/ketch-test/kserve-0.21.0``, and the KServe part runs there as a subprocess
(``_kserve_client.py``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from sklearn.linear_model import LogisticRegression

from _modelserver import ModelServer, kserve_python, modelserver_cmd, start_modelserver

pytestmark = pytest.mark.slow

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]

CUSTOM_MODEL = '''
import numpy as np

class Doubler:
    """Doubles its input; raises on a negative first value (V2) or "boom" (V1)."""

    def __init__(self, name):
        self.name = name
        self.loaded = False

    async def load(self):
        self.loaded = True

    def preprocess(self, payload):
        return payload

    async def predict(self, payload):
        if "instances" in payload:
            if "boom" in payload["instances"]:
                raise RuntimeError("boom requested")
            return [x * 2 for x in payload["instances"]]
        arr = payload["inputs"][0]["data"]
        if arr.reshape(-1)[0] < 0:
            raise ValueError("negative input")
        return {"outputs": [{"name": "doubled", "data": arr * 2}]}

    def postprocess(self, result):
        return result
'''


@pytest.fixture(scope="module")
def server(iris: tuple[Path, LogisticRegression]) -> Iterator[ModelServer]:
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]),
                            "--format", "sklearn")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def custom_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    model_dir = tmp_path_factory.mktemp("custom")
    (model_dir / "doubler.py").write_text(CUSTOM_MODEL)
    srv = start_modelserver("--name", "doubler", "--model-dir", str(model_dir),
                            "--format", "custom", "--custom", "doubler:Doubler")
    yield srv
    srv.stop()


@pytest.fixture
def http(server: ModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def expected(iris: tuple[Path, LogisticRegression]) -> Any:
    return iris[1].predict(np.asarray(ROWS))


# -- real clients ----------------------------------------------------------------------


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_tritonclient_infer(server: ModelServer, iris: Any, binary_in: bool,
                            binary_out: bool) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        arr = np.asarray(ROWS, dtype=np.float64)
        inp = triton.InferInput("input-0", [2, 4], "FP64")
        inp.set_data_from_numpy(arr, binary_data=binary_in)
        out = triton.InferRequestedOutput("output-0", binary_data=binary_out)
        result = client.infer("iris", [inp], outputs=[out])
        got = result.as_numpy("output-0")
        assert got is not None
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected(iris))
        # No outputs named: tritonclient asks for binary_data_output.
        default = client.infer("iris", [inp]).as_numpy("output-0")
        np.testing.assert_array_equal(default, expected(iris))
    finally:
        client.close()


def _batch(rows: int, dtype: Any) -> Any:
    """``rows`` iris rows of all three classes, as ``dtype``."""
    from sklearn.datasets import load_iris

    return load_iris().data[::19][:rows].astype(dtype)


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("rows", [1, 8])
@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64"])
def test_tritonclient_fp32_int_and_batches_equal_predict(
        server: ModelServer, iris: Any, datatype: str, rows: int, binary_in: bool) -> None:
    """tritonclient's usual FP32 (and the fast path's other dtypes), 1 row or a batch:
    the answer is what the estimator predicts on the same array."""
    arr = _batch(rows, triton.triton_to_np_dtype(datatype))
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        inp = triton.InferInput("input-0", list(arr.shape), datatype)
        inp.set_data_from_numpy(arr, binary_data=binary_in)
        for binary_out in (True, False):
            out = triton.InferRequestedOutput("output-0", binary_data=binary_out)
            got = client.infer("iris", [inp], outputs=[out]).as_numpy("output-0")
            assert got is not None
            np.testing.assert_array_equal(got, iris[1].predict(arr))
            assert got.dtype == np.int64
    finally:
        client.close()


@pytest.mark.parametrize("rows", [1, 8])
def test_json_fp32_fp16_int_and_batches_equal_predict(http: httpx.Client, iris: Any,
                                                      rows: int) -> None:
    for datatype, dtype in (("FP32", np.float32), ("FP64", np.float64),
                            ("FP16", np.float16), ("INT32", np.int32)):
        arr = _batch(rows, dtype)
        r = http.post("/v2/models/iris/infer",
                      json=_v2(arr.reshape(-1).tolist(), [rows, 4], datatype))
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == iris[1].predict(arr).tolist(), datatype
    for dtype in (np.float64, np.int64):  # V1: JSON numbers, as np.asarray reads them
        arr = _batch(rows, dtype)
        r = http.post("/v1/models/iris:predict", json={"instances": arr.tolist()})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": iris[1].predict(arr).tolist()}


def test_a_model_without_a_fast_path_answers_as_sklearn(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A pipeline the fast path does not cover (MinMaxScaler) is served by sklearn's
    own predict, for every dtype and batch size."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    data, target = load_iris(return_X_y=True)
    model = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000)).fit(data, target)
    model_dir = tmp_path_factory.mktemp("minmax")
    joblib.dump(model, model_dir / "model.joblib")
    srv = start_modelserver("--name", "minmax", "--model-dir", str(model_dir),
                            "--format", "sklearn")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for datatype, dtype in (("FP32", np.float32), ("FP64", np.float64),
                                    ("INT64", np.int64)):
                for rows in (1, 8):
                    arr = _batch(rows, dtype)
                    r = client.post("/v2/models/minmax/infer",
                                    json=_v2(arr.reshape(-1).tolist(), [rows, 4], datatype))
                    assert r.status_code == 200, r.text
                    assert r.json()["outputs"][0]["data"] == model.predict(arr).tolist()
    finally:
        srv.stop()


def test_tritonclient_health_and_metadata(server: ModelServer) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        assert not client.is_model_ready("nope")
        meta = client.get_model_metadata("iris")
        assert meta["name"] == "iris"
        assert meta["platform"] == "sklearn"
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
        assert meta["outputs"][0]["name"] == "output-0"
        assert meta["outputs"][0]["datatype"] == "INT64"
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    finally:
        client.close()


def test_kserve_client_v1_and_v2(server: ModelServer, iris: Any) -> None:
    python = kserve_python()
    script = Path(__file__).parent / "_kserve_client.py"
    proc = subprocess.run([str(python), str(script), server.url, "iris", json.dumps(ROWS)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    want = expected(iris).tolist()
    assert res["v1_live"] is True
    assert res["v1_model_ready"] is True
    assert res["v1_predictions"] == want
    assert res["v2_live"] is True
    assert res["v2_ready"] is True
    assert res["v2_model_ready"] is True
    for binary in (False, True):
        out = res[f"v2_binary_{binary}"]
        assert out == {"id": f"r-{binary}", "name": "output-0", "datatype": "INT64",
                       "data": want}


# -- httpx: protocol details and errors ------------------------------------------------


def _v2(data: Any, shape: list[int] | None = None, datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": shape or [1, 4], "datatype": datatype,
                        "data": data}]}


def test_no_content_type_is_json(http: httpx.Client, iris: Any) -> None:
    body = json.dumps(_v2(ROWS, [2, 4])).encode()
    r = http.post("/v2/models/iris/infer", content=body, headers={"content-type": ""})
    assert "content-type" not in r.request.headers or not r.request.headers["content-type"]
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["name"] == "output-0"
    assert out["datatype"] == "INT64"
    assert out["shape"] == [2]
    assert out["data"] == expected(iris).tolist()


def test_v1_predict_and_health(http: httpx.Client, iris: Any) -> None:
    assert http.get("/").json() == {"status": "alive"}
    assert http.get("/v1/models").json() == {"models": ["iris"]}
    assert http.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    r = http.post("/v1/models/iris:predict", json={"instances": ROWS})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected(iris).tolist()}
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert http.get("/v2/models/iris/versions/1/ready").status_code == 200


def test_versioned_infer_and_request_id(http: httpx.Client) -> None:
    r = http.post("/v2/models/iris/versions/1/infer", json={"id": "abc", **_v2(ROWS[0])})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "abc"
    assert r.json()["model_version"] == "1"


@pytest.mark.parametrize(("path", "body", "status", "needle"), [
    ("/v2/models/iris/infer", _v2([1.0, 2.0, 3.0], [1, 4]), 400, "input-0"),
    ("/v2/models/iris/infer", _v2(ROWS[0], datatype="FP128"), 400, "FP128"),
    ("/v2/models/iris/infer", _v2(["a", "b", "c", "d"]), 400, "FP64"),
    ("/v2/models/iris/infer", _v2([1.0, 2.0, 3.0], [1, 3]), 400, "expects 4 features"),
    ("/v2/models/iris/infer", {"inputs": []}, 400, "inputs"),
    ("/v2/models/nope/infer", _v2(ROWS[0]), 404, "nope"),
    ("/v2/models/iris/versions/7/infer", _v2(ROWS[0]), 404, "version 7"),
    ("/v1/models/nope:predict", {"instances": ROWS}, 404, "nope"),
    ("/v1/models/iris:predict", {"rows": ROWS}, 400, "instances"),
    ("/v1/models/iris:explain", {"instances": ROWS}, 501, "explain"),
])
def test_errors(http: httpx.Client, path: str, body: Any, status: int, needle: str) -> None:
    r = http.post(path, json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_bad_json_and_unknown_paths(http: httpx.Client) -> None:
    r = http.post("/v2/models/iris/infer", content=b"{not json")
    assert r.status_code == 400
    assert "invalid JSON" in r.json()["error"]
    assert http.get("/v2/models/nope").status_code == 404
    assert http.get("/v2/nowhere").status_code == 404
    assert http.get("/v2/models/iris/infer").status_code == 405


def test_metrics(http: httpx.Client) -> None:
    http.post("/v1/models/iris:predict", json={"instances": ROWS})
    text = http.get("/metrics").text
    assert 'ketch_inference_requests_total{model="iris",endpoint="v1_predict",code="200"}' \
        in text


# -- custom models ---------------------------------------------------------------------


def test_custom_model(custom_server: ModelServer) -> None:
    with httpx.Client(base_url=custom_server.url, timeout=30) as client:
        r = client.post("/v1/models/doubler:predict", json={"instances": [1, 2]})
        assert r.json() == {"predictions": [2, 4]}
        r = client.post("/v2/models/doubler/infer", json={
            "inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [3, 4]}]})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == [{"name": "doubled", "shape": [2], "datatype": "INT32",
                                        "data": [6, 8]}]


def test_custom_model_raising_is_500_and_server_survives(
        custom_server: ModelServer) -> None:
    with httpx.Client(base_url=custom_server.url, timeout=30) as client:
        r = client.post("/v1/models/doubler:predict", json={"instances": ["boom"]})
        assert r.status_code == 500
        assert "boom requested" in r.json()["error"]
        r = client.post("/v2/models/doubler/infer", json={
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [-1.0]}]})
        assert r.status_code == 500
        assert "negative input" in r.json()["error"]
        r = client.post("/v1/models/doubler:predict", json={"instances": [5]})
        assert r.status_code == 200
        assert r.json() == {"predictions": [10]}
    assert custom_server.proc.poll() is None


# -- the CLI ---------------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(modelserver_cmd(*args, "--port", "0"), capture_output=True,
                          text=True, timeout=60, check=False)


def test_corrupt_model_exits_nonzero(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"this is not a pickle")
    proc = _run_cli("--name", "bad", "--model-dir", str(tmp_path), "--format", "sklearn")
    assert proc.returncode != 0
    assert "KETCH_MODELSERVER_PORT" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("modelserver: cannot load sklearn model")


@pytest.mark.parametrize(("args", "needle"), [
    (["--format", "sklearn"], "no sklearn model file"),
    (["--format", "tensorflow"], "unknown model format"),
    (["--format", "custom", "--custom", "no_such_module:Model"], "no_such_module"),
])
def test_cli_load_failures(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = _run_cli("--name", "m", "--model-dir", str(tmp_path), *args)
    assert proc.returncode != 0
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_missing_file_exits_nonzero(tmp_path: Path) -> None:
    proc = _run_cli("--name", "m", "--model-dir", str(tmp_path / "absent.joblib"),
                    "--format", "sklearn")
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr


def test_sigterm_stops_cleanly(iris: Any) -> None:
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]),
                            "--format", "sklearn")
    assert httpx.get(f"{srv.url}/v2/health/ready", timeout=10).status_code == 200
    srv.proc.terminate()
    assert srv.proc.wait(timeout=15) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{srv.url}/v2/health/live", timeout=5)


def test_uds_listens_on_a_unix_socket(iris: Any, tmp_path: Path) -> None:
    sock = tmp_path / "replica.sock"
    proc = subprocess.Popen(modelserver_cmd("--name", "iris", "--model-dir", str(iris[0]),
                                            "--format", "sklearn", "--uds", str(sock)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        # The load lines (loading, loaded, serving: what `ketch logs isvc` shows) come
        # first, then the line the controller waits for.
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        assert lines[-1] == f"KETCH_MODELSERVER_UDS={sock}", lines
        assert lines[0].startswith("modelserver: loading sklearn model 'iris'"), lines
        assert sock.stat().st_mode & 0o077 == 0  # not reachable by other users
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, base_url="http://replica", timeout=30) as c:
            assert c.get("/v2/health/ready").json() == {"ready": True}
            r = c.post("/v2/models/iris/infer", json=_v2(ROWS, [2, 4]))
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == expected(iris).tolist()
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        assert not sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- tensor codecs ---------------------------------------------------------------------


@pytest.mark.parametrize("datatype", ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8",
                                      "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
                                      "BYTES"])
def test_tensor_codecs_round_trip(datatype: str) -> None:
    from ketch.serving import _tensors as t

    if datatype == "BYTES":
        arr = np.array([b"a", b"", b"xyz", b"\x00\xff"], dtype=object).reshape(2, 2)
    else:
        arr = np.arange(4).reshape(2, 2).astype(t.DTYPES[datatype])
    dt, raw = t.encode_binary(arr)
    assert dt == datatype
    back = t.decode_binary("x", [2, 2], dt, raw)
    assert back.tolist() == arr.tolist()
    dt, data = t.encode_json(arr)
    decoded = t.decode_json("x", [2, 2], dt, data)
    if datatype == "BYTES":
        assert decoded.tolist() == [["a", ""], ["xyz", "\x00\xff"]]
    else:
        np.testing.assert_array_equal(decoded, arr)
