"""The Model Registry ``filterQuery`` language: parse it, compile it to SQL.

The grammar and semantics are upstream Kubeflow Model Registry's
(``internal/platform/db/filter``; see ``docs/design/registry-api-notes.md`` §5)::

    name = "my-model" AND (state = 'LIVE' OR accuracy > 0.95)
    `mlflow.source.type` = "notebook" AND id IN (1, 2) -- comment

Deviations: ``<>`` is not-equal (upstream treats it as ``=``); names are stored
plain, so ``name`` compares without a ``<parentId>:`` prefix; ``LIKE`` is
case-sensitive with ``\\`` as escape on every backend (SQLite included).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Boolean, ColumnElement, Table, and_, cast, false, func, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["And", "Comparison", "Expr", "FilterError", "Or", "PropertyRef", "compile_filter",
           "parse_filter"]

Scalar = str | int | float | bool


class FilterError(ValueError):
    """A filterQuery that does not parse or does not fit the properties it names."""


@dataclass(frozen=True)
class PropertyRef:
    """A property: well-known or custom; ``value_type`` is an explicit ``.int_value`` etc."""

    name: str
    value_type: str | None = None


@dataclass(frozen=True)
class Comparison:
    """``ref op value``; ``op`` is upper-case; ``value`` is a tuple for ``IN``."""

    ref: PropertyRef
    op: str
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class And:
    """All of ``terms``."""

    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Any of ``terms``."""

    terms: tuple[Expr, ...]


Expr = Or | And | Comparison

# -- lexer ------------------------------------------------------------------------------------

_KEYWORDS = {"AND", "OR", "LIKE", "ILIKE", "IN", "TRUE", "FALSE"}
_TYPES = {"string_value", "double_value", "int_value", "bool_value"}
_OPS = ("!=", "<>", ">=", "<=", "=", ">", "<")
_NUMBER = re.compile(r"[-+]?(?:\d*\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|(\d+))")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, quoted, string, number, op, kw, punct, eof
    value: Any
    pos: int
    text: str


def _unescape(body: str, escapes: str) -> str:
    return re.sub(r"\\(.)", lambda m: m.group(1) if m.group(1) in escapes else m.group(0), body,
                  flags=re.DOTALL)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch in "'\"`":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                what = "backquoted name" if ch == "`" else "string"
                raise FilterError(f"filterQuery: unterminated {what} starting at position {i}")
            raw = text[i + 1:j]
            if ch == "`":
                if not raw:
                    raise FilterError(f"filterQuery: empty backquoted name at position {i}")
                tokens.append(_Token("quoted", _unescape(raw, ".\\`"), i, text[i:j + 1]))
            else:
                tokens.append(_Token("string", _unescape(raw, "\"'\\"), i, text[i:j + 1]))
            i = j + 1
        elif m := _NUMBER.match(text, i):
            if m.group(1) is not None:
                value: int | float = int(m.group(0))
                if abs(value) > _MAX_INT:
                    raise FilterError(f"filterQuery: integer {m.group(0)} out of range at "
                                      f"position {i}")
            else:
                value = float(m.group(0))
            tokens.append(_Token("number", value, i, m.group(0)))
            i = m.end()
        elif m := _IDENT.match(text, i):
            word = m.group(0)
            kind = "kw" if word.upper() in _KEYWORDS else "ident"
            tokens.append(_Token(kind, word.upper() if kind == "kw" else word, i, word))
            i = m.end()
        elif op := next((o for o in _OPS if text.startswith(o, i)), None):
            if text.startswith("==", i):
                raise FilterError(f"filterQuery: unknown operator '{text[i:i + 3].strip()}' at "
                                  f"position {i}")
            tokens.append(_Token("op", op, i, op))
            i += len(op)
        elif ch in "(),.":
            tokens.append(_Token("punct", ch, i, ch))
            i += 1
        else:
            raise FilterError(f"filterQuery: unexpected character {ch!r} at position {i}")
    tokens.append(_Token("eof", None, n, "end of query"))
    return tokens


# -- parser -----------------------------------------------------------------------------------


# Parentheses a query may nest: the parser and the SQL compiler recurse once per level, and
# SQLite refuses expressions deeper than 1,000 (a 5,000-deep query was a 500).
MAX_NESTING = 64


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        self.i += 1
        return self.tokens[self.i - 1]

    def at(self, kind: str, value: Any = None) -> bool:
        return self.tok.kind == kind and (value is None or self.tok.value == value)

    def accept(self, kind: str, value: Any = None) -> bool:
        if self.at(kind, value):
            self.i += 1
            return True
        return False

    def fail(self, expected: str) -> FilterError:
        tok = self.tok
        found = "end of query" if tok.kind == "eof" else repr(tok.text)
        return FilterError(f"filterQuery: expected {expected} at position {tok.pos}, "
                           f"found {found}")

    def parse(self) -> Expr:
        expr = self.or_expr()
        if not self.at("eof"):
            raise self.fail("AND, OR or end of query")
        return expr

    def or_expr(self) -> Expr:
        terms = [self.and_expr()]
        while self.accept("kw", "OR"):
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> Expr:
        terms = [self.term()]
        while self.accept("kw", "AND"):
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def term(self) -> Expr:
        if self.at("punct", "("):
            if self.depth == MAX_NESTING:
                raise FilterError(f"filterQuery: parentheses nested deeper than {MAX_NESTING} "
                                  f"levels at position {self.tok.pos}")
            self.take()
            self.depth += 1
            expr = self.or_expr()
            if not self.accept("punct", ")"):
                raise self.fail("')'")
            self.depth -= 1
            return expr
        ref = self.property_ref()
        if not (self.at("op") or (self.at("kw") and self.tok.value in ("LIKE", "ILIKE", "IN"))):
            raise self.fail("an operator (=, !=, <>, <, >, <=, >=, LIKE, ILIKE, IN)")
        op_tok = self.take()
        if op_tok.value != "IN":
            return Comparison(ref, op_tok.value, self.scalar(f"a value after '{op_tok.text}'"))
        if not self.accept("punct", "("):
            raise self.fail("'(' after IN")
        items: list[Scalar] = []
        while not self.accept("punct", ")"):
            if items and not self.accept("punct", ","):
                raise self.fail("',' or ')'")
            items.append(self.scalar("a value"))
        return Comparison(ref, "IN", tuple(items))

    def scalar(self, expected: str) -> Scalar:
        tok = self.tok
        if tok.kind == "kw" and tok.value in ("TRUE", "FALSE"):
            self.take()
            return bool(tok.value == "TRUE")
        if tok.kind in ("string", "number"):
            self.take()
            value: Scalar = tok.value
            return value
        raise self.fail(expected)

    def property_ref(self) -> PropertyRef:
        if self.at("quoted") or self.at("ident"):
            parts = [self.take().value]
        else:
            raise self.fail("a property name or '('")
        while self.at("punct", "."):
            self.take()
            if not self.at("ident"):
                raise self.fail("a name after '.'")
            parts.append(self.take().value)
        if len(parts) > 1 and parts[-1].lower() in _TYPES:
            return PropertyRef(".".join(parts[:-1]), parts[-1].lower())
        return PropertyRef(".".join(parts))


def parse_filter(text: str) -> Expr | None:
    """Parse a filterQuery.

    Args:
        text: The query, e.g. ``name = "m" AND accuracy > 0.9``.

    Returns:
        The expression, or None when the query is blank (whitespace and comments only).

    Raises:
        FilterError: The query does not parse; the message gives the (0-based) position.
    """
    parser = _Parser(text)
    return None if parser.at("eof") else parser.parse()


# -- SQL --------------------------------------------------------------------------------------


class _like(FunctionElement[bool]):
    """Case-sensitive LIKE with ``\\`` as escape: (column, LIKE pattern, GLOB pattern)."""

    type = Boolean()
    inherit_cache = True
    name = "ketch_like"


@compiles(_like)
def _like_default(element: _like, compiler: SQLCompiler, **kw: Any) -> str:
    col, pattern, _ = list(element.clauses)
    return compiler.process(col.like(pattern, escape="\\"), **kw)


@compiles(_like, "sqlite")
def _like_sqlite(element: _like, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's LIKE ignores ASCII case; GLOB does not.
    col, _, glob = list(element.clauses)
    return f"({compiler.process(col, **kw)} GLOB {compiler.process(glob, **kw)})"


def _glob(pattern: str, prop: str) -> str:
    out, it = [], iter(pattern)
    for ch in it:
        if ch == "\\":
            esc = next(it, None)
            if esc is None:
                raise FilterError(f"filterQuery: {prop}: LIKE pattern ends with a backslash")
            out.append(f"[{esc}]" if esc in "*?[" else esc)
        else:
            out.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch))
    return "".join(out)


# Kinds of well-known targets: "int" (integer column / numeric string), "str", "id" (an id kept
# as a string in the body: int literals compare as their decimal text), "float".
_Field = Callable[[Table], tuple[ColumnElement[Any], str]]


def _col(name: str, kind: str) -> _Field:
    return lambda t: (t.c[name], kind)


def _body(field: str, kind: str = "str") -> _Field:
    def get(t: Table) -> tuple[ColumnElement[Any], str]:
        node = t.c.body[field]
        if kind == "float":
            return node.as_float(), kind
        if kind == "int":
            return cast(node.as_string(), BigInteger), kind
        return node.as_string(), kind
    return get


def _fields(*names: str, **special: _Field) -> dict[str, _Field]:
    out = {n: _body(n, "id" if n.endswith("Id") and n != "modelSourceId" else "str")
           for n in names}
    return {**out, **special}


_COMMON = {"id": _col("id", "int"), "name": _col("name", "str"),
           "externalId": _col("external_id", "str"),
           "createTimeSinceEpoch": _col("create_ms", "int"),
           "lastUpdateTimeSinceEpoch": _col("update_ms", "int")}
_STATE = {"state": _col("state", "str")}
_ART = ("uri", "experimentId", "experimentRunId")
_SOURCE = tuple(f"modelSource{p}" for p in ("Kind", "Class", "Group", "Id", "Name"))
_FIELDS: dict[str, dict[str, _Field]] = {
    "RegisteredModel": _fields("owner", **_STATE),
    "ModelVersion": _fields("author", registeredModelId=_col("parent_id", "int"), **_STATE),
    "ServingEnvironment": {},
    "InferenceService": _fields("registeredModelId", "modelVersionId", "runtime", "desiredState",
                                servingEnvironmentId=_col("parent_id", "int")),
    "ModelArtifact": _fields(*_ART, "modelFormatName", "modelFormatVersion", "storageKey",
                             "storagePath", "serviceAccountName", *_SOURCE, **_STATE),
    "DocArtifact": _fields(*_ART, **_STATE),
    "DataSet": _fields(*_ART, "digest", "sourceType", "source", "schema", "profile", **_STATE),
    "Metric": _fields(*_ART, value=_body("value", "float"), timestamp=_body("timestamp", "int"),
                      step=_body("step", "int"), **_STATE),
    "Parameter": _fields(*_ART, "value", "parameterType", **_STATE),
    "ServeModel": _fields("lastKnownState", "modelVersionId", "inferenceServiceId",
                          "registeredModelId", "servingEnvironmentId"),
    "Experiment": _fields("owner", **_STATE),
    "ExperimentRun": _fields("status", "owner", experimentId=_col("parent_id", "int"),
                             startTimeSinceEpoch=_body("startTimeSinceEpoch", "int"),
                             endTimeSinceEpoch=_body("endTimeSinceEpoch", "int"), **_STATE),
}


def _kind_of(value: Scalar) -> str:
    return ("bool" if isinstance(value, bool) else "int" if isinstance(value, int)
            else "float" if isinstance(value, float) else "str")


def _coerce(value: Scalar, kind: str, prop: str) -> Scalar:
    """``value`` as what a target of ``kind`` compares with, or FilterError."""
    vk = _kind_of(value)
    if kind in ("int", "float", "double", "custom_int") and vk in ("int", "float"):
        return value
    if kind == "int" and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if (kind in ("str", "id") and vk == "str") or (kind == "bool" and vk == "bool"):
        return value
    if kind == "id" and vk == "int":
        return str(value)
    want = {"str": "a string", "id": "an id", "bool": "true or false"}.get(kind, "a number")
    raise FilterError(f"filterQuery: {prop} needs {want}, not {value!r}")


_COMPARE = {"=": operator.eq, "!=": operator.ne, "<>": operator.ne, "<": operator.lt,
            ">": operator.gt, "<=": operator.le, ">=": operator.ge}


def _condition(col: ColumnElement[Any], kind: str, op: str, value: Any,
               prop: str) -> ColumnElement[bool]:
    if op == "IN":
        return col.in_([_coerce(v, kind, prop) for v in value])
    if op in ("LIKE", "ILIKE"):
        if kind not in ("str", "id") or not isinstance(value, str):
            raise FilterError(f"filterQuery: {op} needs a string property and a string "
                              f"pattern ({prop})")
        if op == "ILIKE":
            return func.lower(col).like(func.lower(value), escape="\\")
        return _like(col, value, _glob(value, prop))
    v = _coerce(value, kind, prop)
    if kind == "bool" and op not in ("=", "!=", "<>"):
        raise FilterError(f"filterQuery: {prop} is a boolean; {op} does not apply")
    compare: Callable[[Any, Any], ColumnElement[bool]] = _COMPARE[op]
    return compare(col, v)


def _custom(t: Table, ref: PropertyRef, op: str, value: Scalar | tuple[Scalar, ...]
            ) -> ColumnElement[bool]:
    if not ref.name or any(c in ref.name for c in '"\\,{}') or ref.name != ref.name.strip() \
            or ref.name.lower() == "null":
        raise FilterError(f"filterQuery: unsupported custom property name {ref.name!r}")
    first = value[0] if isinstance(value, tuple) else value
    vtype = ref.value_type or {"str": "string_value", "float": "double_value",
                               "bool": "bool_value", "int": "int_value"}[_kind_of(first)]
    types = [vtype, "double_value"] if ref.value_type is None and vtype == "int_value" else [vtype]
    conds = []
    for vt in types:
        node = t.c.body[("customProperties", ref.name, vt)]
        col, kind = {"string_value": (node.as_string(), "str"),
                     "double_value": (node.as_float(), "double"),
                     "bool_value": (node.as_boolean(), "bool"),
                     "int_value": (cast(node.as_string(), BigInteger), "custom_int")}[vt]
        conds.append(and_(col.is_not(None), _condition(col, kind, op, value, ref.name)))
    return conds[0] if len(conds) == 1 else or_(*conds)


def compile_filter(expr: Expr, entity_type: str, table: Table) -> ColumnElement[bool]:
    """Compile a parsed filterQuery into a WHERE condition on ``table``.

    Args:
        expr: From :func:`parse_filter`.
        entity_type: What is listed (``RegisteredModel``, ``ModelVersion``, ``ModelArtifact``,
            ...); picks the well-known properties, every other name is a custom property.
        table: The ``registry_entities`` table.

    Returns:
        A boolean SQL expression, portable across SQLite and PostgreSQL.

    Raises:
        FilterError: A value does not fit its property (``id = "abc"``, ``LIKE`` on a number).
    """
    if isinstance(expr, Or):
        return or_(*(compile_filter(e, entity_type, table) for e in expr.terms))
    if isinstance(expr, And):
        return and_(*(compile_filter(e, entity_type, table) for e in expr.terms))
    if isinstance(expr.value, tuple) and not expr.value:
        return false()
    ref = expr.ref
    field = ({**_COMMON, **_FIELDS.get(entity_type, {})}.get(ref.name)
             if ref.value_type is None else None)
    if field is None:
        return _custom(table, ref, expr.op, expr.value)
    col, kind = field(table)
    return _condition(col, kind, expr.op, expr.value, ref.name)
