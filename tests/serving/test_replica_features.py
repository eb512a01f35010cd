"""The model server's batcher, request logger, transformer, metrics, off-loop predicts and
graceful stop, driven through a real ``python -m ketch.serving.modelserver`` process.

The logger's HTTP receiver is a small ``http.server`` in the test process standing in for
a CloudEvents sink (a Knative broker or KServe's message-dumper cannot run here).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from _modelserver import ModelServer, start_modelserver
from conftest import wait_for

pytestmark = pytest.mark.slow

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]

TRANSFORMER = '''
import numpy as np

class Scale:
    """Rows arrive in millimetres; the model wants centimetres. Labels go back as names."""

    def __init__(self, name):
        self.name = name

    async def preprocess(self, payload, headers):
        self.last_header = headers.get("x-tenant")
        if "instances" in payload:
            if payload["instances"] == "explode":
                raise ValueError("cannot read that")
            return {"instances": [[v / 10 for v in row] for row in payload["instances"]]}
        for inp in payload["inputs"]:
            inp["data"] = inp["data"] / 10
        return payload

    def postprocess(self, response, headers):
        names = ["setosa", "versicolor", "virginica"]
        tenant = headers.get("x-tenant", "")
        if "predictions" in response:
            return {"predictions": [names[i] for i in response["predictions"]],
                    "tenant": tenant}
        out = response["outputs"][0]
        out["data"] = np.array([names[i] for i in out["data"]], dtype=object)
        return response
'''

SLOW_MODEL = '''
import time
from pathlib import Path

class Gated:
    """A sync predict that blocks until the test creates its release file; it marks its
    start and end in files the test reads."""

    def __init__(self, model_dir):
        self.dir = Path(model_dir)

    def predict(self, payload):
        (tag,) = payload["instances"]
        (self.dir / f"started-{tag}").touch()
        deadline = time.monotonic() + 60
        while not (self.dir / f"release-{tag}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        (self.dir / f"finished-{tag}").touch()
        return [tag]
'''


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


def _v2(rows: list[list[float]]) -> dict[str, Any]:
    return {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64",
                        "data": rows}]}


# -- batcher -----------------------------------------------------------------------------


def test_concurrent_requests_are_predicted_in_one_batch(iris: Any) -> None:
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                            "sklearn", "--max-batch-size", "8", "--max-latency", "10000")
    try:
        rows = [[5.0 + i / 10, 3.0, 1.5 + i / 3, 0.2 + i / 4] for i in range(8)]
        want = iris[1].predict(np.asarray(rows)).tolist()

        def one(i: int) -> Any:
            body = _v2([rows[i]]) if i % 2 else None
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                if body is not None:
                    return c.post("/v2/models/iris/infer", json=body).json()[
                        "outputs"][0]["data"][0]
                return c.post("/v1/models/iris:predict",
                              json={"instances": [rows[i]]}).json()["predictions"][0]

        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(one, range(8)))
        assert got == want  # each request got its own row's answer back
        text = httpx.get(f"{srv.url}/metrics", timeout=10).text
        # One predict of 8 rows, closed by maxBatchSize long before the 10 s maxLatency.
        assert _metric(text, "ketch_batch_size_count") == 1
        assert _metric(text, "ketch_batch_size_sum") == 8
        assert 'ketch_batch_size_bucket{model="iris",le="4"} 0' in text
        assert 'ketch_batch_size_bucket{model="iris",le="8"} 1' in text
        assert _metric(text, "ketch_predict_duration_seconds_count") == 1
    finally:
        srv.stop()


def test_a_lone_request_is_answered_after_max_latency(iris: Any) -> None:
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                            "sklearn", "--max-batch-size", "32", "--max-latency", "50")
    try:
        r = httpx.post(f"{srv.url}/v2/models/iris/infer", json=_v2(ROWS), timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == iris[1].predict(np.asarray(ROWS)).tolist()
        text = httpx.get(f"{srv.url}/metrics", timeout=10).text
        assert _metric(text, "ketch_batch_size_count") == 1
        assert _metric(text, "ketch_batch_size_sum") == 2
        # A bad request never reaches the batch: still the KServe error.
        r = httpx.post(f"{srv.url}/v2/models/iris/infer", json=_v2([[1.0, 2.0]]) | {
            "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64",
                        "data": [1.0, 2.0]}]}, timeout=30)
        assert r.status_code == 400
        assert "expects 4 features" in r.json()["error"]
    finally:
        srv.stop()


RECORDER = '''
import json
from pathlib import Path

class Recorder:
    """Doubles each instance and records the size of every batch it is given."""

    def __init__(self, model_dir):
        self.log = Path(model_dir) / "batches.jsonl"

    def predict(self, payload):
        with self.log.open("a") as f:
            f.write(json.dumps(len(payload["instances"])) + "\\n")
        return {"predictions": [2 * x for x in payload["instances"]]}
'''


def test_custom_model_sees_one_payload_per_batch(tmp_path: Path) -> None:
    (tmp_path / "recorder.py").write_text(RECORDER)
    srv = start_modelserver("--name", "rec", "--model-dir", str(tmp_path), "--format",
                            "custom", "--custom", "recorder:Recorder",
                            "--max-batch-size", "6", "--max-latency", "10000")
    try:
        def one(i: int) -> Any:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                # requests of 1, 2 and 3 instances: 6 in all, one batch
                return c.post("/v1/models/rec:predict",
                              json={"instances": [i] * i}).json()

        with ThreadPoolExecutor(3) as pool:
            got = list(pool.map(one, (1, 2, 3)))
        assert got == [{"predictions": [2]}, {"predictions": [4, 4]},
                       {"predictions": [6, 6, 6]}]
        assert (tmp_path / "batches.jsonl").read_text().split() == ["6"]
    finally:
        srv.stop()


# -- logger ------------------------------------------------------------------------------


class _Sink(BaseHTTPRequestHandler):
    events: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).events.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    events: list[tuple[dict[str, str], bytes]] = []
    handler = type("Sink", (_Sink,), {"events": events})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events", events
    server.shutdown()
    server.server_close()


def test_logger_posts_cloudevents(iris: Any, sink: Any) -> None:
    url, events = sink
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                            "sklearn", "--logger-url", url, "--logger-mode", "all",
                            "--service", "iris-svc", "--namespace", "team-a",
                            "--logger-metadata-header", "X-Tenant")
    try:
        r = httpx.post(f"{srv.url}/v1/models/iris:predict", json={"instances": ROWS},
                       headers={"x-tenant": "acme", "x-request-id": "req-7"}, timeout=30)
        assert r.status_code == 200
        wait_for(lambda: len(events) >= 2, timeout=15, message="two CloudEvents")
        by_type = {h["ce-type"]: (h, b) for h, b in events}
        req_h, req_b = by_type["org.kubeflow.serving.inference.request"]
        resp_h, resp_b = by_type["org.kubeflow.serving.inference.response"]
        assert json.loads(req_b) == {"instances": ROWS}
        assert json.loads(resp_b) == r.json()
        assert req_h["ce-id"] == resp_h["ce-id"] == "req-7"
        for h in (req_h, resp_h):
            assert json.loads(h["ce-metadata"]) == {"X-Tenant": ["acme"]}
            assert h["ce-endpoint"] == ""
            assert h["ce-specversion"] == "1.0"
            assert h["ce-inferenceservicename"] == "iris-svc"
            assert h["ce-namespace"] == "team-a"
            assert h["ce-component"] == "predictor"
            assert h["ce-source"]
            assert h["ce-time"]
            assert h["content-type"] == "application/json"
        # Health checks and metrics are not inference: not logged.
        httpx.get(f"{srv.url}/v2/health/ready", timeout=10)
        text = httpx.get(f"{srv.url}/metrics", timeout=10).text
        assert 'ketch_request_logger_events_total{model="iris",outcome="sent"} 2' in text
        assert len(events) == 2
    finally:
        srv.stop()


def test_logger_file_mode_writes_json_lines(iris: Any, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "iris.jsonl"
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                            "sklearn", "--logger-url", f"file://{log}", "--logger-mode",
                            "response")
    try:
        r = httpx.post(f"{srv.url}/v2/models/iris/infer", json=_v2(ROWS), timeout=30)
        assert r.status_code == 200
        r = httpx.post(f"{srv.url}/v2/models/iris/infer", json={"inputs": []}, timeout=30)
        assert r.status_code == 400
    finally:
        srv.stop()  # a clean stop delivers what is buffered
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["type"] for e in lines] == ["org.kubeflow.serving.inference.response"] * 2
    assert lines[0]["data"]["outputs"][0]["name"] == "output-0"
    assert "error" in lines[1]["data"]
    assert lines[0]["inferenceservicename"] == "iris"
    assert lines[0]["specversion"] == "1.0"
    assert lines[0]["id"] != lines[1]["id"]


def test_logger_to_a_dead_receiver_never_slows_replies(iris: Any) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                            "sklearn", "--logger-url", f"http://127.0.0.1:{port}/")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for _ in range(20):
                assert c.post("/v1/models/iris:predict",
                              json={"instances": ROWS}).status_code == 200
            wait_for(lambda: 'outcome="failed"} 40' in c.get("/metrics").text, timeout=30,
                     message="40 failed deliveries counted")
    finally:
        srv.stop()


def test_bad_logger_url_is_a_clear_startup_error(iris: Any) -> None:
    with pytest.raises(RuntimeError, match=r"--logger-url.*ftp"):
        start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                          "sklearn", "--logger-url", "ftp://example.com/x")


# -- transformer -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transformed(iris: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    code = tmp_path_factory.mktemp("transformer")
    (code / "scale.py").write_text(TRANSFORMER)
    srv = start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                            "sklearn", "--transformer", "scale:Scale",
                            "--transformer-dir", str(code))
    yield srv
    srv.stop()


def test_transformer_v1(transformed: ModelServer, iris: Any) -> None:
    names = ["setosa", "versicolor", "virginica"]
    want = [names[i] for i in iris[1].predict(np.asarray(ROWS))]
    mm = [[v * 10 for v in row] for row in ROWS]
    r = httpx.post(f"{transformed.url}/v1/models/iris:predict", json={"instances": mm},
                   headers={"x-tenant": "acme"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": want, "tenant": "acme"}


def test_transformer_v2_binary_and_json(transformed: ModelServer, iris: Any) -> None:
    import tritonclient.http as triton

    names = ["setosa", "versicolor", "virginica"]
    want = [names[i] for i in iris[1].predict(np.asarray(ROWS))]
    client = triton.InferenceServerClient(f"127.0.0.1:{transformed.port}")
    try:
        for binary in (True, False):
            inp = triton.InferInput("input-0", [2, 4], "FP64")
            inp.set_data_from_numpy(np.asarray(ROWS) * 10, binary_data=binary)
            out = triton.InferRequestedOutput("output-0", binary_data=binary)
            got = client.infer("iris", [inp], outputs=[out]).as_numpy("output-0")
            assert got is not None
            assert [v.decode() if isinstance(v, bytes) else v for v in got] == want
    finally:
        client.close()


def test_transformer_error_is_500_and_server_survives(transformed: ModelServer) -> None:
    r = httpx.post(f"{transformed.url}/v1/models/iris:predict",
                   json={"instances": "explode"}, timeout=30)
    assert r.status_code == 500
    assert "preprocess failed: ValueError: cannot read that" in r.json()["error"]
    r = httpx.post(f"{transformed.url}/v1/models/iris:predict",
                   json={"instances": [[68, 28, 48, 14]]}, timeout=30)
    assert r.status_code == 200


def test_missing_transformer_class_fails_at_start(iris: Any) -> None:
    with pytest.raises(RuntimeError, match="no_such_transformer"):
        start_modelserver("--name", "iris", "--model-dir", str(iris[0]), "--format",
                          "sklearn", "--transformer", "no_such_transformer:T")


# -- off-loop predicts and graceful stop --------------------------------------------------


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[tuple[ModelServer, Path]]:
    (tmp_path / "gated.py").write_text(SLOW_MODEL)
    srv = start_modelserver("--name", "slow", "--model-dir", str(tmp_path), "--format",
                            "custom", "--custom", "gated:Gated", "--drain-seconds", "60")
    yield srv, tmp_path
    srv.stop()


def test_slow_predict_does_not_block_health_checks(slow: tuple[ModelServer, Path]) -> None:
    srv, marks = slow
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{srv.url}/v1/models/slow:predict",
                              json={"instances": ["a"]}, timeout=60)
        wait_for((marks / "started-a").exists, timeout=10, message="the predict to start")
        # The sync predict is blocked until released, yet the event loop still answers.
        for _ in range(5):
            assert httpx.get(f"{srv.url}/v2/health/ready", timeout=30).status_code == 200
        assert httpx.get(f"{srv.url}/metrics", timeout=30).status_code == 200
        assert not (marks / "finished-a").exists()
        (marks / "release-a").touch()
        assert pending.result().json() == {"predictions": ["a"]}


def test_sigterm_drains_requests_in_flight(slow: tuple[ModelServer, Path]) -> None:
    srv, marks = slow
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{srv.url}/v1/models/slow:predict",
                              json={"instances": ["b"]}, timeout=60)
        wait_for((marks / "started-b").exists, timeout=10, message="the predict to start")
        srv.proc.terminate()
        # Stopping: no new connections are taken while the one in flight is finishing.
        wait_for(lambda: not _accepts(srv.port), timeout=10, message="the listener closed")
        assert srv.proc.poll() is None
        (marks / "release-b").touch()
        r = pending.result()
        assert r.status_code == 200
        assert r.json() == {"predictions": ["b"]}
        assert r.headers.get("connection") == "close"
    assert srv.proc.wait(timeout=30) == 0


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False
