"""Property-based requests against a real InferenceService's data planes (Open Inference
Protocol V2 and KServe V1), through the service's own URL and through the main server's
``/serving/{namespace}/{name}`` route: no request answers 5xx, none hangs.

Hypothesis builds hostile bodies: arbitrary JSON, V2 requests with wrong shapes, unknown
datatypes, huge and negative dimensions, mixed and deeply nested data, binary-extension
headers that lie about lengths, and bytes that are not JSON at all. Every 5xx fails the test
but one: 501 for ``:explain`` on a model without an explainer, which is KServe's own answer
(its ``Model.explain`` raises ``NotImplementedError``, mapped to 501). A 503 (the queue-full
answer) cannot happen to a fuzzer sending one request at a time.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import ServerProcess, start_server
from ketch import Client

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 150
DATATYPES = ["FP32", "FP64", "INT64", "INT32", "INT8", "UINT8", "BOOL", "BYTES", "FP16",
             "fp32", "", "COMPLEX", "BF16"]

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=False) | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=6)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=6),
                           max_leaves=40)
numbers = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers(-5, 5)
rows = st.lists(st.lists(numbers, min_size=0, max_size=6), min_size=0, max_size=9)
dims = st.lists(st.integers(min_value=-2, max_value=2**40) | st.sampled_from([0, 1, 4, 8]),
                max_size=4)

v2_input = st.fixed_dictionaries(
    {"name": st.sampled_from(["input-0", "x", ""]) | st.text(max_size=10),
     "shape": dims | st.just([1, 4]) | st.just([8, 4]),
     "datatype": st.sampled_from(DATATYPES),
     "data": rows | json_values | st.lists(numbers, max_size=40)},
    optional={"parameters": json_values})
v2_body = st.fixed_dictionaries(
    {"inputs": st.lists(v2_input, max_size=3) | json_values},
    optional={"id": json_values, "parameters": json_values,
              "outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=10)},
                                                        optional={"parameters": json_values}),
                                  max_size=3)})
v1_body = (st.fixed_dictionaries({"instances": rows | json_values})
           | st.fixed_dictionaries({"inputs": rows | json_values}) | json_values)

PATHS = ["/v2/models/{m}/infer", "/v2/models/{m}/versions/1/infer", "/v1/models/{m}:predict",
         "/v2/models/{m}", "/v2/models/{m}/ready", "/v1/models/{m}", "/v2/health/ready",
         "/v2/health/live", "/v2", "/v1/models/{m}:explain"]


@st.composite
def requests_(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    model = draw(st.sampled_from(["iris"] * 6 + ["nope", "..", "iris%2F..", "a" * 300]))
    path = draw(st.sampled_from(PATHS[:3] * 3 + PATHS[3:])).format(m=model)
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE"]))
    headers = {"Content-Type": draw(st.sampled_from(
        ["application/json", "application/octet-stream", "text/plain", ""]))}
    kind = draw(st.sampled_from(["v2", "v1", "bytes", "binary"]))
    if kind == "v2":
        body = json.dumps(draw(v2_body)).encode()
    elif kind == "v1":
        body = json.dumps(draw(v1_body)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    else:  # the binary tensor extension, with a header length that may lie
        header = json.dumps(draw(v2_body)).encode()
        tail = draw(st.binary(max_size=64))
        length = draw(st.sampled_from([len(header), 0, len(header) + len(tail) + 9, -1]))
        headers["Inference-Header-Content-Length"] = str(length)
        body = header + tail
    return method, path, headers, body


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model_dir = tmp_path_factory.mktemp("iris")
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), model_dir / "model.joblib")
    server = start_server(tmp_path_factory.mktemp("home"), command="server")
    client = Client(server.url)
    client.apply({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                  "metadata": {"name": "iris"},
                  "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                                   "storageUri": model_dir.as_uri()}}}})
    ready = client.wait("isvc", "iris", condition="Ready", timeout=120)
    yield server, ready.status["url"]
    client.delete("isvc", "iris")
    client.close()
    server.kill(signal.SIGTERM)


@pytest.mark.parametrize("route", ["service-url", "main-server"])
def test_no_data_plane_request_answers_5xx_or_hangs(served: tuple[ServerProcess, str],
                                                    route: str) -> None:
    server, service_url = served
    base = service_url if route == "service-url" else f"{server.url}/serving/default/iris"
    codes: Counter[int] = Counter()
    failures: list[str] = []
    with httpx.Client(base_url=base, timeout=30) as http:

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(request=requests_())
        def check(request: tuple[str, str, dict[str, str], bytes]) -> None:
            method, path, headers, body = request
            try:
                response = http.request(method, path, headers=headers,
                                        content=body if method in ("POST", "PUT") else None)
            except httpx.TimeoutException:
                failures.append(f"{method} {path} {body[:200]!r}: no answer in 30 s")
                return
            codes[response.status_code] += 1
            if response.status_code >= 500 and not (
                    response.status_code == 501 and path.endswith(":explain")):
                failures.append(f"{method} {path} {headers} {body[:300]!r}: "
                                f"{response.status_code} {response.text[:300]}")

        check()
        # The service still answers a good request after the barrage.
        good = http.post("/v2/models/iris/infer", json={"inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP64",
             "data": [[5.1, 3.5, 1.4, 0.2]]}]})
    assert not failures, "\n".join(failures[:15])
    assert good.status_code == 200, good.text
    assert server.proc.poll() is None
    # Requests reached the handlers and were refused as bad input, not only routed away.
    assert codes[400] + codes[422] > 20 and codes[404] > 0, codes
