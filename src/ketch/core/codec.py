"""JSON for the hot paths: stored bodies, watch events, the client's streams.

Every status write serializes the whole object (a pipeline run's IR included) and every
watch event ships it, so this is orjson (about 10x the standard library's speed on those
bodies), with the standard library for what orjson refuses: integers beyond 64 bits when
writing, and the NaN/Infinity tokens older versions wrote when reading.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]


def dumps(value: Any) -> str:
    """Compact JSON text; dict keys that are not strings are written as strings."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
