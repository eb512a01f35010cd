"""The hot-path JSON codec behaves as the standard library where it matters."""

from __future__ import annotations

import json

from ketch.core.codec import dumps, loads


def test_round_trip_and_what_orjson_alone_would_refuse() -> None:
    value = {"a": [1, 2.5, "x", None, True], "nested": {"k": {"deep": []}}}
    assert loads(dumps(value)) == value
    assert loads(dumps({1: "int key"})) == {"1": "int key"}  # as json.dumps writes it
    big = {"n": 2**70}
    assert loads(dumps(big)) == big  # beyond 64 bits: the standard library writes it
    assert loads(json.dumps({"x": float("nan")}))["x"] != 0  # NaN written by older versions
    assert loads(b'{"b": "bytes in"}') == {"b": "bytes in"}
