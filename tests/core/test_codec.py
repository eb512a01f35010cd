"""The hot-path JSON codec behaves as the standard library where it matters."""

from __future__ import annotations

import json

import pytest

from ketch.core.codec import MAX_DEPTH, decode_body, dumps, loads, safe_load_all
from ketch.core.errors import BadRequestError, InvalidError
from ketch.core.loader import load_documents


def test_round_trip_and_what_orjson_alone_would_refuse() -> None:
    value = {"a": [1, 2.5, "x", None, True], "nested": {"k": {"deep": []}}}
    assert loads(dumps(value)) == value
    assert loads(dumps({1: "int key"})) == {"1": "int key"}  # as json.dumps writes it
    big = {"n": 2**70}
    assert loads(dumps(big)) == big  # beyond 64 bits: the standard library writes it
    assert loads(json.dumps({"x": float("nan")}))["x"] != 0  # NaN written by older versions
    assert loads(b'{"b": "bytes in"}') == {"b": "bytes in"}


# -- the decoder of untrusted bodies and files ------------------------------------------------


def _alias_bomb(levels: int = 8, width: int = 9) -> str:
    """The probe of issue 10.1: ~11 KB of YAML whose aliases expand to 9^8 nodes."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return ("apiVersion: pipelines.kubeflow.org/v2beta1\nkind: PipelineRun\n"
            "metadata: {name: bomb}\nspec:\n  pipelineSpec:\n"
            + "".join(f"    {line}\n" for line in lines))


def test_yaml_alias_bomb_is_refused_before_it_expands() -> None:
    with pytest.raises(BadRequestError, match="excessive aliasing") as caught:
        decode_body(_alias_bomb().encode())
    assert caught.value.http_status == 400
    assert "line 1" not in caught.value.message  # it names where: the first heavy alias
    with pytest.raises(BadRequestError, match="excessive aliasing"):
        safe_load_all(_alias_bomb(), "bomb.yaml")


def test_ordinary_aliases_and_merge_keys_still_load() -> None:
    text = ("defaults: &d {cpu: 1, memory: 1Gi}\n"
            "a: {<<: *d, name: a}\nb: {<<: *d, name: b}\nc: *d\n")
    assert decode_body(text.encode()) == {
        "defaults": {"cpu": 1, "memory": "1Gi"}, "a": {"cpu": 1, "memory": "1Gi", "name": "a"},
        "b": {"cpu": 1, "memory": "1Gi", "name": "b"}, "c": {"cpu": 1, "memory": "1Gi"}}


def test_an_anchor_that_contains_itself_is_refused() -> None:
    with pytest.raises(BadRequestError, match="contains an alias of itself"):
        decode_body(b"a: &a [1, *a]")


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,  # JSON past orjson's own depth: read as YAML
    b'{"a":' * 200 + b"1" + b"}" * 200,  # JSON orjson reads, past MAX_DEPTH
    ("a:\n" + "".join(" " * i + "- \n" for i in range(1, 3000))).encode(),  # block YAML
], ids=["json-100k-list", "json-200-objects", "yaml-3k-block"])
def test_nesting_past_the_limit_is_a_400_not_a_recursion_error(raw: bytes) -> None:
    with pytest.raises(BadRequestError, match=f"deeper than {MAX_DEPTH} levels") as caught:
        decode_body(raw)
    assert caught.value.http_status == 400


def test_nesting_up_to_the_limit_is_fine() -> None:
    raw = b'{"a":' * (MAX_DEPTH - 1) + b"1" + b"}" * (MAX_DEPTH - 1)
    value = decode_body(raw)
    assert loads(dumps(value)) == value
    assert decode_body(raw.decode().replace('"a":', "a: ").encode()) == value


def test_nul_characters_are_refused_naming_the_field() -> None:
    with pytest.raises(BadRequestError, match=r"spec\.args\[1\]: strings may not contain NUL"):
        decode_body(b'{"spec": {"args": ["ok", "bad\\u0000"]}}')


@pytest.mark.parametrize("raw", [b"\x00", b"a: \x80", b"{\"a\": \"\x00\"}"])
def test_bytes_no_decoder_takes_are_a_400(raw: bytes) -> None:
    # Schemathesis found the first: a 500 (the YAML reader raised before parsing began).
    with pytest.raises(BadRequestError) as caught:
        decode_body(raw)
    assert "\n" not in caught.value.message  # one line


def test_apply_files_go_through_the_same_loader() -> None:
    with pytest.raises(InvalidError, match=r"bomb\.yaml: YAML at line .*excessive aliasing"):
        load_documents(_alias_bomb(), "bomb.yaml")
    with pytest.raises(InvalidError, match=r"bomb\.yaml: malformed YAML at line 1"):
        load_documents("a: [", "bomb.yaml")
