"""Fast tests of the model server's parts, in-process on real sockets and real models:
the HTTP/1.1 layer (pipelining, 100-continue, chunked bodies, limits, HEAD, malformed
requests), the batcher, the offload policy, the sklearn fast path and the JSON codec."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ketch.serving._batcher import Batcher, BatchTimeout
from ketch.serving._dataplane import DataPlane
from ketch.serving._http import HTTPServer
from ketch.serving._json import dumps, loads
from ketch.serving._metrics import ReplicaMetrics
from ketch.serving._predict import Predictor
from ketch.serving._replica_options import SpecError, replica_args
from ketch.serving._runtimes import Runtime, make_runtime
from ketch.serving._sklearn_fast import fast_predict

X, Y = load_iris(return_X_y=True)
INFER = b'{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}'


class SleepyRuntime(Runtime):
    """A model that takes ``delay`` seconds and returns each row's sum (records calls)."""

    platform = "test"

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        super().__init__("sleepy", "")
        self.delay = delay
        self.fail = fail
        self.calls: list[int] = []
        self.ready = True

    def load(self) -> None:
        self.ready = True

    def predict(self, data: Any) -> Any:
        self.calls.append(len(data))
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model exploded")
        return np.asarray(data).sum(axis=1)


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("iris")
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, Y), d / "model.joblib")
    return d


@asynccontextmanager
async def serving(model_dir: Path, **limits: Any) -> AsyncIterator[int]:
    runtime = make_runtime("iris", str(model_dir), "sklearn")
    runtime.load()
    server = HTTPServer(DataPlane(runtime).handle, **limits)
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await server.listen(sock)
    try:
        yield port
    finally:
        await server.stop(grace=2)


async def _exchange(port: int, raw: bytes, responses: int = 1) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    out = []
    for _ in range(responses):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = b"" if raw.startswith(b"HEAD") else await reader.readexactly(length)
        out.append(head + body)
    writer.close()
    return out


def _run(coro: Callable[[], Any]) -> Any:
    return asyncio.run(coro())


def _post(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
            b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


# -- the HTTP layer ------------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(iris_dir: Path) -> None:
    async def go() -> list[bytes]:
        async with serving(iris_dir) as port:
            raw = (_post(INFER) + b"GET /v2/models/nope HTTP/1.1\r\nhost: x\r\n\r\n"
                   + b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
            return await _exchange(port, raw, responses=3)

    first, second, third = _run(go)
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert b'"output-0"' in first
    assert second.startswith(b"HTTP/1.1 404 ")
    assert b"model nope not found" in second
    assert third.endswith(b'{"live":true}')


def test_expect_continue_and_chunked_body(iris_dir: Path) -> None:
    async def go() -> bytes:
        async with serving(iris_dir) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /v2/models/iris/infer HTTP/1.1\r\nhost: x\r\n"
                         b"expect: 100-continue\r\ntransfer-encoding: chunked\r\n\r\n")
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            half = len(INFER) // 2
            for part in (INFER[:half], INFER[half:]):
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            writer.write(b"0\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.close()
            return head

    assert _run(go).startswith(b"HTTP/1.1 200 OK")


def test_body_over_the_limit_is_413_and_the_connection_closes(iris_dir: Path) -> None:
    async def go() -> list[bytes]:
        async with serving(iris_dir, max_body=64) as port:
            return await _exchange(port, _post(INFER))

    (reply,) = _run(go)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in reply
    assert b"larger than 64 bytes" in reply


def test_malformed_request_is_400(iris_dir: Path) -> None:
    async def go() -> list[bytes]:
        async with serving(iris_dir) as port:
            return await _exchange(port, b"THIS IS NOT HTTP\r\n\r\n")

    (reply,) = _run(go)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"malformed HTTP request" in reply


def test_oversized_headers_are_400(iris_dir: Path) -> None:
    async def go() -> list[bytes]:
        async with serving(iris_dir) as port:
            junk = b"".join(b"x-junk-%d: %s\r\n" % (i, b"y" * 1000) for i in range(80))
            return await _exchange(port, b"GET /v2/health/live HTTP/1.1\r\n" + junk + b"\r\n")

    (reply,) = _run(go)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"headers larger than 65536 bytes" in reply


def test_head_has_headers_but_no_body(iris_dir: Path) -> None:
    async def go() -> list[bytes]:
        async with serving(iris_dir) as port:
            return await _exchange(port, b"HEAD /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n")

    (reply,) = _run(go)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: 14" in reply
    assert reply.endswith(b"\r\n\r\n")


def test_http_10_closes_after_the_answer(iris_dir: Path) -> None:
    async def go() -> tuple[bytes, bytes]:
        async with serving(iris_dir) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 10)  # EOF: the server closed
            writer.close()
            return data, b""

    data, _ = _run(go)
    assert b"connection: close" in data
    assert data.endswith(b'{"live":true}')


# -- batcher -------------------------------------------------------------------------------


def _batcher(runtime: SleepyRuntime, **kw: Any) -> Batcher:
    return Batcher(Predictor(runtime, ReplicaMetrics("m"), mode="inline").run, **kw)


def test_batcher_splits_one_predict_back_per_request() -> None:
    runtime = SleepyRuntime()

    async def go() -> list[Any]:
        b = _batcher(runtime, max_batch_size=6, max_latency_ms=10_000)
        parts = [np.full((n, 2), float(i)) for i, n in enumerate((1, 2, 3))]
        return list(await asyncio.gather(*(b.submit(p) for p in parts)))

    out = _run(go)
    assert runtime.calls == [6]
    assert [o.tolist() for o in out] == [[0.0], [2.0, 2.0], [4.0, 4.0, 4.0]]


def test_batcher_closes_on_max_latency_and_runs_big_requests_alone() -> None:
    runtime = SleepyRuntime()

    async def go() -> None:
        b = _batcher(runtime, max_batch_size=4, max_latency_ms=20)
        await b.submit(np.ones((1, 2)))  # alone: the timer closes the batch
        await asyncio.gather(b.submit(np.ones((9, 2))), b.submit(np.ones((1, 2))))

    _run(go)
    assert sorted(runtime.calls) == [1, 1, 9]


def test_batcher_keeps_incompatible_shapes_apart() -> None:
    runtime = SleepyRuntime()

    async def go() -> None:
        b = _batcher(runtime, max_batch_size=10, max_latency_ms=20)
        await asyncio.gather(b.submit(np.ones((1, 2))), b.submit(np.ones((1, 3))))

    _run(go)
    assert runtime.calls == [1, 1]


def test_batcher_model_error_reaches_every_request_and_timeout() -> None:
    async def failing() -> list[Any]:
        b = _batcher(SleepyRuntime(fail=True), max_batch_size=2, max_latency_ms=10_000)
        return list(await asyncio.gather(b.submit(np.ones((1, 2))), b.submit(np.ones((1, 2))),
                                         return_exceptions=True))

    results = _run(failing)
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)

    async def slow() -> None:
        b = Batcher(Predictor(SleepyRuntime(delay=1.0), ReplicaMetrics("m"),
                              mode="thread").run, max_batch_size=1, timeout_s=0.05)
        await b.submit(np.ones((1, 2)))

    with pytest.raises(BatchTimeout, match=r"batcher timeout of 0\.05s"):
        _run(slow)


def test_batcher_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="maxBatchSize"):
        _batcher(SleepyRuntime(), max_batch_size=0)


# -- offload policy ------------------------------------------------------------------------


def test_auto_offload_keeps_fast_models_inline_and_slow_ones_off_loop() -> None:
    fast = Predictor(SleepyRuntime(), ReplicaMetrics("m"))
    assert not fast.inline_for(1)  # never timed: a thread, to be safe
    fast.warm_up(np.ones((1, 2)))
    assert fast.inline_for(1)
    assert not asyncio.iscoroutine(fast.run(np.ones((1, 2))))

    slow = Predictor(SleepyRuntime(delay=0.03), ReplicaMetrics("m"))
    slow.warm_up(np.ones((1, 2)))
    assert not any(slow.inline_for(1) for _ in range(1000))  # not even as a probe


class TickingRuntime(Runtime):
    """A model whose predict takes ``fixed + per_row * rows`` seconds on a shared fake
    clock: the offload policy's estimate, without real time in the test."""

    platform = "test"

    def __init__(self, fixed: float, per_row: float) -> None:
        super().__init__("ticking", "")
        self.fixed, self.per_row, self.now = fixed, per_row, 0.0
        self.ready = True

    def load(self) -> None:
        self.ready = True

    def clock(self) -> float:
        return self.now

    def predict(self, data: Any) -> Any:
        self.now += self.fixed + self.per_row * len(data)
        return np.zeros(len(data))


def test_auto_offload_expects_a_call_to_cost_what_it_was_timed_at() -> None:
    """A 0.6 ms predict is under the 1 ms budget: it stays inline, timed at 1 row or at
    8 (it was sent to a thread when the estimate added per-call and per-row costs)."""
    for rows in (1, 8):
        per_call = TickingRuntime(fixed=0.0006, per_row=0.0)
        p = Predictor(per_call, ReplicaMetrics("m"), clock=per_call.clock)
        p.warm_up(np.ones((rows, 4)))
        for _ in range(50):
            assert not asyncio.iscoroutine(p.run(np.ones((rows, 4)))), rows

    per_row = TickingRuntime(fixed=0.0, per_row=0.0001)  # 0.1 ms a row
    p = Predictor(per_row, ReplicaMetrics("m"), clock=per_row.clock)
    p.warm_up(np.ones((1, 4)))
    assert p.inline_for(8)  # 0.8 ms
    assert not p.inline_for(20)  # 2 ms: a thread


# -- sklearn fast path ---------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: LogisticRegression(max_iter=1000).fit(X, Y),
    lambda: LogisticRegression(max_iter=1000).fit(X, Y == 1),  # binary
    lambda: LogisticRegression(max_iter=1000).fit(X, np.array(["a", "b", "c"])[Y]),
    lambda: SGDClassifier(random_state=0).fit(X, Y),
    lambda: LinearRegression().fit(X, X[:, 0] * 2),
    lambda: Ridge().fit(X, np.c_[X[:, 0], X[:, 1]]),  # two targets
    lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y),
    lambda: make_pipeline(StandardScaler(with_mean=False), "passthrough",
                          StandardScaler(), LinearRegression()).fit(X, X[:, 0]),
    lambda: DecisionTreeClassifier(random_state=0).fit(X, np.array(["a", "b", "c"])[Y]),
    lambda: DecisionTreeRegressor(random_state=0).fit(X, X[:, 0]),
    lambda: RandomForestClassifier(n_estimators=15, random_state=0).fit(X, Y),
    lambda: ExtraTreesRegressor(n_estimators=15, random_state=0).fit(X, X[:, 0]),
])
def test_sklearn_fast_path_matches_predict_exactly(make: Callable[[], Any]) -> None:
    model = make()
    fast = fast_predict(model)
    assert fast is not None
    rng = np.random.default_rng(1)
    for rows in (X[:1], X, rng.normal(size=(50, 4)) * 5, X.astype(np.int64)):
        got, want = fast(rows), model.predict(rows)
        assert got is not None
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_sklearn_fast_path_leaves_odd_inputs_and_models_to_sklearn() -> None:
    fast = fast_predict(LogisticRegression(max_iter=1000).fit(X, Y))
    assert fast is not None
    bad = X[:2].copy()
    bad[0, 0] = math.nan
    assert fast(bad) is None  # sklearn raises its own error for NaN
    assert fast(X[:2, :3]) is None
    assert fast(X[:2].astype(np.float16)) is None  # float32 is taken: test_sklearn_fast.py
    assert fast([[1.0, 2.0, 3.0, 4.0]]) is None
    assert fast_predict(KNeighborsClassifier().fit(X, Y)) is None
    assert fast_predict(RandomForestClassifier(n_estimators=3, n_jobs=2).fit(X, Y)) is None
    assert fast_predict(make_pipeline(MinMaxScaler(), LogisticRegression()).fit(X, Y)) is None


# -- JSON ----------------------------------------------------------------------------------


def test_json_keeps_nan_and_numpy_values() -> None:
    assert math.isnan(loads(b'{"x": NaN}')["x"])
    assert loads(dumps({"x": float("inf")}))["x"] == float("inf")
    assert loads(dumps({"a": np.int64(3), "b": np.arange(3)})) == {"a": 3, "b": [0, 1, 2]}
    with pytest.raises(ValueError):
        loads(b"{nope")


# -- spec -> replica options ---------------------------------------------------------------


def test_replica_args_from_the_spec() -> None:
    spec = {"predictor": {"batcher": {"maxBatchSize": "16", "maxLatency": 20},
                          "logger": {"url": "http://127.0.0.1:9/e", "mode": "request",
                                     "metadataHeaders": ["X-Tenant"]}},
            "transformer": {"python": {"class": "pkg.scale:Scale", "codeDir": "/code"}}}
    assert replica_args(spec, service="iris", namespace="ns") == [
        "--max-batch-size", "16", "--max-latency", "20",
        "--logger-url", "http://127.0.0.1:9/e", "--logger-mode", "request",
        "--service", "iris", "--namespace", "ns", "--logger-metadata-header", "X-Tenant",
        "--transformer", "pkg.scale:Scale", "--transformer-dir", "/code"]
    assert replica_args({"predictor": {"batcher": {}}}, service="s", namespace="n") == [
        "--max-batch-size", "32", "--max-latency", "5000"]
    assert replica_args({"predictor": {}}, service="s", namespace="n") == []


@pytest.mark.parametrize(("spec", "path"), [
    ({"predictor": {"batcher": {"maxBatchSize": 0}}}, "predictor.batcher.maxBatchSize"),
    ({"predictor": {"batcher": {"maxBatchSize": 2.5}}}, "predictor.batcher.maxBatchSize"),
    ({"predictor": {"batcher": {"maxLatency": "soon"}}}, "predictor.batcher.maxLatency"),
    ({"predictor": {"batcher": {"timeout": 0}}}, "predictor.batcher.timeout"),
    ({"predictor": {"logger": {"mode": "all"}}}, "predictor.logger.url"),
    ({"predictor": {"logger": {"url": "x", "mode": "some"}}}, "predictor.logger.mode"),
    ({"predictor": {"logger": {"url": "x", "metadataHeaders": "X-A"}}},
     "predictor.logger.metadataHeaders"),
    ({"transformer": {"containers": []}}, "transformer"),
    ({"transformer": {"python": {"class": "no-colon"}}}, "transformer.python.class"),
])
def test_replica_args_name_the_bad_field(spec: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as err:
        replica_args(spec, service="s", namespace="n")
    assert err.value.path == path
    assert str(err.value).startswith(path + ":")
