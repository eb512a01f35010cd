"""JSON for the data plane: orjson when installed (part of ``ketch[serving]``), else the
standard library, with the standard library's leniency kept where clients rely on it.

- ``loads`` accepts what Python's ``json`` accepts, ``NaN`` and ``Infinity`` included
  (``tritonclient`` sends them for non-finite floats): orjson first, the standard
  library when orjson refuses.
- ``dumps`` writes numpy arrays and scalars as their values; a non-finite float is
  written as ``NaN``/``Infinity`` as Python's ``json`` (and KServe) do.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "loads"]

orjson: Any
try:
    import orjson
except ImportError:  # pragma: no cover - the serving extra installs it
    orjson = None


def _std_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True,
                      default=_std_default).encode()


def _finite(obj: Any) -> bool:
    """Whether ``obj`` holds no NaN/Infinity floats (orjson would write them as null)."""
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite(v) for v in obj)
    return True


if orjson is not None:
    _OPTIONS = orjson.OPT_SERIALIZE_NUMPY

    def dumps(obj: Any) -> bytes:
        """Serialise ``obj`` compactly to UTF-8 bytes."""
        try:
            out: bytes = orjson.dumps(obj, option=_OPTIONS)
        except TypeError:  # e.g. a non-string key, a non-contiguous array: be lenient
            return _std_dumps(obj)
        if b"null" in out and not _finite(obj):
            return _std_dumps(obj)
        return out

    def loads(raw: bytes | str) -> Any:
        """Parse JSON.

        Raises:
            ValueError: If ``raw`` is not JSON (the standard library's message).
        """
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return json.loads(raw)
else:  # pragma: no cover
    dumps = _std_dumps

    def loads(raw: bytes | str) -> Any:
        """Parse JSON.

        Raises:
            ValueError: If ``raw`` is not JSON.
        """
        return json.loads(raw)
