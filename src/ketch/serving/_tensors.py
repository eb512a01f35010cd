"""Open Inference Protocol tensors: datatypes, JSON and binary decoding and encoding.

The binary tensor data extension (what ``tritonclient.http`` speaks by default)
carries raw little-endian tensor bytes after the JSON header; ``BYTES`` elements
are each prefixed by a 4-byte little-endian length.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DTYPES", "TensorError", "datatype_of", "decode_binary", "decode_json",
           "encode_binary", "encode_json"]

NDArray = npt.NDArray[Any]

# Open Inference Protocol datatype -> little-endian numpy dtype.
DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}

_BY_KIND_SIZE = {(dt.kind, dt.itemsize): name for name, dt in DTYPES.items() if name != "BYTES"}


class TensorError(ValueError):
    """A tensor the request describes cannot be decoded (an HTTP 400)."""


def datatype_of(arr: NDArray) -> str:
    """The protocol datatype for a numpy array's dtype (strings and objects are BYTES)."""
    name = _BY_KIND_SIZE.get((arr.dtype.kind, arr.dtype.itemsize))
    if name is not None:
        return name
    if arr.dtype.kind in "OUS":
        return "BYTES"
    raise TensorError(f"numpy dtype {arr.dtype} has no inference protocol datatype")


def _count(shape: list[int]) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


def check_spec(name: str, shape: Any, datatype: Any) -> tuple[list[int], str]:
    """Validate an input's ``shape`` and ``datatype`` fields.

    Args:
        name: The tensor name, for messages.
        shape: The ``shape`` field as sent.
        datatype: The ``datatype`` field as sent.

    Returns:
        The shape as a list of ints and the upper-cased datatype.

    Raises:
        TensorError: If either is malformed or the datatype is unknown.
    """
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise TensorError(f"input '{name}': shape must be a list of non-negative integers, "
                          f"got {shape!r}")
    if not isinstance(datatype, str) or datatype.upper() not in DTYPES:
        raise TensorError(f"input '{name}': unknown datatype {datatype!r} "
                          f"(one of {', '.join(DTYPES)})")
    return shape, datatype.upper()


def decode_json(name: str, shape: list[int], datatype: str, data: Any) -> NDArray:
    """Decode an input's JSON ``data`` (flat or nested) into an array of ``shape``.

    Raises:
        TensorError: On a length that does not match the shape or values of the wrong type.
    """
    if data is None:
        raise TensorError(f"input '{name}': no data (neither 'data' nor binary_data_size)")
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).reshape(-1)
        for value in flat:
            if not isinstance(value, str | bytes):
                raise TensorError(f"input '{name}': datatype BYTES needs strings, "
                                  f"got {type(value).__name__}")
        arr = flat
    else:
        want = DTYPES[datatype]
        try:
            raw = np.asarray(data)
        except ValueError as e:
            raise TensorError(f"input '{name}': data is not a regular array: {e}") from None
        kind = raw.dtype.kind
        bad = (kind in "OUS" or (kind == "f" and want.kind in "biu")
               or (kind in "iu" and want.kind == "b"))
        if bad and raw.size:
            raise TensorError(f"input '{name}': data of type {raw.dtype} does not match "
                              f"datatype {datatype}")
        try:
            arr = raw.astype(want).reshape(-1)
        except (ValueError, TypeError, OverflowError) as e:
            raise TensorError(f"input '{name}': data does not fit datatype {datatype}: "
                              f"{e}") from None
    expected = _count(shape)
    if arr.size != expected:
        raise TensorError(f"input '{name}': data has {arr.size} elements but shape "
                          f"{shape} needs {expected}")
    return arr.reshape(shape)


def decode_binary(name: str, shape: list[int], datatype: str, raw: bytes) -> NDArray:
    """Decode an input's raw bytes (binary tensor data extension) into an array.

    Raises:
        TensorError: If the byte count does not match the shape and datatype.
    """
    expected = _count(shape)
    if datatype == "BYTES":
        items: list[bytes] = []
        pos, end = 0, len(raw)
        while pos < end:
            if pos + 4 > end:
                raise TensorError(f"input '{name}': truncated BYTES element length")
            (length,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + length > end:
                raise TensorError(f"input '{name}': truncated BYTES element")
            items.append(raw[pos:pos + length])
            pos += length
        if len(items) != expected:
            raise TensorError(f"input '{name}': binary data has {len(items)} elements but "
                              f"shape {shape} needs {expected}")
        arr = np.empty(expected, dtype=object)
        arr[:] = items
        return arr.reshape(shape)
    dtype = DTYPES[datatype]
    if len(raw) != expected * dtype.itemsize:
        raise TensorError(f"input '{name}': binary data has {len(raw)} bytes but shape "
                          f"{shape} of {datatype} needs {expected * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _as_text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return value


def encode_json(arr: NDArray) -> tuple[str, list[Any]]:
    """The datatype and flat JSON ``data`` list for an output array."""
    datatype = datatype_of(arr)
    flat = arr.reshape(-1)
    if datatype == "BYTES":
        return datatype, [_as_text(v) if isinstance(v, bytes) else str(v) for v in flat]
    if datatype == "FP16":
        flat = flat.astype(np.float32)
    return datatype, flat.tolist()


def encode_binary(arr: NDArray) -> tuple[str, bytes]:
    """The datatype and raw bytes (binary tensor data extension) for an output array."""
    datatype = datatype_of(arr)
    if datatype != "BYTES":
        return datatype, np.ascontiguousarray(arr, dtype=DTYPES[datatype]).tobytes()
    parts: list[bytes] = []
    for value in arr.reshape(-1):
        item = value if isinstance(value, bytes) else str(value).encode()
        parts.append(struct.pack("<I", len(item)))
        parts.append(item)
    return datatype, b"".join(parts)
