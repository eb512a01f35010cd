"""The model server's data plane: KServe's V1 and V2 (Open Inference) REST protocols.

One model per server. :meth:`DataPlane.handle` takes a parsed request and returns the
response itself when nothing needs to wait (the common case: a small model predicting
inline), or an awaitable when something does (an async custom model, the transformer,
the batcher, a predict run on a worker thread). It speaks the binary tensor data
extension that ``tritonclient.http`` uses by default and reads a body without a
``Content-Type`` as JSON. Errors are ``{"error": "..."}``: 400 for a bad request, 404 for
an unknown model, version or path, 405 for a wrong method, 503 while the model is not
ready, 501 for what ketch does not support, 504 when a batch outlives the batcher's
timeout, and 500 only when the model (or transformer) itself raised; the server keeps
serving.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from ketch import __version__
from ketch.serving._batcher import Batcher, BatchSettings, BatchTimeout
from ketch.serving._codec import (
    HTTPError,
    as_array,
    custom_outputs,
    decode_inputs,
    encode_v2_response,
    input_array,
    parse_json,
    plain,
    read_body,
)
from ketch.serving._http import Request, Response
from ketch.serving._json import dumps
from ketch.serving._logger import LoggedRequest, RequestLogger
from ketch.serving._metrics import ReplicaMetrics
from ketch.serving._predict import Predictor
from ketch.serving._runtimes import OUTPUT_NAME, CustomRuntime, InvalidInput, Runtime
from ketch.serving._transformer import Transformer, TransformerError

__all__ = ["DataPlane", "HTTPError"]

_JSON = b"application/json"
_PROMETHEUS = b"text/plain; version=0.0.4"


def _ok(obj: Any) -> Response:
    return 200, dumps(obj), _JSON, []


def _named(preds: Any) -> list[tuple[str, Any]]:
    """A built-in runtime's result as V2 outputs: one array is ``output-0``, a dict is
    already named (ONNX, TorchScript)."""
    return list(preds.items()) if isinstance(preds, dict) else [(OUTPUT_NAME, preds)]


def _v1(preds: Any) -> Any:
    """A built-in runtime's result as V1 ``predictions``: a dict's first output."""
    return plain(next(iter(preds.values())) if isinstance(preds, dict) else preds)


def _want(method: str, expected: str) -> None:
    if method != expected and not (expected == "GET" and method == "HEAD"):
        raise HTTPError(405, f"method {method} not allowed here (use {expected})")


class DataPlane:
    """Answers V1 and V2 requests for one loaded model.

    Args:
        runtime: The loaded model.
        metrics: Where requests, predicts and batches are counted (a new one if None).
        predictor: Runs predicts inline or on a thread (``auto`` policy if None).
        batching: Gather concurrent predicts into batches with these settings, if given.
        transformer: Pre/post-processing around the model, if given.
        logger: Request/response CloudEvents, if given.

    Not thread-safe: :meth:`handle` runs on the event loop.
    """

    def __init__(self, runtime: Runtime, *, metrics: ReplicaMetrics | None = None,
                 predictor: Predictor | None = None, batching: BatchSettings | None = None,
                 transformer: Transformer | None = None,
                 logger: RequestLogger | None = None) -> None:
        self.runtime = runtime
        self.name = runtime.name
        self.metrics = metrics or ReplicaMetrics(runtime.name)
        self.predictor = predictor or Predictor(runtime, self.metrics)
        self.transformer = transformer
        self.logger = logger
        self._custom = runtime if isinstance(runtime, CustomRuntime) else None
        self.batcher: Batcher | None = None
        if batching is not None:
            # Built-in runtimes batch rows of arrays; a custom model batches V1 instances
            # and sees one {"instances": [...]} payload per batch, as behind KServe's.
            self.batcher = Batcher(self.predictor.run if self._custom is None
                                   else self._custom_batch,
                                   max_batch_size=batching.max_batch_size,
                                   max_latency_ms=batching.max_latency_ms,
                                   timeout_s=batching.timeout_s)
        # Everything that does not change per request is encoded once, here.
        self._live = _ok({"live": True})
        self._ready = _ok({"ready": True})
        self._alive = _ok({"status": "alive"})
        self._models = _ok({"models": [self.name]})
        self._v1_ready = _ok({"name": self.name, "ready": True})
        self._v2_ready = _ok({"name": self.name, "ready": True})
        self._server_meta = _ok({"name": "ketch", "version": __version__,
                                 "extensions": ["binary_tensor_data"]})
        self._metadata: Response | None = None
        # Response ids: a random UUID-shaped prefix and a counter (uuid4() per request
        # showed in profiles; these are as unique within and across servers).
        prefix = uuid.uuid4().hex
        self._id_prefix = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-"
        self._ids = itertools.count()

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):012x}"

    # -- entry -----------------------------------------------------------------------

    def handle(self, req: Request) -> Response | Awaitable[Response]:
        """Answer one request: the response, or an awaitable of it."""
        start = time.perf_counter()
        endpoint = "other"
        logged = None
        if self.logger is not None and req.method == "POST" and (
                req.path.endswith("/infer") or req.path.endswith(":predict")):
            logged = self.logger.request(req.body, req.headers)
        try:
            endpoint, result = self._route(req)
        except HTTPError as e:
            result = e.response()
        except Exception as e:  # a bug in ketch, not the model: still answer
            result = HTTPError(500, f"{type(e).__name__}: {e}").response()
        if isinstance(result, tuple):
            self._done(endpoint, result, start, logged)
            return result
        return self._later(result, endpoint, start, logged)

    async def _later(self, pending: Awaitable[Response], endpoint: str, start: float,
                     logged: LoggedRequest | None) -> Response:
        try:
            result = await pending
        except HTTPError as e:
            result = e.response()
        except Exception as e:
            result = HTTPError(500, f"{type(e).__name__}: {e}").response()
        self._done(endpoint, result, start, logged)
        return result

    def _done(self, endpoint: str, result: Response, start: float,
              logged: LoggedRequest | None) -> None:
        self.metrics.request(endpoint, result[0], time.perf_counter() - start)
        if logged is not None and self.logger is not None:
            self.logger.response(logged, result[1], result[2].decode())

    # -- routing ---------------------------------------------------------------------

    def _route(self, req: Request) -> tuple[str, Response | Awaitable[Response]]:
        path = req.path
        method = req.method
        if path.startswith("/v2/models/"):
            name, version, tail = self._split_v2(path[11:])
            if tail == "infer":
                _want(method, "POST")
                self._model(name, version)
                return "v2_infer", self._infer_v2(req, version)
            _want(method, "GET")
            self._model(name, version)
            if tail == "":
                if self._metadata is None:
                    self._metadata = _ok(self.runtime.metadata)
                return "v2_metadata", self._metadata
            if tail == "ready":
                return "v2_ready", self._v2_ready
            raise HTTPError(404, f"path {path} not found")
        if path.startswith("/v1/models/"):
            name, colon, verb = path[11:].partition(":")
            if not colon:
                _want(method, "GET")
                self._model(name.rstrip("/"), None)
                return "v1_ready", self._v1_ready
            _want(method, "POST")
            self._model(name, None)
            if verb == "predict":
                return "v1_predict", self._predict_v1(req)
            if verb == "explain":
                raise HTTPError(501, f"model {name} has no explainer: ketch does not "
                                     "support :explain yet")
            raise HTTPError(404, f"path {path} not found")
        _want(method, "GET")
        if path in ("/v2/health/ready", "/v2/health/ready/"):
            if not self.runtime.ready:
                raise HTTPError(503, f"model {self.name} is not ready")
            return "health", self._ready
        if path in ("/v2/health/live", "/v2/health/live/"):
            return "health", self._live
        if path in ("/v2", "/v2/"):
            return "v2_server_metadata", self._server_meta
        if path == "/":
            return "health", self._alive
        if path in ("/v1/models", "/v1/models/"):
            return "v1_models", self._models
        if path == "/metrics":
            return "metrics", (200, self.metrics.render(), _PROMETHEUS, [])
        raise HTTPError(404, f"path {path} not found")

    @staticmethod
    def _split_v2(rest: str) -> tuple[str, str | None, str]:
        parts = rest.split("/")
        name, version = parts[0], None
        tail = parts[1:]
        if len(tail) >= 2 and tail[0] == "versions":
            version = tail[1]
            tail = tail[2:]
        if len(tail) > 1:
            raise HTTPError(404, f"path /v2/models/{rest} not found")
        return name, version, tail[0] if tail else ""

    def _model(self, name: str, version: str | None) -> None:
        if name != self.name:
            raise HTTPError(404, f"model {name} not found (this server serves {self.name})")
        if version is not None and version not in self.runtime.versions:
            raise HTTPError(404, f"model {name} version {version} not found "
                                 f"(versions: {', '.join(self.runtime.versions)})")
        if not self.runtime.ready:
            raise HTTPError(503, f"model {name} is not ready")

    # -- running the model -----------------------------------------------------------

    def _model_error(self, e: Exception) -> HTTPError:
        if isinstance(e, HTTPError):
            return e
        if isinstance(e, InvalidInput):
            return HTTPError(400, str(e))
        if isinstance(e, BatchTimeout):
            return HTTPError(504, f"model {self.name}: {e}")
        if isinstance(e, TransformerError):
            return HTTPError(500, f"model {self.name}: {e}")
        text = str(e).splitlines()[0] if str(e) else ""
        return HTTPError(500, f"model {self.name} failed: {type(e).__name__}: {text}")

    def _check_features(self, arr: Any, name: str) -> None:
        want = self.runtime.n_features
        if want and getattr(arr, "ndim", 0) == 2 and arr.shape[1] != want:
            raise HTTPError(400, f"input '{name}': model {self.name} expects {want} "
                                 f"features per row, got {arr.shape[1]}")

    def _predict(self, arr: Any) -> Any:
        """The model's output for ``arr``: the value (inline) or an awaitable of it."""
        if (self.batcher is not None and self._custom is None and isinstance(arr, np.ndarray)
                and arr.ndim >= 1):
            return self.batcher.submit(arr)
        try:
            return self.predictor.run(arr)
        except Exception as e:
            raise self._model_error(e) from None

    async def _await_model(self, pending: Any) -> Any:
        try:
            return await pending
        except Exception as e:
            raise self._model_error(e) from None

    def _then(self, out: Any, finish: Callable[[Any], Response]
              ) -> Response | Awaitable[Response]:
        if asyncio.iscoroutine(out) or asyncio.isfuture(out):
            return self._finish_later(out, finish)
        return finish(out)

    async def _finish_later(self, pending: Any, finish: Callable[[Any], Response]
                            ) -> Response:
        return finish(await self._await_model(pending))

    async def _custom_batch(self, instances: list[Any]) -> Any:
        result = await self._infer_custom({"instances": instances})
        if isinstance(result, dict) and "predictions" in result:
            result = result["predictions"]
        if not isinstance(result, list | tuple | np.ndarray):
            raise HTTPError(500, f"model {self.name}: with a batcher, a custom model must "
                                 "return a list or {\"predictions\": [...]} for V1")
        return result

    async def _infer_custom(self, payload: Any) -> Any:
        custom = self._custom
        assert custom is not None
        try:
            payload = await custom.preprocess(payload)
            if custom.async_predict:
                result = await custom.user.predict(payload)
            else:  # a sync predict may be slow: the predictor decides where it runs
                result = self.predictor.run(payload, custom.user.predict)
                if asyncio.iscoroutine(result):
                    result = await result
            return await custom.postprocess(result)
        except Exception as e:
            raise self._model_error(e) from None

    # -- V1 --------------------------------------------------------------------------

    def _v1_array(self, payload: dict[str, Any]) -> Any:
        instances = payload.get("instances", payload.get("inputs"))
        if not isinstance(instances, list):
            raise HTTPError(400, "expected {\"instances\": [...]} in the request body")
        try:
            arr = np.asarray(instances)
        except ValueError as e:
            raise HTTPError(400, f"instances are not a regular array: {e}") from None
        self._check_features(arr, "instances")
        return arr

    def _predict_v1(self, req: Request) -> Response | Awaitable[Response]:
        body, _ = read_body(req)
        payload = parse_json(body)
        if self.transformer is not None or self._custom is not None:
            return self._predict_v1_async(req, payload)
        return self._then(self._predict(self._v1_array(payload)),
                          lambda preds: _ok({"predictions": _v1(preds)}))

    async def _predict_v1_async(self, req: Request, payload: Any) -> Response:
        if self.transformer is not None:
            payload = await self.transformer.preprocess(payload, req.headers)
            if not isinstance(payload, dict):
                raise HTTPError(500, "transformer preprocess must return a dict for V1")
        if (self._custom is not None and self.batcher is not None
                and list(payload) == ["instances"] and isinstance(payload["instances"], list)):
            preds = await self._await_model(self.batcher.submit(payload["instances"]))
            response = {"predictions": plain(preds)}
        elif self._custom is not None:
            result = await self._infer_custom(payload)
            response = plain(result) if isinstance(result, dict) else {
                "predictions": plain(result)}
        else:
            out = self._predict(self._v1_array(payload))
            if asyncio.iscoroutine(out) or asyncio.isfuture(out):
                out = await self._await_model(out)
            response = {"predictions": _v1(out)}
        if self.transformer is not None:
            response = plain(await self.transformer.postprocess(response, req.headers))
        return _ok(response)

    # -- V2 --------------------------------------------------------------------------

    def _infer_v2(self, req: Request, version: str | None) -> Response | Awaitable[Response]:
        body, header_len = read_body(req)
        if header_len is None:
            request, binary = parse_json(body), b""
        else:
            request, binary = parse_json(body[:header_len]), body[header_len:]
        inputs = request.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise HTTPError(400, "expected a non-empty 'inputs' list in the request body")
        arrays = decode_inputs(inputs, binary)
        if self.transformer is not None or self._custom is not None:
            return self._infer_v2_async(req, request, inputs, arrays, version)
        arr = self._single_input(inputs, arrays)
        return self._then(self._predict(arr), lambda preds: encode_v2_response(
            self.name, request, _named(preds), version, self._new_id))

    def _single_input(self, inputs: list[dict[str, Any]], arrays: list[Any]) -> Any:
        """What the runtime's predict takes for these V2 inputs (400 if they do not fit)."""
        try:
            data = self.runtime.model_input([spec["name"] for spec in inputs], arrays)
        except InvalidInput as e:
            raise HTTPError(400, str(e)) from None
        if len(arrays) == 1:
            self._check_features(arrays[0], inputs[0]["name"])
        return data

    async def _infer_v2_async(self, req: Request, request: dict[str, Any],
                              inputs: list[dict[str, Any]], arrays: list[Any],
                              version: str | None) -> Response:
        payload: dict[str, Any] = {**request, "inputs": [
            {**spec, "data": arr} for spec, arr in zip(inputs, arrays, strict=True)]}
        if self.transformer is not None:
            payload = await self.transformer.preprocess(payload, req.headers)
            if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
                raise HTTPError(500, "transformer preprocess must return a dict with "
                                     "an 'inputs' list for V2")
        if self._custom is not None:
            outputs = custom_outputs(await self._infer_custom(payload))
        else:
            new_inputs = payload["inputs"]
            arr = self._single_input(new_inputs, [input_array(s) for s in new_inputs])
            out = self._predict(arr)
            if asyncio.iscoroutine(out) or asyncio.isfuture(out):
                out = await self._await_model(out)
            outputs = _named(out)
        if self.transformer is not None:
            response = {"model_name": self.name, "id": request.get("id"), "outputs": [
                {"name": n, "data": as_array(v)} for n, v in outputs]}
            response = await self.transformer.postprocess(response, req.headers)
            outputs = custom_outputs(response)
        return encode_v2_response(self.name, request, outputs, version, self._new_id)
