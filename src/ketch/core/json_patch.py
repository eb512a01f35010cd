"""RFC 6902 JSON Patch (``application/json-patch+json``) over plain JSON values.

Operations ``add``, ``remove``, ``replace``, ``move``, ``copy`` and ``test`` with RFC
6901 pointers (``~1`` is ``/``, ``~0`` is ``~``; ``-`` appends to an array). The patch
applies to a copy, all or nothing. A patch that is not a list of operations is a
``BadRequestError`` (400, as kube-apiserver answers a patch it cannot decode); an
operation that cannot apply (a missing path, a failed ``test``) is an ``InvalidError``
(422, as kube-apiserver answers a patch that does not apply), naming the operation's
index and path.
"""

from __future__ import annotations

import copy
from typing import Any

from ketch.core.errors import BadRequestError, FieldError, InvalidError

__all__ = ["apply_json_patch"]

_OPS = ("add", "remove", "replace", "move", "copy", "test")


class _Fail(Exception):
    pass


def _tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise _Fail(f"{pointer!r} is not a JSON pointer (it must be empty or start with '/')")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _index(container: list[Any], token: str, *, adding: bool) -> int:
    if token == "-" and adding:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise _Fail(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not adding):
        raise _Fail(f"index {index} is out of range (the array has {len(container)} items)")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, adding=False)]
        else:
            raise _Fail("the path does not exist")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _Fail("the path does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, adding=False)]
    raise _Fail("the path does not exist")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, adding=True), value)
    else:
        raise _Fail("the path's parent is not an object or an array")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _Fail("the whole document cannot be removed")
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _Fail("the path does not exist")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, adding=False)]
    else:
        raise _Fail("the path does not exist")
    return doc


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and 1.0 are equal, True and 1 are not.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _step(doc: Any, op: dict[str, Any]) -> Any:
    kind, path = op["op"], _tokens(op.get("path"))
    if kind in ("add", "replace", "test") and "value" not in op:
        raise _Fail(f"a {kind} operation needs a value")
    if kind == "add":
        return _add(doc, path, copy.deepcopy(op["value"]))
    if kind == "remove":
        return _remove(doc, path)
    if kind == "replace":
        _get(doc, path)  # the target must exist
        if not path:
            return copy.deepcopy(op["value"])
        parent, last = _parent(doc, path), path[-1]
        key = _index(parent, last, adding=False) if isinstance(parent, list) else last
        parent[key] = copy.deepcopy(op["value"])
        return doc
    if kind == "test":
        if not _same(_get(doc, path), op["value"]):
            raise _Fail("test failed: the value differs")
        return doc
    source = _tokens(op.get("from"))
    value = copy.deepcopy(_get(doc, source))
    if kind == "move":
        if path[:len(source)] == source and path != source:
            raise _Fail("a value cannot move into itself")
        doc = _remove(doc, source)
    return _add(doc, path, value)


def apply_json_patch(doc: Any, patch: Any) -> Any:
    """``patch`` (a list of operations) applied to a copy of ``doc``."""
    if not isinstance(patch, list):
        raise BadRequestError("a JSON patch must be a list of operations")
    for index, op in enumerate(patch):
        if not isinstance(op, dict) or op.get("op") not in _OPS:
            raise BadRequestError("invalid JSON patch", [FieldError(
                f"[{index}].op", f"must be one of {', '.join(_OPS)}")])
    result = copy.deepcopy(doc)
    for index, op in enumerate(patch):
        try:
            result = _step(result, op)
        except _Fail as err:
            raise InvalidError("the JSON patch does not apply", [FieldError(
                f"[{index}]", f"{op['op']} {op.get('path')!r}: {err}")]) from None
    return result
