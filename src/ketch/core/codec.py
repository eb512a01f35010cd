"""JSON for the hot paths, and the one safe decoder for untrusted JSON and YAML.

Every status write serializes the whole object (a pipeline run's IR included) and every
watch event ships it, so ``dumps``/``loads`` are orjson (about 10x the standard library's
speed on those bodies), with the standard library for what orjson refuses: integers beyond
64 bits when writing, and the NaN/Infinity tokens older versions wrote when reading. They
are for bodies ketch wrote itself.

Text from users (request bodies, ``ketch apply -f`` files) goes through ``decode_body`` or
``safe_load_all``, which refuse what would otherwise take the server down: YAML aliases
that expand a few kilobytes into hundreds of megabytes (go-yaml's "excessive aliasing"
rule, which kube-apiserver applies), nesting deeper than ``MAX_DEPTH`` (Python's parsers
and serializers recurse, and fail with a RecursionError or a depth error far below
Kubernetes' 10,000 levels), and NUL characters (PostgreSQL cannot store them in JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, SequenceNode

from ketch.core.errors import BadRequestError, FieldError

__all__ = ["MAX_DEPTH", "check_decoded", "decode_body", "decode_json", "dumps", "loads",
           "safe_load_all"]

# Levels of nesting a document may have (the object itself is level 1). Real objects use
# a few dozen (a KFP IR about 15); the model layer's serializer stops near 250.
MAX_DEPTH = 128

# go-yaml v3's limits (decode.go, allowedAliasRatio): past 100 aliased nodes and 1,000 in
# all, the share of nodes reached through aliases may be 99% up to 400,000 nodes, falling
# to 10% at 4,000,000.
_ALIAS_LOW = 400_000
_ALIAS_HIGH = 4_000_000


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


class _LimitError(ComposerError):
    """Well-formed YAML over one of the limits (not "malformed")."""


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_LOW:
        return 0.99
    if decoded >= _ALIAS_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_LOW) / (_ALIAS_HIGH - _ALIAS_LOW)


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only) with a depth limit while composing and
    go-yaml's alias rule checked on the composed graph before anything is constructed
    (PyYAML shares an aliased node instead of copying it, so the bomb goes off later, when
    the object is validated or serialized: this counts what that would expand to)."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _LimitError(None, None, f"nesting deeper than {MAX_DEPTH} levels",
                                  event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            _check_aliases(node)
        return node


def _check_aliases(root: Node) -> None:
    sizes: dict[int, int] = {}  # id(node) -> nodes it expands to, once fully walked
    open_ids: set[int] = set()
    decoded = aliased = 0

    def walk(node: Node) -> int:
        nonlocal decoded, aliased
        key = id(node)
        if key in sizes:  # a later reference to an anchored node: an alias
            decoded += sizes[key]
            aliased += sizes[key]
            if (aliased > 100 and decoded > 1000
                    and aliased / decoded > _allowed_alias_ratio(decoded)):
                raise _LimitError(None, None, "document contains excessive aliasing",
                                    node.start_mark)
            return sizes[key]
        if key in open_ids:
            raise _LimitError(None, None, "an anchor's value contains an alias of itself",
                                node.start_mark)
        decoded += 1
        size = 1
        open_ids.add(key)
        if isinstance(node, SequenceNode):
            for child in node.value:
                size += walk(child)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                size += walk(k) + walk(v)
        open_ids.discard(key)
        sizes[key] = size
        return size

    walk(root)


def _mark(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"


def safe_load_all(text: str | bytes, source: str = "<input>") -> list[Any]:
    """Every document of a YAML stream as plain data, within the limits above.

    Raises:
        BadRequestError: malformed YAML, or over a limit; the message names ``source``
            and the line.
    """
    docs: list[Any] = []
    try:
        # The reader checks the first bytes already (a NUL or bad UTF-8 raises here).
        loader = _SafeLoader(text)
        try:
            while loader.check_data():  # type: ignore[no-untyped-call]
                docs.append(loader.get_data())
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        what = "YAML" if isinstance(err, _LimitError) else "malformed YAML"
        raise BadRequestError(f"{what} at {_mark(err)}: {problem}", source=source) from None
    for doc in docs:
        check_decoded(doc, source)
    return docs


def _walk(value: Any) -> Iterator[tuple[Any, list[Any], int]]:
    """(value, path, depth) for every value and key, without recursion."""
    stack: list[tuple[Any, list[Any], int]] = [(value, [], 1)]
    while stack:
        item, path, depth = stack.pop()
        yield item, path, depth
        if isinstance(item, dict):
            for k, v in item.items():
                yield k, path, depth + 1
                stack.append((v, [*path, k], depth + 1))
        elif isinstance(item, list):
            stack.extend((v, [*path, i], depth + 1) for i, v in enumerate(item))


def _dotted(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_decoded(value: Any, source: str = "request body") -> None:
    """Refuse nesting past ``MAX_DEPTH`` and NUL characters in decoded data."""
    for item, path, depth in _walk(value):
        if depth > MAX_DEPTH:
            raise BadRequestError("too deeply nested", [FieldError(
                _dotted(path[:8]) + ("..." if len(path) > 8 else ""),
                f"nested deeper than {MAX_DEPTH} levels")], source)
        if isinstance(item, str) and "\x00" in item:
            raise BadRequestError("invalid character", [FieldError(
                _dotted(path), "strings may not contain NUL (U+0000)")], source)


def decode_body(raw: bytes, source: str = "request body") -> Any:
    """An untrusted body as JSON, or else as YAML (a superset), within the limits above.

    Raises:
        BadRequestError: it is neither, or it is over a limit.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Not JSON orjson takes (YAML, NaN, a huge integer, or nested past orjson's own
        # 1,024 levels): YAML reads all of those, and stops nesting at MAX_DEPTH.
        docs = safe_load_all(raw, source)
        if len(docs) > 1:
            raise BadRequestError("a request body holds one document, not "
                                  f"{len(docs)}", source=source) from None
        return docs[0] if docs else None
    check_decoded(value, source)
    return value


def decode_json(raw: bytes, source: str = "request body") -> Any:
    """An untrusted body that must be JSON (no YAML), within the limits above.

    Raises:
        BadRequestError: not JSON, or over a limit.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        try:  # what orjson alone refuses: NaN and Infinity, integers past 64 bits
            value = json.loads(raw)
        except RecursionError:
            raise BadRequestError("too deeply nested", [FieldError(
                "", f"nested deeper than {MAX_DEPTH} levels")], source) from None
        except ValueError:
            raise BadRequestError(f"malformed JSON: {err}", source=source) from None
    check_decoded(value, source)
    return value
