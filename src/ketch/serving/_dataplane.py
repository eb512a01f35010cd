"""The model server's data plane: KServe's V1 and V2 (Open Inference) REST protocols.

A pure ASGI app (no framework: each request is a dict lookup and a JSON round trip)
serving one model. It speaks the binary tensor data extension that ``tritonclient.http``
uses by default and reads a body without a ``Content-Type`` as JSON. Errors are
``{"error": "..."}``: 400 for a bad request, 404 for an unknown model, version or path,
503 while the model is not ready, 501 for what ketch does not support, and 500 only when
the model itself raised (the server keeps serving).
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np

from ketch import __version__
from ketch.serving._runtimes import OUTPUT_NAME, CustomRuntime, Runtime
from ketch.serving._tensors import (
    TensorError,
    check_spec,
    decode_binary,
    decode_json,
    encode_binary,
    encode_json,
)

__all__ = ["DataPlane", "HTTPError"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Response = tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]

_JSON = b"application/json"
_OCTET = b"application/octet-stream"
_HEADER_LEN = b"inference-header-content-length"


class HTTPError(Exception):
    """An error answer: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()


def _ok(obj: Any) -> Response:
    return 200, _dumps(obj), _JSON, []


class DataPlane:
    """The ASGI app for one model.

    Args:
        runtime: The loaded model.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.name = runtime.name
        self._live = _ok({"live": True})
        self._ready = _ok({"ready": True})
        self._alive = _ok({"status": "alive"})
        self._server_meta = _ok({"name": "ketch", "version": __version__,
                                     "extensions": ["binary_tensor_data"]})
        self._counts: dict[tuple[str, int], int] = {}
        self._seconds: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        start = time.perf_counter()
        endpoint = "other"
        try:
            endpoint, response = await self._route(scope, receive)
        except HTTPError as e:
            response = (e.status, _dumps({"error": e.message}), _JSON, [])
        except Exception as e:  # a bug in ketch, not the model: still answer
            response = (500, _dumps({"error": f"{type(e).__name__}: {e}"}), _JSON, [])
        status, body, ctype, extra = response
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                   *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        key = (endpoint, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        self._seconds[endpoint] = self._seconds.get(endpoint, 0.0) + (
            time.perf_counter() - start)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routing ---------------------------------------------------------------------

    async def _route(self, scope: Scope, receive: Receive) -> tuple[str, Response]:
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "HEAD":
            method = "GET"
        if path.startswith("/v2/models/"):
            name, version, tail = self._split_v2(path[len("/v2/models/"):])
            if tail == "infer":
                _want(method, "POST")
                self._model(name, version)
                return "v2_infer", await self._infer_v2(scope, receive, version)
            _want(method, "GET")
            self._model(name, version)
            if tail == "":
                return "v2_metadata", _ok(self.runtime.metadata)
            if tail == "ready":
                return "v2_ready", _ok({"name": name, "ready": True})
            raise HTTPError(404, f"path {path} not found")
        if path.startswith("/v1/models/"):
            rest = path[len("/v1/models/"):]
            name, colon, verb = rest.partition(":")
            if not colon:
                _want(method, "GET")
                self._model(name.rstrip("/"), None)
                return "v1_ready", _ok({"name": self.name, "ready": True})
            _want(method, "POST")
            self._model(name, None)
            if verb == "predict":
                return "v1_predict", await self._predict_v1(scope, receive)
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
            return "v1_models", _ok({"models": [self.name]})
        if path == "/metrics":
            return "metrics", (200, self._metrics(), b"text/plain; version=0.0.4", [])
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

    # -- bodies ----------------------------------------------------------------------

    @staticmethod
    async def _body(scope: Scope, receive: Receive) -> tuple[bytes, int | None]:
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "client disconnected")
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        header_len: int | None = None
        for key, value in scope["headers"]:
            if key == _HEADER_LEN:
                try:
                    header_len = int(value)
                except ValueError:
                    raise HTTPError(400, "Inference-Header-Content-Length is not an "
                                         f"integer: {value.decode(errors='replace')}"
                                    ) from None
            elif key == b"content-encoding" and value in (b"gzip", b"deflate"):
                try:
                    body = gzip.decompress(body) if value == b"gzip" else zlib.decompress(
                        body)
                except (OSError, zlib.error) as e:
                    raise HTTPError(400, f"cannot decompress the body: {e}") from None
        if header_len is not None and not 0 <= header_len <= len(body):
            raise HTTPError(400, f"Inference-Header-Content-Length {header_len} is outside "
                                 f"the body of {len(body)} bytes")
        return body, header_len

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise HTTPError(400, f"invalid JSON body: {e}") from None
        if not isinstance(obj, dict):
            raise HTTPError(400, "the body must be a JSON object")
        return obj

    async def _run(self, call: Callable[[], Any]) -> Any:
        try:
            result = call()
            if isinstance(result, Awaitable):
                result = await result
        except HTTPError:
            raise
        except Exception as e:
            text = str(e).splitlines()[0] if str(e) else ""
            raise HTTPError(500, f"model {self.name} failed: {type(e).__name__}: {text}"
                            ) from None
        return result

    def _check_features(self, arr: np.ndarray[Any, Any], name: str) -> None:
        want = self.runtime.n_features
        if want and arr.ndim == 2 and arr.shape[1] != want:
            raise HTTPError(400, f"input '{name}': model {self.name} expects {want} "
                                 f"features per row, got {arr.shape[1]}")

    # -- V1 --------------------------------------------------------------------------

    async def _predict_v1(self, scope: Scope, receive: Receive) -> Response:
        body, _ = await self._body(scope, receive)
        req = self._json(body)
        runtime = self.runtime
        if isinstance(runtime, CustomRuntime):
            result = await self._run(lambda: runtime.infer(req))
            if isinstance(result, dict):
                return _ok(_plain(result))
            return _ok({"predictions": _plain(result)})
        instances = req.get("instances", req.get("inputs"))
        if not isinstance(instances, list):
            raise HTTPError(400, "expected {\"instances\": [...]} in the request body")
        try:
            arr = np.asarray(instances)
        except ValueError as e:
            raise HTTPError(400, f"instances are not a regular array: {e}") from None
        self._check_features(arr, "instances")
        preds = await self._run(lambda: runtime.predict(arr))
        return _ok({"predictions": _plain(preds)})

    # -- V2 --------------------------------------------------------------------------

    async def _infer_v2(self, scope: Scope, receive: Receive, version: str | None
                        ) -> Response:
        body, header_len = await self._body(scope, receive)
        if header_len is None:
            req, binary = self._json(body), b""
        else:
            req, binary = self._json(body[:header_len]), body[header_len:]
        inputs = req.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise HTTPError(400, "expected a non-empty 'inputs' list in the request body")
        arrays, offset = [], 0
        try:
            for spec in inputs:
                if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                    raise TensorError("each input needs a 'name'")
                name = spec["name"]
                shape, datatype = check_spec(name, spec.get("shape"), spec.get("datatype"))
                size = (spec.get("parameters") or {}).get("binary_data_size")
                if size is None:
                    arrays.append(decode_json(name, shape, datatype, spec.get("data")))
                    continue
                if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                    raise TensorError(f"input '{name}': binary_data_size {size!r} runs past "
                                      f"the {len(binary)} binary bytes sent")
                arrays.append(decode_binary(name, shape, datatype,
                                            binary[offset:offset + size]))
                offset += size
        except TensorError as e:
            raise HTTPError(400, str(e)) from None
        if offset != len(binary):
            raise HTTPError(400, f"{len(binary) - offset} binary bytes after the last input")
        outputs = self._outputs(await self._predict_v2(req, inputs, arrays))
        return self._v2_response(req, outputs, version)

    async def _predict_v2(self, req: dict[str, Any], inputs: list[dict[str, Any]],
                          arrays: list[Any]) -> list[tuple[str, Any]]:
        runtime = self.runtime
        if isinstance(runtime, CustomRuntime):
            payload = {**req, "inputs": [{**spec, "data": arr}
                                         for spec, arr in zip(inputs, arrays, strict=True)]}
            result = await self._run(lambda: runtime.infer(payload))
            if isinstance(result, dict) and isinstance(result.get("outputs"), list):
                return [(str(o.get("name", f"output-{i}")), o.get("data"))
                        for i, o in enumerate(result["outputs"])]
            if isinstance(result, dict):
                return [(str(k), v) for k, v in result.items()]
            return [(OUTPUT_NAME, result)]
        if len(arrays) != 1:
            raise HTTPError(400, f"model {self.name} takes one input tensor, got "
                                 f"{len(arrays)}")
        self._check_features(arrays[0], inputs[0]["name"])
        preds = await self._run(lambda: runtime.predict(arrays[0]))
        return [(OUTPUT_NAME, preds)]

    def _outputs(self, raw: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        out = []
        for name, value in raw:
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            if arr.dtype.kind == "U":
                arr = arr.astype(object)
            out.append((name, arr))
        return out

    def _v2_response(self, req: dict[str, Any], outputs: list[tuple[str, Any]],
                     version: str | None) -> Response:
        params = req.get("parameters") or {}
        default_binary = bool(isinstance(params, dict) and params.get("binary_data_output"))
        wanted = req.get("outputs")
        plan: list[tuple[str, Any, bool]] = []
        if isinstance(wanted, list) and wanted:
            by_name = dict(outputs)
            for want in wanted:
                name = want.get("name") if isinstance(want, dict) else None
                if name not in by_name:
                    raise HTTPError(400, f"unknown output {name!r} (model {self.name} "
                                         f"outputs: {', '.join(by_name)})")
                wparams = want.get("parameters") or {}
                binary = wparams.get("binary_data", default_binary)
                plan.append((name, by_name[name], bool(binary)))
        else:
            plan = [(name, arr, default_binary) for name, arr in outputs]
        resp: dict[str, Any] = {"model_name": self.name}
        if version is not None:
            resp["model_version"] = version
        resp["id"] = req["id"] if "id" in req else str(uuid.uuid4())
        tensors, blobs = [], []
        try:
            for name, arr, binary in plan:
                tensor: dict[str, Any] = {"name": name, "shape": list(arr.shape)}
                if binary:
                    tensor["datatype"], blob = encode_binary(arr)
                    tensor["parameters"] = {"binary_data_size": len(blob)}
                    blobs.append(blob)
                else:
                    tensor["datatype"], tensor["data"] = encode_json(arr)
                tensors.append(tensor)
        except TensorError as e:
            raise HTTPError(500, f"model {self.name} returned {e}") from None
        resp["outputs"] = tensors
        header = _dumps(resp)
        if not blobs:
            return 200, header, _JSON, []
        return (200, b"".join([header, *blobs]), _OCTET,
                [(_HEADER_LEN, str(len(header)).encode())])

    # -- metrics ---------------------------------------------------------------------

    def _metrics(self) -> bytes:
        model = self.name.replace("\\", "\\\\").replace('"', '\\"')
        lines = ["# HELP ketch_inference_requests_total Requests answered, by endpoint "
                 "and HTTP status.", "# TYPE ketch_inference_requests_total counter"]
        for (endpoint, status), n in sorted(self._counts.items()):
            lines.append(f'ketch_inference_requests_total{{model="{model}",'
                         f'endpoint="{endpoint}",code="{status}"}} {n}')
        lines += ["# HELP ketch_inference_request_seconds_total Time spent answering, "
                  "by endpoint.", "# TYPE ketch_inference_request_seconds_total counter"]
        for endpoint, secs in sorted(self._seconds.items()):
            lines.append(f'ketch_inference_request_seconds_total{{model="{model}",'
                         f'endpoint="{endpoint}"}} {secs:.6f}')
        return ("\n".join(lines) + "\n").encode()


def _want(method: str, expected: str) -> None:
    if method != expected:
        raise HTTPError(405, f"method {method} not allowed here (use {expected})")


def _plain(value: Any) -> Any:
    """Numpy values (arrays, scalars, bytes) made JSON-serialisable."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return _plain(value.tolist())
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
