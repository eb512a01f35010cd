"""The data plane's wire formats: request bodies (compression, the binary tensor
extension's header length), JSON, V2 input tensors, V2 responses, and the one error type
the data plane answers with."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ketch.serving._http import Request, Response
from ketch.serving._json import dumps, loads
from ketch.serving._runtimes import OUTPUT_NAME
from ketch.serving._tensors import (
    TensorError,
    check_spec,
    decode_binary,
    decode_json,
    encode_binary,
    encode_json,
)

__all__ = ["HTTPError", "as_array", "custom_outputs", "decode_inputs", "encode_v2_response",
           "input_array", "parse_json", "plain", "read_body"]

_JSON = b"application/json"
_OCTET = b"application/octet-stream"
_HEADER_LEN = b"inference-header-content-length"


class HTTPError(Exception):
    """An error answer: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        """The ``{"error": ...}`` response for this error."""
        return self.status, dumps({"error": self.message}), _JSON, []


def read_body(req: Request) -> tuple[bytes, int | None]:
    """The body, decompressed, and the binary extension's JSON header length if sent.

    Raises:
        HTTPError: 400 on a body that cannot be decompressed or a bad header length.
    """
    body = req.body
    headers = req.headers
    encoding = headers.get("content-encoding")
    if encoding in ("gzip", "deflate"):
        try:
            body = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
        except (OSError, zlib.error) as e:
            raise HTTPError(400, f"cannot decompress the body: {e}") from None
    raw_len = headers.get("inference-header-content-length")
    if raw_len is None:
        return body, None
    try:
        header_len = int(raw_len)
    except ValueError:
        raise HTTPError(400, "Inference-Header-Content-Length is not an integer: "
                             f"{raw_len}") from None
    if not 0 <= header_len <= len(body):
        raise HTTPError(400, f"Inference-Header-Content-Length {header_len} is outside "
                             f"the body of {len(body)} bytes")
    return body, header_len

def parse_json(raw: bytes) -> dict[str, Any]:
    """A JSON object from ``raw``.

    Raises:
        HTTPError: 400 when ``raw`` is not JSON or not an object.
    """
    try:
        obj = loads(raw)
    except ValueError as e:
        raise HTTPError(400, f"invalid JSON body: {e}") from None
    if not isinstance(obj, dict):
        raise HTTPError(400, "the body must be a JSON object")
    return obj


def decode_inputs(inputs: list[Any], binary: bytes) -> list[Any]:
    """Each V2 input tensor as a numpy array, from JSON ``data`` or the binary part.

    Raises:
        HTTPError: 400 naming the input that cannot be decoded.
    """
    arrays, offset = [], 0
    try:
        for spec in inputs:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise TensorError("each input needs a 'name'")
            name = spec["name"]
            shape, datatype = check_spec(name, spec.get("shape"), spec.get("datatype"))
            params = spec.get("parameters")
            size = params.get("binary_data_size") if isinstance(params, dict) else None
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
    return arrays


def encode_v2_response(model: str, req: dict[str, Any], raw: list[tuple[str, Any]],
                       version: str | None, new_id: Callable[[], str]) -> Response:
    """The V2 response for ``raw`` (name, value) outputs, JSON or binary as requested.

    Raises:
        HTTPError: 400 for an unknown requested output, 500 for an output with no
            protocol datatype.
    """
    params = req.get("parameters")
    default_binary = bool(isinstance(params, dict) and params.get("binary_data_output"))
    outputs = [(name, as_array(value)) for name, value in raw]
    wanted = req.get("outputs")
    plan: list[tuple[str, Any, bool]] = []
    if isinstance(wanted, list) and wanted:
        by_name = dict(outputs)
        for want in wanted:
            name = want.get("name") if isinstance(want, dict) else None
            if name not in by_name:
                raise HTTPError(400, f"unknown output {name!r} (model {model} "
                                     f"outputs: {', '.join(by_name)})")
            wparams = want.get("parameters") or {}
            binary = wparams.get("binary_data", default_binary)
            plan.append((name, by_name[name], bool(binary)))
    else:
        plan = [(name, arr, default_binary) for name, arr in outputs]
    resp: dict[str, Any] = {"model_name": model}
    if version is not None:
        resp["model_version"] = version
    rid = req.get("id")
    resp["id"] = rid if rid is not None else new_id()
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
        raise HTTPError(500, f"model {model} returned {e}") from None
    resp["outputs"] = tensors
    header = dumps(resp)
    if not blobs:
        return 200, header, _JSON, []
    return (200, b"".join([header, *blobs]), _OCTET,
            [(_HEADER_LEN, str(len(header)).encode())])


def as_array(value: Any) -> Any:
    """``value`` as a numpy array (unicode strings as objects, i.e. BYTES)."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind == "U":
        arr = arr.astype(object)
    return arr


def input_array(spec: Any) -> Any:
    """An input a transformer returned: its numpy ``data``, or JSON data decoded."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise HTTPError(500, "transformer preprocess returned an input without a 'name'")
    data = spec.get("data")
    if isinstance(data, np.ndarray):
        return data
    try:
        shape, datatype = check_spec(spec["name"], spec.get("shape"), spec.get("datatype"))
        return decode_json(spec["name"], shape, datatype, data)
    except TensorError as e:
        raise HTTPError(500, f"transformer preprocess returned {e}") from None


def custom_outputs(result: Any) -> list[tuple[str, Any]]:
    """(name, value) outputs from what a custom model or a postprocess returned."""
    if isinstance(result, dict) and isinstance(result.get("outputs"), list):
        return [(str(o.get("name", f"output-{i}")), o.get("data"))
                for i, o in enumerate(result["outputs"])]
    if isinstance(result, dict):
        return [(str(k), v) for k, v in result.items()]
    return [(OUTPUT_NAME, result)]


def plain(value: Any) -> Any:
    """Numpy values (arrays, scalars, bytes) made JSON-serialisable."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return plain(value.tolist())
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
