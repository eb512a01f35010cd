"""The registry's filterQuery: parsing (upstream grammar) and execution on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from ketch.registry._filter import (
    And,
    Comparison,
    FilterError,
    Or,
    PropertyRef,
    compile_filter,
    parse_filter,
)
from ketch.registry._tables import entities, metadata


def cmp(name: str, op: str, value: Any, value_type: str | None = None) -> Comparison:
    return Comparison(PropertyRef(name, value_type), op, value)


# -- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ('name = "my-model"', cmp("name", "=", "my-model")),
    ("name='my-model' AND state='LIVE'",
     And((cmp("name", "=", "my-model"), cmp("state", "=", "LIVE")))),
    ("accuracy > 0.95", cmp("accuracy", ">", 0.95)),
    ("enabled = true", cmp("enabled", "=", True)),
    ("enabled = FALSE", cmp("enabled", "=", False)),
    ('name LIKE "%tensorflow%"', cmp("name", "LIKE", "%tensorflow%")),
    ('name ILIKE "%Test%"', cmp("name", "ILIKE", "%Test%")),
    ('name like "x%" or name ilike "y%"',
     Or((cmp("name", "LIKE", "x%"), cmp("name", "ILIKE", "y%")))),
    ('(name = "model-a" OR name = "model-b") AND state = "LIVE"',
     And((Or((cmp("name", "=", "model-a"), cmp("name", "=", "model-b"))),
          cmp("state", "=", "LIVE")))),
    ('framework.string_value = "pytorch"', cmp("framework", "=", "pytorch", "string_value")),
    ("budget.double_value > 10000 AND priority.INT_VALUE < 5",
     And((cmp("budget", ">", 10000, "double_value"), cmp("priority", "<", 5, "int_value")))),
    ("flag.bool_value != true", cmp("flag", "!=", True, "bool_value")),
    ('`mlflow.source.type` = "notebook"', cmp("mlflow.source.type", "=", "notebook")),
    ('mlflow.source.type = "notebook"', cmp("mlflow.source.type", "=", "notebook")),
    ("`custom-metric` > 0.8", cmp("custom-metric", ">", 0.8)),
    (r"`a\.b\\c` = 1", cmp("a.b\\c", "=", 1)),
    ('id IN (200, 201) AND name = "test"',
     And((cmp("id", "IN", (200, 201)), cmp("name", "=", "test")))),
    ("status IN (\"active\",'pending')", cmp("status", "IN", ("active", "pending"))),
    ("id in ()", cmp("id", "IN", ())),
    ("a=1 OR b=2 AND c=3", Or((cmp("a", "=", 1), And((cmp("b", "=", 2), cmp("c", "=", 3)))))),
    ("a=1 AND b=2 OR c=3", Or((And((cmp("a", "=", 1), cmp("b", "=", 2))), cmp("c", "=", 3)))),
    ("a=1 AND (b=2 OR c=3)", And((cmp("a", "=", 1), Or((cmp("b", "=", 2), cmp("c", "=", 3)))))),
    ("((a <> 1))", cmp("a", "<>", 1)),
    ("a >= -2 AND b <= +3 AND c < 1.5e3 AND d > .5 AND e != 2E-1",
     And((cmp("a", ">=", -2), cmp("b", "<=", 3), cmp("c", "<", 1500.0), cmp("d", ">", 0.5),
          cmp("e", "!=", 0.2)))),
    (r'owner = "say \"hi\" \\ it\'s"', cmp("owner", "=", "say \"hi\" \\ it's")),
    (r"owner = 'it\'s'", cmp("owner", "=", "it's")),
    ("-- leading comment\nname = 'x' -- trailing", cmp("name", "=", "x")),
])
def test_parse_valid(text: str, expected: Any) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "-- just a comment", "\n -- a\n -- b\n"])
def test_parse_blank_is_no_filter(text: str) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(("text", "message"), [
    ("name = ", "expected a value after '=' at position 7"),
    ('name "test"', "expected an operator"),
    ('(name = "test"', "expected ')' at position 14"),
    ('name === "test"', "unknown operator '===' at position 5"),
    ('name = "test', "unterminated string starting at position 7"),
    ("name = 'test", "unterminated string starting at position 7"),
    ("`name = 1", "unterminated backquoted name starting at position 0"),
    ("name = 1 AND", "expected a property name or '(' at position 12"),
    ("name = 1 name = 2", "expected AND, OR or end of query at position 9"),
    ("id IN 1", "expected '(' after IN at position 6"),
    ("id IN (1 2)", "expected ',' or ')' at position 9"),
    ("id IN (1,", "expected a value at position 9"),
    ("name = x", "expected a value after '=' at position 7"),
    ("a. = 1", "expected a name after '.' at position 3"),
    ("a = 1 # x", "unexpected character '#' at position 6"),
    ("a = 99999999999999999999", "out of range"),
    ("AND = 1", "expected a property name"),
])
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(FilterError, match="filterQuery: ") as info:
        parse_filter(text)
    assert message in str(info.value)


def test_parentheses_nest_to_a_limit_not_to_a_recursion_error() -> None:
    # Issue 10.1's probe: 5,000 nested parentheses were a RecursionError (a 500).
    with pytest.raises(FilterError, match="nested deeper than 64 levels at position 64"):
        parse_filter("(" * 5000 + "name = 'a'" + ")" * 5000)
    assert parse_filter("(" * 64 + "name = 'a'" + ")" * 64) == cmp("name", "=", "a")


@pytest.mark.parametrize(("text", "entity_type", "message"), [
    ('id = "abc"', "RegisteredModel", "id needs a number"),
    ("name = 5", "RegisteredModel", "name needs a string"),
    ("name LIKE 5", "RegisteredModel", "LIKE needs a string"),
    ('id LIKE "1%"', "RegisteredModel", "(id)"),
    ("accuracy ILIKE 0.5", "RegisteredModel", "ILIKE needs a string"),
    ("ok < true", "RegisteredModel", "ok is a boolean"),
    ('n.int_value = "x"', "RegisteredModel", "n needs a number"),
    ("fw.string_value = 1", "RegisteredModel", "fw needs a string"),
    ("ok.bool_value = 1", "RegisteredModel", "ok needs true or false"),
    ('createTimeSinceEpoch IN (1, "x")', "RegisteredModel", "createTimeSinceEpoch needs"),
    ("registeredModelId = true", "ModelVersion", "registeredModelId needs"),
    ('`a"b` = 1', "RegisteredModel", "unsupported custom property name"),
    (r'name LIKE "x\"', "RegisteredModel", None),
])
def test_compile_type_errors(text: str, entity_type: str, message: str | None) -> None:
    try:
        expr = parse_filter(text)
    except FilterError:  # the last case: an unterminated string, caught by the lexer
        assert message is None
        return
    assert expr is not None
    with pytest.raises(FilterError) as info:
        compile_filter(expr, entity_type, entities)
    assert message is not None and message in str(info.value)


def test_like_pattern_ending_in_backslash() -> None:
    expr = parse_filter(r'name LIKE "x\\"')
    assert expr is not None
    with pytest.raises(FilterError, match="backslash"):
        compile_filter(expr, "RegisteredModel", entities)


# -- execution ------------------------------------------------------------------------------------


def _props(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("__", ".")
        if isinstance(value, bool):
            out[name] = {"bool_value": value, "metadataType": "MetadataBoolValue"}
        elif isinstance(value, int):
            out[name] = {"int_value": str(value), "metadataType": "MetadataIntValue"}
        elif isinstance(value, float):
            out[name] = {"double_value": value, "metadataType": "MetadataDoubleValue"}
        else:
            out[name] = {"string_value": value, "metadataType": "MetadataStringValue"}
    return out


ROWS: list[tuple[int, str, int, str, str, dict[str, Any]]] = [
    # id, entity_type, parent_id, name, state, body
    (1, "RegisteredModel", 0, "alpha-model", "LIVE",
     {"owner": "alice", "customProperties": _props(
         accuracy=0.9, n=42, fw="torch", ok=True, mlflow__source__type="notebook")}),
    (2, "RegisteredModel", 0, "Beta-Model", "ARCHIVED",
     {"owner": "bob", "customProperties": _props(
         accuracy=0.5, n=7, fw="tf", ok=False, mlflow__source__type="job")}),
    (3, "RegisteredModel", 0, "gamma", "LIVE",
     {"owner": "alice", "customProperties": _props(n=42.0, **{"custom-metric": 0.85})}),
    (4, "RegisteredModel", 0, "delta_model", "LIVE", {"owner": "carol"}),
    (5, "ModelVersion", 1, "v1", "LIVE",
     {"author": "alice", "registeredModelId": "1", "customProperties": _props(fw="torch")}),
    (6, "ModelVersion", 1, "v2", "ARCHIVED", {"author": "bob", "registeredModelId": "1"}),
    (7, "ModelVersion", 2, "v1", "LIVE", {"author": "carol", "registeredModelId": "2"}),
    (8, "ModelArtifact", 5, "alpha-model", "LIVE",
     {"uri": "s3://bucket/alpha", "modelFormatName": "onnx", "modelFormatVersion": "1",
      "customProperties": _props(size=1024)}),
]

RM, MV, MA = "RegisteredModel", "ModelVersion", "ModelArtifact"
CASES: list[tuple[str, str, list[int]]] = [
    (RM, 'name = "alpha-model"', [1]),
    (RM, "name != 'alpha-model'", [2, 3, 4]),
    (RM, 'name LIKE "%model%"', [1, 4]),  # case-sensitive: not "Beta-Model"
    (RM, 'name LIKE "%Model"', [2]),
    (RM, 'name LIKE "delta\\_model"', [4]),
    (RM, 'name LIKE "alpha_model"', [1]),
    (RM, 'name ILIKE "%MODEL%"', [1, 2, 4]),
    (RM, 'name ILIKE "beta%"', [2]),
    (RM, 'state = "LIVE"', [1, 3, 4]),
    (RM, 'state <> "LIVE"', [2]),
    (RM, "state != 'LIVE'", [2]),
    (RM, "id IN (1, 3, 99)", [1, 3]),
    (RM, "id IN ()", []),
    (RM, "id IN () OR id = 4", [4]),
    (RM, 'id = "2"', [2]),
    (RM, "id > 2", [3, 4]),
    (RM, "createTimeSinceEpoch >= 2000 AND createTimeSinceEpoch < 4000", [2, 3]),
    (RM, "lastUpdateTimeSinceEpoch > 2500", [3, 4]),
    (RM, 'externalId = "ext-2"', [2]),
    (RM, 'owner = "alice"', [1, 3]),
    (RM, 'owner IN ("bob", "carol")', [2, 4]),
    (RM, 'fw = "torch"', [1]),
    (RM, 'fw.string_value = "tf"', [2]),
    (RM, 'fw != "torch"', [2]),  # 3 and 4 have no fw
    (RM, 'fw LIKE "t%"', [1, 2]),
    (RM, 'fw IN ("torch", "tf", "jax")', [1, 2]),
    (RM, "n = 42", [1, 3]),  # int_value 42 on 1, double_value 42.0 on 3
    (RM, "n.int_value = 42", [1]),
    (RM, "n.double_value = 42", [3]),
    (RM, "n > 10", [1, 3]),
    (RM, "n < 10", [2]),
    (RM, "n != 42", [2]),
    (RM, "n IN (7, 42)", [1, 2, 3]),
    (RM, "n.int_value >= 7 AND n.int_value <= 8", [2]),
    (RM, "accuracy > 0.8", [1]),
    (RM, "accuracy.double_value <= 0.9", [1, 2]),
    (RM, "accuracy != 0.9", [2]),
    (RM, "accuracy >= 0", [1, 2]),
    (RM, "ok = true", [1]),
    (RM, "ok = false", [2]),
    (RM, "ok.bool_value != true", [2]),
    (RM, "ok != false", [1]),
    (RM, '`mlflow.source.type` = "notebook"', [1]),
    (RM, 'mlflow.source.type != "notebook"', [2]),
    (RM, "`custom-metric` > 0.8", [3]),
    (RM, 'name = "gamma" OR state = "ARCHIVED" AND owner = "alice"', [3]),
    (RM, '(name = "gamma" OR state = "ARCHIVED") AND owner = "bob"', [2]),
    (RM, 'state = "LIVE" AND owner = "alice" OR name = "delta_model"', [1, 3, 4]),
    (RM, 'unknownProp = "x"', []),
    (MV, "registeredModelId = 1", [5, 6]),
    (MV, 'registeredModelId = "2"', [7]),
    (MV, "registeredModelId IN (2)", [7]),
    (MV, 'name = "v1"', [5, 7]),
    (MV, 'name = "v1" AND registeredModelId = 2', [7]),
    (MV, 'author = "bob"', [6]),
    (MV, 'state = "LIVE" AND fw = "torch"', [5]),
    (MA, 'modelFormatName = "onnx"', [8]),
    (MA, 'uri LIKE "s3://%"', [8]),
    (MA, 'name = "alpha-model" AND state = "LIVE"', [8]),
    (MA, "size > 1000", [8]),
    (MA, 'modelFormatVersion = "2"', []),
]


def test_filters_on_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for id_, etype, parent, name, state, body in ROWS:
                conn.execute(insert(entities).values(
                    id=id_, namespace="ns", entity_type=etype, scope=etype, parent_id=parent,
                    name=name, external_id=f"ext-{id_}", state=state, create_ms=id_ * 1000,
                    update_ms=id_ * 1000 + 500, body=body))
            failures = []
            for etype, text, expected in CASES:
                expr = parse_filter(text)
                assert expr is not None
                stmt = (select(entities.c.id)
                        .where(entities.c.namespace == "ns", entities.c.entity_type == etype,
                               compile_filter(expr, etype, entities))
                        .order_by(entities.c.id))
                got = list(conn.execute(stmt).scalars())
                if got != expected:
                    failures.append(f"{etype} {text!r}: expected {expected}, got {got}")
        assert not failures, "\n".join(failures)
    finally:
        engine.dispose()
