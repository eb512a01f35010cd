"""The xgboost, lightgbm, ONNX and TorchScript runtimes, each with its real framework.

Every model is trained here on a scikit-learn dataset (no downloads), saved in each
format KServe's server for it accepts (xgboost ``.bst``/``.json``/``.ubj``, lightgbm
``.bst``/``.txt``, ONNX ``.onnx`` made by skl2onnx, TorchScript ``.pt`` from
``torch.jit.script`` and ``torch.jit.trace``), served by a real ``python -m
ketch.serving.modelserver`` process, and asked over V1 (httpx) and V2 (Triton's
``tritonclient.http``, binary and JSON). The answers must equal, bit for bit, what the
framework's own ``predict`` gives on the same rows. The frameworks come from the
``serving-frameworks`` extra that ``make install`` installs.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression

from _modelserver import ModelServer, modelserver_cmd, start_modelserver

# The tests that start model servers or a ketch server; the in-process ones are fast.
slow = pytest.mark.slow

IRIS_X, IRIS_Y = load_iris(return_X_y=True)
DIABETES_X, DIABETES_Y = load_diabetes(return_X_y=True)
IRIS_ROWS = IRIS_X[[0, 60, 120, 149]]  # one row of each class, and one more
DIABETES_ROWS = DIABETES_X[[0, 1, 2]]


@dataclass
class Served:
    """A model file, the server serving it, and what the framework itself predicts."""

    name: str
    path: Path
    server: ModelServer
    rows: np.ndarray
    expected: Any  # one array, or {output name: array} for ONNX and TorchScript

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=60)

    def triton(self) -> triton.InferenceServerClient:
        return triton.InferenceServerClient(f"127.0.0.1:{self.server.port}")


def _serve(name: str, path: Path, fmt: str, rows: np.ndarray, expected: Any,
           *extra: str) -> Served:
    server = start_modelserver("--name", name, "--model-dir", str(path.parent),
                               "--format", fmt, *extra)
    return Served(name, path, server, rows, expected)


def _v2_infer(served: Served, inputs: list[tuple[str, np.ndarray, str]], binary: bool,
              outputs: list[str]) -> dict[str, np.ndarray]:
    client = served.triton()
    try:
        tensors = []
        for name, arr, datatype in inputs:
            tensor = triton.InferInput(name, list(arr.shape), datatype)
            tensor.set_data_from_numpy(arr, binary_data=binary)
            tensors.append(tensor)
        wanted = [triton.InferRequestedOutput(o, binary_data=binary) for o in outputs]
        result = client.infer(served.name, tensors, outputs=wanted)
        return {o: result.as_numpy(o) for o in outputs}
    finally:
        client.close()


def _v1(served: Served, rows: Any) -> httpx.Response:
    with served.http() as http:
        return http.post(f"/v1/models/{served.name}:predict", json={"instances": rows})


def _v2_json(served: Served, body: dict[str, Any]) -> httpx.Response:
    with served.http() as http:
        return http.post(f"/v2/models/{served.name}/infer", json=body)


def _tensor(name: str, arr: np.ndarray, datatype: str) -> dict[str, Any]:
    return {"name": name, "shape": list(arr.shape), "datatype": datatype,
            "data": arr.reshape(-1).tolist()}


def _metadata(served: Served) -> dict[str, Any]:
    client = served.triton()
    try:
        return client.get_model_metadata(served.name)  # type: ignore[no-any-return]
    finally:
        client.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


# -- xgboost ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xgb_booster() -> Any:
    import xgboost as xgb

    return xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3,
                      "nthread": 1, "seed": 0}, xgb.DMatrix(IRIS_X, label=IRIS_Y), 10)


def _xgb_predict(booster: Any, rows: np.ndarray) -> Any:
    """The booster's own predict, as KServe's xgbserver calls it."""
    import xgboost as xgb

    return booster.predict(xgb.DMatrix(rows))


@pytest.fixture(scope="module", params=["bst", "json", "ubj"])
def xgb_served(request: pytest.FixtureRequest, models: Path,
               xgb_booster: Any) -> Iterator[Served]:
    path = models / f"xgb-{request.param}" / f"model.{request.param}"
    path.parent.mkdir()
    # A .bst is written in xgboost's default format (UBJSON); KServe's examples use it.
    xgb_booster.save_model(str(path) if request.param != "bst" else str(path) + ".ubj")
    if request.param == "bst":
        path.with_suffix(".bst.ubj").rename(path)
    served = _serve("flowers", path, "xgboost", IRIS_ROWS,
                    _xgb_predict(xgb_booster, IRIS_ROWS))
    yield served
    served.server.stop()


@slow
def test_xgboost_v1_and_v2_match_booster_predict(xgb_served: Served) -> None:
    expected = xgb_served.expected
    assert expected.dtype == np.float32 and expected.shape == (4, 3)
    r = _v1(xgb_served, IRIS_ROWS.tolist())
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected.tolist()}
    for binary in (True, False):
        for rows, datatype in ((IRIS_ROWS, "FP64"), (IRIS_ROWS.astype(np.float32), "FP32")):
            got = _v2_infer(xgb_served, [("input-0", rows, datatype)], binary,
                            ["output-0"])["output-0"]
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, expected)
    meta = _metadata(xgb_served)
    assert meta["platform"] == "xgboost"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}]


@pytest.mark.parametrize(("instances", "status", "needle"), [
    ([[5.1, 3.5, 1.4]], 400, "expects 4 features"),
    ([["a", "b", "c", "d"]], 400, "takes numbers"),
    ([5.1, 3.5, 1.4, 0.2], 400, "2-D array"),
])
@slow
def test_xgboost_bad_input_is_400_and_the_server_keeps_serving(
        xgb_served: Served, instances: Any, status: int, needle: str) -> None:
    r = _v1(xgb_served, instances)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    two = _v2_json(xgb_served, {"inputs": [
        _tensor("input-0", IRIS_ROWS, "FP64"), _tensor("input-1", IRIS_ROWS, "FP64")]})
    assert two.status_code == 400 and "takes one input tensor" in two.json()["error"]
    assert _v1(xgb_served, IRIS_ROWS.tolist()).status_code == 200


# -- lightgbm --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["bst", "txt"])
def lgb_served(request: pytest.FixtureRequest, models: Path) -> Iterator[Served]:
    import lightgbm as lgb

    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1,
                         "seed": 0}, lgb.Dataset(DIABETES_X, DIABETES_Y), 20)
    path = models / f"lgb-{request.param}" / f"model.{request.param}"
    path.parent.mkdir()
    booster.save_model(str(path))
    served = _serve("diabetes", path, "lightgbm", DIABETES_ROWS,
                    booster.predict(DIABETES_ROWS))
    yield served
    served.server.stop()


@slow
def test_lightgbm_v1_and_v2_match_booster_predict(lgb_served: Served) -> None:
    expected = lgb_served.expected
    assert expected.dtype == np.float64 and expected.shape == (3,)
    r = _v1(lgb_served, DIABETES_ROWS.tolist())
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected.tolist()}
    for binary in (True, False):
        got = _v2_infer(lgb_served, [("input-0", DIABETES_ROWS, "FP64")], binary,
                        ["output-0"])["output-0"]
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expected)
    meta = _metadata(lgb_served)
    assert meta["platform"] == "lightgbm"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 10]}]
    assert meta["outputs"] == [{"name": "output-0", "datatype": "FP64", "shape": [-1]}]
    bad = _v2_json(lgb_served, {"inputs": [_tensor("input-0", DIABETES_ROWS[:, :4], "FP64")]})
    assert bad.status_code == 400 and "expects 10 features" in bad.json()["error"]


IRIS_FEATURES = ["sepal_length_(cm)", "sepal_width_(cm)", "petal_length_(cm)",
                 "petal_width_(cm)"]


@pytest.mark.parametrize("fmt", ["lightgbm", "xgboost"])
def test_instances_by_feature_name_as_kserve_takes_them(tmp_path: Path, fmt: str) -> None:
    """KServe's lightgbm sample request (iris-input.json): one dict per instance, each
    feature a number, [number] or {index: number}; a missing one is NaN (missing)."""
    row = IRIS_X[0]
    partial = row.copy()
    partial[3] = np.nan
    if fmt == "lightgbm":
        import lightgbm as lgb

        booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1},
                            lgb.Dataset(IRIS_X, IRIS_Y, feature_name=IRIS_FEATURES), 5)
        booster.save_model(str(tmp_path / "model.txt"))
        want = booster.predict(np.vstack([row, row, partial])).tolist()
    else:
        import xgboost as xgb

        booster = xgb.train({"objective": "multi:softprob", "num_class": 3},
                            xgb.DMatrix(IRIS_X, IRIS_Y, feature_names=IRIS_FEATURES), 5)
        booster.save_model(str(tmp_path / "model.json"))
        want = booster.predict(xgb.DMatrix(np.vstack([row, row, partial]),
                                           feature_names=IRIS_FEATURES)).tolist()
    plane = _plane(tmp_path, fmt)
    sample = {name: [float(v)] for name, v in zip(IRIS_FEATURES, row, strict=True)}
    indexed = {name: {"0": float(v)} for name, v in zip(IRIS_FEATURES, row, strict=True)}
    missing = {name: float(v) for name, v in zip(IRIS_FEATURES[:3], row[:3], strict=True)}
    status, body = _handle(plane, "/v1/models/m:predict",
                           {"inputs": [sample, indexed, missing]})
    assert status == 200, body
    assert body == {"predictions": want}
    for bad, needle in (({"petal_colour": 1.0}, "has no feature 'petal_colour' (its "
                                               "features: sepal_length_(cm), "),
                        ({"sepal_width_(cm)": [1.0, 2.0]}, "one value per instance"),
                        ({"sepal_width_(cm)": "wide"}, "expected a number")):
        status, body = _handle(plane, "/v1/models/m:predict", {"instances": [bad]})
        assert status == 400, body
        assert needle in body["error"]


# -- ONNX ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_served(models: Path) -> Iterator[Served]:
    import onnxruntime as ort
    from skl2onnx import to_onnx

    clf = LogisticRegression(max_iter=1000).fit(IRIS_X, IRIS_Y)
    # zipmap off: probabilities as a tensor, not a list of dicts (which V2 cannot carry).
    proto = to_onnx(clf, IRIS_X[:1].astype(np.float32), options={"zipmap": False})
    path = models / "onnx" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(proto.SerializeToString())
    rows = IRIS_ROWS.astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"X": rows})
    assert label.tolist() == clf.predict(IRIS_ROWS).tolist()
    served = _serve("iris-onnx", path, "onnx", rows, {"label": label, "probabilities": proba},
                    "--max-batch-size", "8", "--max-latency", "20")
    yield served
    served.server.stop()


@slow
def test_onnx_v1_and_v2_use_the_models_names_and_match_onnxruntime(
        onnx_served: Served) -> None:
    expected = onnx_served.expected
    r = _v1(onnx_served, IRIS_ROWS.tolist())  # JSON floats: cast to the model's FP32
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected["label"].tolist()}
    for binary in (True, False):
        got = _v2_infer(onnx_served, [("X", onnx_served.rows, "FP32")], binary,
                        ["label", "probabilities"])
        assert got["label"].dtype == np.int64 and got["probabilities"].dtype == np.float32
        np.testing.assert_array_equal(got["label"], expected["label"])
        np.testing.assert_array_equal(got["probabilities"], expected["probabilities"])
    # No outputs asked for: every tensor output, in the model's order.
    r = _v2_json(onnx_served, {"inputs": [_tensor("X", onnx_served.rows, "FP32")]})
    assert r.status_code == 200, r.text
    outs = r.json()["outputs"]
    assert [(o["name"], o["datatype"], o["shape"]) for o in outs] == [
        ("label", "INT64", [4]), ("probabilities", "FP32", [4, 3])]
    assert outs[1]["data"] == expected["probabilities"].reshape(-1).tolist()
    meta = _metadata(onnx_served)
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32",
                                "shape": [-1, 3]}]


@slow
def test_onnx_batched_requests_get_their_own_rows_of_every_output(
        onnx_served: Served) -> None:
    """The server batches (--max-batch-size 8): concurrent 1-row requests share predicts,
    and each gets back its own row of both named outputs."""
    rows = onnx_served.rows

    def one(i: int) -> dict[str, Any]:
        r = _v2_json(onnx_served, {"inputs": [_tensor("X", rows[i:i + 1], "FP32")]})
        assert r.status_code == 200, r.text
        return {o["name"]: o["data"] for o in r.json()["outputs"]}

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, [i % 4 for i in range(16)]))
    for i, got in enumerate(answers):
        assert got["label"] == onnx_served.expected["label"][i % 4: i % 4 + 1].tolist()
        # A row computed inside a batch may differ in the last float32 bit from one
        # computed alone (another GEMM kernel), so: close, not equal.
        np.testing.assert_allclose(got["probabilities"],
                                   onnx_served.expected["probabilities"][i % 4], rtol=1e-5)


@slow
def test_batcher_slices_every_named_output_per_request(onnx_served: Served) -> None:
    """In process: four 1-row submissions close one batch of 4 (maxBatchSize), whose
    dict of outputs is split back row by row."""
    import asyncio

    from ketch.serving._batcher import Batcher
    from ketch.serving._runtimes import make_runtime

    runtime = make_runtime("iris-onnx", str(onnx_served.path.parent), "onnx")
    runtime.load()
    calls: list[int] = []

    def predict(batch: Any) -> Any:
        calls.append(len(batch))
        return runtime.predict(batch)

    async def main() -> list[Any]:
        batcher = Batcher(predict, max_batch_size=4, max_latency_ms=10_000)
        rows = onnx_served.rows
        return await asyncio.gather(*(batcher.submit(rows[i:i + 1]) for i in range(4)))

    answers = asyncio.run(main())
    assert calls == [4]
    whole = runtime.predict(onnx_served.rows)
    for i, got in enumerate(answers):
        assert sorted(got) == ["label", "probabilities"]
        np.testing.assert_array_equal(got["label"], whole["label"][i:i + 1])
        np.testing.assert_array_equal(got["probabilities"], whole["probabilities"][i:i + 1])


@pytest.mark.parametrize(("tensor", "needle"), [
    (_tensor("input-0", IRIS_ROWS.astype(np.float32), "FP32"),
     "has no input 'input-0' (its inputs: X)"),
    (_tensor("X", IRIS_ROWS, "FP64"), "expects datatype FP32, got FP64"),
    (_tensor("X", IRIS_ROWS[:, :3].astype(np.float32), "FP32"),
     "expects shape [-1, 4], got [4, 3]"),
    (_tensor("X", IRIS_ROWS[0].astype(np.float32), "FP32"), "expects shape [-1, 4]"),
])
@slow
def test_onnx_bad_input_is_400_naming_the_input(onnx_served: Served, tensor: Any,
                                                needle: str) -> None:
    r = _v2_json(onnx_served, {"inputs": [tensor]})
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]
    r = _v1(onnx_served, [["a", "b", "c", "d"]])
    assert r.status_code == 400 and "expects FP32" in r.json()["error"]
    assert _v1(onnx_served, IRIS_ROWS.tolist()).status_code == 200


def _two_input_model(path: Path) -> None:
    """An ONNX graph with two named inputs and two outputs: sum = a + b, scaled = a * k."""
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 2])
    k = helper.make_tensor_value_info("k", TensorProto.INT64, [None, 2])
    total = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])
    scaled = helper.make_tensor_value_info("scaled", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([
        helper.make_node("Add", ["a", "b"], ["sum"]),
        helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["a", "kf"], ["scaled"])], "two", [a, b, k], [total, scaled])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


@slow
def test_onnx_model_with_several_named_inputs(models: Path) -> None:
    import onnxruntime as ort

    path = models / "onnx-two" / "model.onnx"
    path.parent.mkdir()
    _two_input_model(path)
    a = np.array([[1.5, 2.0], [3.0, -1.0]], dtype=np.float32)
    b = np.array([[0.25, 1.0], [2.0, 2.0]], dtype=np.float32)
    k = np.array([[2, 3], [4, 5]], dtype=np.int64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want_sum, want_scaled = session.run(["sum", "scaled"], {"a": a, "b": b, "k": k})
    served = _serve("two", path, "onnx", a, None)
    try:
        # Inputs in any order, by name; INT64 next to FP32.
        got = _v2_infer(served, [("k", k, "INT64"), ("b", b, "FP32"), ("a", a, "FP32")],
                        True, ["scaled", "sum"])
        np.testing.assert_array_equal(got["sum"], want_sum)
        np.testing.assert_array_equal(got["scaled"], want_scaled)
        missing = _v2_json(served, {"inputs": [_tensor("a", a, "FP32"),
                                               _tensor("b", b, "FP32")]})
        assert missing.status_code == 400
        assert "needs input 'k' (its inputs: a, b, k)" in missing.json()["error"]
        v1 = _v1(served, a.tolist())
        assert v1.status_code == 400 and "takes 3 named inputs" in v1.json()["error"]
    finally:
        served.server.stop()


def _plane(model_dir: Path, fmt: str) -> Any:
    """An in-process data plane over a loaded runtime, predicting inline (no server)."""
    from ketch.serving._dataplane import DataPlane
    from ketch.serving._metrics import ReplicaMetrics
    from ketch.serving._predict import Predictor
    from ketch.serving._runtimes import make_runtime

    runtime = make_runtime("m", str(model_dir), fmt)
    runtime.load()
    metrics = ReplicaMetrics("m")
    return DataPlane(runtime, metrics=metrics,
                     predictor=Predictor(runtime, metrics, mode="inline"))


def _handle(plane: Any, path: str, body: Any) -> tuple[int, Any]:
    from ketch.serving._http import Request

    status, raw, _, _ = plane.handle(Request("POST", path, b"", {}, json.dumps(body).encode()))
    return status, json.loads(raw)


def test_onnx_zipmap_output_is_left_out(tmp_path: Path) -> None:
    """skl2onnx's default classifier has a ZipMap output (a list of dicts), which no V2
    tensor can carry: the labels are served, the ZipMap is not."""
    from skl2onnx import to_onnx

    clf = LogisticRegression(max_iter=1000).fit(IRIS_X, IRIS_Y)
    (tmp_path / "model.onnx").write_bytes(
        to_onnx(clf, IRIS_X[:1].astype(np.float32)).SerializeToString())
    plane = _plane(tmp_path, "onnx")
    assert plane.runtime.metadata["outputs"] == [
        {"name": "output_label", "datatype": "INT64", "shape": [-1]}]
    status, body = _handle(plane, "/v2/models/m/infer", {"inputs": [
        _tensor("X", IRIS_ROWS.astype(np.float32), "FP32")]})
    assert status == 200, body
    assert [o["name"] for o in body["outputs"]] == ["output_label"]
    assert body["outputs"][0]["data"] == clf.predict(IRIS_ROWS).tolist()


def test_onnx_v1_casts_floats_down_but_never_to_integers(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["ids"], ["same"])], "ids",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None, 2])],
        [helper.make_tensor_value_info("same", TensorProto.INT64, [None, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "model.onnx"))
    plane = _plane(tmp_path, "onnx")
    status, body = _handle(plane, "/v1/models/m:predict", {"instances": [[1, 2], [3, 4]]})
    assert (status, body) == (200, {"predictions": [[1, 2], [3, 4]]})
    status, body = _handle(plane, "/v1/models/m:predict", {"instances": [[1.5, 2.0]]})
    assert status == 400
    assert body["error"] == "input 'ids': model m expects INT64, got float64 values"


# -- TorchScript -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_net() -> Any:
    """A small MLP (4 features, 16 hidden, 3 class scores) trained on iris."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    x = torch.from_numpy(IRIS_X.astype(np.float32))
    y = torch.from_numpy(IRIS_Y.astype(np.int64))
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    return net.eval()


@pytest.fixture(scope="module", params=["script", "trace"])
def torch_served(request: pytest.FixtureRequest, models: Path,
                 iris_net: Any) -> Iterator[Served]:
    import torch

    example = torch.from_numpy(IRIS_X[:1].astype(np.float32))
    with warnings.catch_warnings():
        # PyTorch 2.13 deprecates TorchScript (for torch.export); Triton, and so KServe,
        # still serve it, and so does ketch.
        warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
        module = (torch.jit.script(iris_net) if request.param == "script"
                  else torch.jit.trace(iris_net, example))
        path = models / f"torch-{request.param}" / "model.pt"
        path.parent.mkdir()
        module.save(str(path))
        loaded = torch.jit.load(str(path))
    rows = IRIS_ROWS.astype(np.float32)
    torch.set_num_threads(1)  # as the server runs it
    with torch.inference_mode():
        expected = loaded(torch.from_numpy(rows)).numpy()
    assert expected.argmax(axis=1).tolist() == IRIS_Y[[0, 60, 120, 149]].tolist()
    served = _serve("iris-torch", path, "pytorch", rows, expected)
    yield served
    served.server.stop()


@slow
def test_torchscript_v1_and_v2_match_the_module(torch_served: Served) -> None:
    expected = torch_served.expected
    # V1 JSON floats (float64) are given to the module as its float32.
    r = _v1(torch_served, IRIS_ROWS.tolist())
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected.tolist()}
    for binary in (True, False):
        for name in ("INPUT__0", "x"):  # Triton's name, or any: the module takes one
            got = _v2_infer(torch_served, [(name, torch_served.rows, "FP32")], binary,
                            ["OUTPUT__0"])["OUTPUT__0"]
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, expected)
    got = _v2_infer(torch_served, [("INPUT__0", IRIS_ROWS, "FP64")], True,
                    ["OUTPUT__0"])["OUTPUT__0"]
    np.testing.assert_array_equal(got, expected)
    meta = _metadata(torch_served)
    assert meta["platform"] == "pytorch_libtorch"
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("INPUT__0", "FP32")]
    assert [(t["name"], t["datatype"]) for t in meta["outputs"]] == [("OUTPUT__0", "FP32")]


@slow
def test_torchscript_model_error_is_500_with_its_cause_and_the_server_survives(
        torch_served: Served) -> None:
    r = _v1(torch_served, IRIS_ROWS[:, :3].tolist())
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert "mat1 and mat2 shapes cannot be multiplied" in error
    assert "Traceback" not in error and "\n" not in error
    r = _v2_json(torch_served, {"inputs": [{"name": "INPUT__0", "shape": [1],
                                            "datatype": "BYTES", "data": ["x"]}]})
    assert r.status_code == 400 and "numeric" in r.json()["error"]
    assert _v1(torch_served, IRIS_ROWS.tolist()).status_code == 200
    assert torch_served.server.proc.poll() is None


@slow  # importing torch takes seconds
def test_torchscript_inputs_by_name_or_index_and_tuple_outputs(tmp_path: Path) -> None:
    """A two-argument module: inputs by Triton's INPUT__i or forward's argument names, in
    any order; a tuple's items come back as OUTPUT__0, OUTPUT__1."""
    import torch

    class Scale(torch.nn.Module):
        def forward(self, x: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
            return x * scale, x.sum(dim=1)

    x = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    k = np.array([[2.0], [0.5]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
        torch.jit.trace(Scale(), (torch.from_numpy(x), torch.from_numpy(k))).save(
            str(tmp_path / "model.pt"))
    plane = _plane(tmp_path, "pytorch")
    assert [t["name"] for t in plane.runtime.metadata["inputs"]] == ["INPUT__0", "INPUT__1"]
    for first, second in (("x", "scale"), ("INPUT__0", "INPUT__1")):
        status, body = _handle(plane, "/v2/models/m/infer", {"inputs": [
            _tensor(second, k, "FP32"), _tensor(first, x, "FP32")]})
        assert status == 200, body
        assert [(o["name"], o["data"]) for o in body["outputs"]] == [
            ("OUTPUT__0", [2.0, 4.0, 1.5, 2.0]), ("OUTPUT__1", [3.0, 7.0])]
    status, body = _handle(plane, "/v2/models/m/infer", {"inputs": [
        _tensor("x", x, "FP32"), _tensor("y", k, "FP32")]})
    assert status == 400
    assert "unexpected input 'y' (it takes INPUT__0, INPUT__1 or x, scale)" in body["error"]
    status, body = _handle(plane, "/v1/models/m:predict", {"instances": x.tolist()})
    assert status == 400 and "takes 2 inputs (x, scale)" in body["error"]


# -- load failures ---------------------------------------------------------------------


def _run_cli(*args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(modelserver_cmd(*args, "--port", "0"), capture_output=True,
                          text=True, timeout=120, check=False, env=env)


@pytest.mark.parametrize(("fmt", "filename"), [
    ("xgboost", "model.bst"), ("xgboost", "model.json"), ("lightgbm", "model.txt"),
    ("onnx", "model.onnx"), ("pytorch", "model.pt")])
@slow
def test_corrupt_model_file_exits_with_one_clear_line(tmp_path: Path, fmt: str,
                                                      filename: str) -> None:
    (tmp_path / filename).write_bytes(b"\x00 this is not a model \xff")
    proc = _run_cli("--name", "bad", "--model-dir", str(tmp_path), "--format", fmt)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"modelserver: cannot load {fmt} model {tmp_path / filename}")


# A stand-in for a framework that is not installed: it cannot be uninstalled from the
# shared test venv, so a sitecustomize on PYTHONPATH makes its import fail the way a
# missing package's does.
BLOCKER = '''
import os
import sys

BLOCKED = set(os.environ.get("KETCH_TEST_BLOCK_IMPORTS", "").split(","))


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
'''


def blocked_env(tmp_path: Path, module: str) -> dict[str, str]:
    """The environment of a process in which ``import module`` fails as if not installed."""
    import os

    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": str(site), "KETCH_TEST_BLOCK_IMPORTS": module}


@pytest.mark.parametrize(("fmt", "module", "package"), [
    ("xgboost", "xgboost", "xgboost-cpu"), ("lightgbm", "lightgbm", "lightgbm"),
    ("onnx", "onnxruntime", "onnxruntime"), ("pytorch", "torch", "torch")])
@slow
def test_missing_framework_is_one_line_naming_the_package(
        tmp_path: Path, fmt: str, module: str, package: str) -> None:
    """The framework's import is made to fail by a sitecustomize (see ``BLOCKER``)."""
    suffix = {"xgboost": ".json", "lightgbm": ".txt", "onnx": ".onnx", "pytorch": ".pt"}[fmt]
    (tmp_path / f"model{suffix}").write_bytes(b"never read")
    proc = _run_cli("--name", "m", "--model-dir", str(tmp_path), "--format", fmt,
                    env=blocked_env(tmp_path, module))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"need the {package} package" in lines[0]
    assert f"pip install {package}" in lines[0]
    assert "ketch[serving-frameworks]" in lines[0]


@slow
def test_model_file_named_model_wins_over_other_files(models: Path,
                                                      xgb_booster: Any) -> None:
    """KServe's servers load model.<ext>: a metadata.json beside model.json is not it."""
    path = models / "xgb-with-metadata" / "model.json"
    path.parent.mkdir()
    xgb_booster.save_model(str(path))
    (path.parent / "a-metadata.json").write_text(json.dumps({"author": "alice"}))
    served = _serve("flowers", path, "xgboost", IRIS_ROWS, None)
    try:
        r = _v1(served, IRIS_ROWS.tolist())
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == _xgb_predict(xgb_booster, IRIS_ROWS).tolist()
    finally:
        served.server.stop()


# -- InferenceServices -----------------------------------------------------------------


ISVC_YAML = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: flowers-legacy
spec:
  predictor:
    xgboost:
      storageUri: {uri}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: flowers
spec:
  predictor:
    model:
      modelFormat:
        name: xgboost
      storageUri: {uri}
"""


def _ketch(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=180, check=False)


def _delete_all(server: Any) -> None:
    """Model servers outlive their control plane by design, so each test deletes its
    InferenceServices, which stops their processes."""
    from conftest import wait_for
    from ketch import Client

    with Client(server.url) as client:
        for obj in client.list("isvc").items:
            client.delete("isvc", obj.name)
        wait_for(lambda: not client.list("isvc").items, timeout=60,
                 message="inference services deleted")


@slow
def test_xgboost_inference_service_by_legacy_key_and_model_format(
        ketch_server: Any, models: Path, xgb_booster: Any) -> None:
    path = models / "isvc-xgb" / "model.json"
    path.parent.mkdir()
    xgb_booster.save_model(str(path))
    expected = _xgb_predict(xgb_booster, IRIS_ROWS)
    manifest = models / "isvc-xgb.yaml"
    manifest.write_text(ISVC_YAML.format(uri=path.parent.as_uri()))
    try:
        applied = _ketch(ketch_server, "apply", "-f", str(manifest))
        assert applied.returncode == 0, applied.stderr
        assert "inferenceservice.serving.kserve.io/flowers-legacy created" in applied.stdout
        assert "inferenceservice.serving.kserve.io/flowers created" in applied.stdout
        for name in ("flowers-legacy", "flowers"):
            waited = _ketch(ketch_server, "wait", "isvc", name, "--for=condition=Ready",
                            "--timeout", "120")
            assert waited.returncode == 0, waited.stderr
            got = _ketch(ketch_server, "get", "isvc", name, "-o", "json")
            status = json.loads(got.stdout)["status"]
            url = status["url"]
            assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
            with httpx.Client(base_url=url, timeout=60) as http:
                v1 = http.post(f"/v1/models/{name}:predict",
                               json={"instances": IRIS_ROWS.tolist()})
                assert v1.status_code == 200, v1.text
                assert v1.json() == {"predictions": expected.tolist()}
                meta = http.get(f"/v2/models/{name}").json()
                assert meta["platform"] == "xgboost"
            client = triton.InferenceServerClient(url.removeprefix("http://"))
            try:
                inp = triton.InferInput("input-0", list(IRIS_ROWS.shape), "FP64")
                inp.set_data_from_numpy(IRIS_ROWS)
                out = client.infer(name, [inp]).as_numpy("output-0")
            finally:
                client.close()
            np.testing.assert_array_equal(out, expected)
    finally:
        _delete_all(ketch_server)


@slow
def test_missing_framework_is_a_condition_on_the_service(
        server_factory: Any, tmp_path: Path, models: Path,
        xgb_booster: Any) -> None:
    """The control plane (and so its model servers) runs with xgboost's import made to
    fail by a sitecustomize (see ``BLOCKER``): a stand-in for xgboost not installed."""
    from conftest import wait_for
    from ketch import Client

    env = blocked_env(tmp_path, "xgboost")
    server = server_factory(tmp_path / "home", command="server",
                            PYTHONPATH=env["PYTHONPATH"],
                            KETCH_TEST_BLOCK_IMPORTS="xgboost")
    path = models / "isvc-no-xgb" / "model.json"
    path.parent.mkdir()
    xgb_booster.save_model(str(path))
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text(ISVC_YAML.format(uri=path.parent.as_uri()).split("---\n")[1])
    try:
        applied = _ketch(server, "apply", "-f", str(manifest))
        assert applied.returncode == 0, applied.stderr
        with Client(server.url) as client:
            failed = wait_for(lambda: (o := client.get("isvc", "flowers")).status.get(
                "modelStatus", {}).get("lastFailureInfo") and o, timeout=90,
                message="load failure reported")
            status = failed.status  # type: ignore[attr-defined]
            info = status["modelStatus"]["lastFailureInfo"]
            assert info["reason"] == "ModelLoadFailed"
            assert "need the xgboost-cpu package" in info["message"]
            assert status["modelStatus"]["states"]["targetModelState"] == "FailedToLoad"
            ready = next(c for c in status["conditions"] if c["type"] == "Ready")
            assert ready["status"] == "False"
            # The control plane is up and answers everything else.
            assert client.get("isvc", "flowers").name == "flowers"
            assert server.proc.poll() is None
    finally:
        _delete_all(server)
