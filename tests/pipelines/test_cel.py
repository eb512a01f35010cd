"""The CEL evaluator on the conditions KFP emits, and on CEL's own rules.

The ``KFP_CONDITIONS`` strings are every distinct ``triggerPolicy.condition`` in
kubeflow/pipelines ``test_data/sdk_compiled_pipelines/valid/**`` golden YAML
(compiled by kfp 2.x), copied verbatim as data.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from ketch.core.errors import InvalidError
from ketch.pipelines._cel import CelError, UInt, compile_expression, evaluate, evaluate_condition

P = "inputs.parameter_values"


def pv(**values: Any) -> dict[str, Any]:
    """Parameter values under KFP's ``pipelinechannel--`` names (``_`` -> ``-``)."""
    return {f"pipelinechannel--{k.replace('_', '-')}": v for k, v in values.items()}


# (condition, parameter values, expected) — conditions verbatim from KFP's golden files.
KFP_CONDITIONS: list[tuple[str, dict[str, Any], bool]] = [
    (f"{P}['pipelinechannel--flip-coin-Output'] == 'heads'", pv(flip_coin_Output="heads"),
     True),
    (f"{P}['pipelinechannel--flip-coin-Output'] == 'tails'", pv(flip_coin_Output="heads"),
     False),
    (f"!({P}['pipelinechannel--flip-coin-Output'] == 'heads')", pv(flip_coin_Output="heads"),
     False),
    (f"{P}['pipelinechannel--flip-coin-op-Output'] != 'no-such-result'",
     pv(flip_coin_op_Output="tails"), True),
    (f"{P}['pipelinechannel--flip-coin-op-2-Output'] == "
     f"{P}['pipelinechannel--flip-coin-op-3-Output']",
     pv(flip_coin_op_2_Output="heads", flip_coin_op_3_Output="heads"), True),
    (f"{P}['pipelinechannel--get-run-state-Output'] == 'FAILED'",
     pv(get_run_state_Output="SUCCEEDED"), False),
    (f"{P}['pipelinechannel--pick_a'] == true", {"pipelinechannel--pick_a": True}, True),
    (f"!({P}['pipelinechannel--pick_a'] == true)", {"pipelinechannel--pick_a": True}, False),
    (f"{P}['pipelinechannel--repeat_if_lucky_number'] == true",
     {"pipelinechannel--repeat_if_lucky_number": False}, False),
    (f"{P}['pipelinechannel--train-scalar'] == '123'", pv(train_scalar="123"), True),
    (f"{P}['pipelinechannel--loop-item-param-11'] == '1'", pv(loop_item_param_11="1"), True),
    (f"{P}['pipelinechannel--args-generator-op-Output-loop-item-subvar-A_a'] == 'heads'",
     {"pipelinechannel--args-generator-op-Output-loop-item-subvar-A_a": "heads"}, True),
    (f"int({P}['pipelinechannel--random-num-Output']) > 5", pv(random_num_Output=6), True),
    (f"int({P}['pipelinechannel--random-num-Output']) <= 5", pv(random_num_Output=6), False),
    # KFP's drivers hand numbers over as protobuf doubles: int() truncates them.
    (f"int({P}['pipelinechannel--random-num-2-Output']) > 15",
     pv(random_num_2_Output=15.0), False),
    (f"int({P}['pipelinechannel--int-0-to-9999-Output']) < 5000",
     pv(int_0_to_9999_Output="4999"), True),
    (f"int({P}['pipelinechannel--loop-item-param-1']) >= "
     f"int({P}['pipelinechannel--threshold'])",
     pv(loop_item_param_1=2, threshold=2), True),
    (f"int({P}['pipelinechannel--threshold']) == 2", pv(threshold=2.0), True),
    (f"int({P}['pipelinechannel--trials-loop-item']) == 3", pv(trials_loop_item=1), False),
]


@pytest.mark.parametrize(("condition", "values", "expected"), KFP_CONDITIONS)
def test_kfp_emitted_conditions(condition: str, values: dict[str, Any],
                                expected: bool) -> None:
    assert evaluate_condition(condition, values) is expected


@pytest.mark.parametrize(("roll", "branch"), [("heads", 0), ("tails", 1), ("draw", 2)])
def test_if_elif_else_chain_takes_exactly_one_branch(roll: str, branch: int) -> None:
    """``dsl.If / Elif / Else`` on a three-sided die, as KFP compiles the chain."""
    out = f"{P}['pipelinechannel--flip-three-sided-die-Output']"
    chain = [
        f"{out} == 'heads'",
        f"!({out} == 'heads') && {out} == 'tails'",
        f"!({out} == 'heads') && !({out} == 'tails')",
    ]
    values = pv(flip_three_sided_die_Output=roll)
    assert [evaluate_condition(c, values) for c in chain] == [i == branch for i in range(3)]


@pytest.mark.parametrize(("number", "branch"), [(10, 0), (9000, 1), (5000, 2)])
def test_numeric_elif_else_chain(number: int, branch: int) -> None:
    out = f"int({P}['pipelinechannel--int-0-to-9999-Output'])"
    chain = [f"{out} < 5000", f"!({out} < 5000) && {out} > 5000",
             f"!({out} < 5000) && !({out} > 5000)"]
    values = pv(int_0_to_9999_Output=number)
    assert [evaluate_condition(c, values) for c in chain] == [i == branch for i in range(3)]


def test_kfp_type_promotions() -> None:
    """What KFP writes when operand types differ: double() around int channels,
    quoted strings, bool literals."""
    values = pv(x=3, f=2.5, s="3")
    assert evaluate_condition(f"double(int({P}['pipelinechannel--x'])) > 2.5", values)
    assert evaluate_condition(f"{P}['pipelinechannel--f'] == 2.5", values)
    assert evaluate_condition(f"{P}['pipelinechannel--s'] == '3'", values)


@pytest.mark.parametrize(("expression", "expected"), [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3),
    ("-7 / 2", -3),  # truncates toward zero
    ("-7 % 3", -1),  # the sign of the dividend
    ("7.0 / 2.0", 3.5),
    ("10u - 3u", 7),
    ("-9223372036854775808", -(2**63)),
    ("0x1F + 0x1f", 62),
    ("1 == 1.0", True),
    ("1u < 2.5", True),
    ("1 != 1.5", True),
    ("'1' == 1", False),  # different types are unequal, not an error
    ("true == 1", False),
    ("null == null", True),
    ("[1, 2] == [1, 2.0]", True),
    ("{'a': 1} == {'a': 1.0}", True),
    ("'abc' < 'abd'", True),
    ("b'ab' < b'b'", True),
    ("false < true", True),
    ("2 in [1, 2, 3]", True),
    ("'k' in {'k': 1}", True),
    ("'z' in {'k': 1}", False),
    ("[1, 2, 3][2]", 3),
    ("{'a': {'b': 'c'}}.a.b", "c"),
    ("{'a': 1}['a']", 1),
    ("{1: 'one'}[1.0]", "one"),
    ("size('héllo')", 5),
    ("'héllo'.size()", 5),
    ("size([1, 2]) + size({'a': 1})", 3),
    ("size(b'\\xff\\x00')", 2),
    ("size(b'é')", 2),  # bytes literals are UTF-8
    ("b'\\xc3\\xa9' == bytes('é')", True),
    ("int('-42')", -42),
    ("int(2.9)", 2),
    ("int(-2.9)", -2),
    ("uint(7)", 7),
    ("double('1e3')", 1000.0),
    ("double(3)", 3.0),
    ("string(42)", "42"),
    ("string(1.0)", "1"),
    ("string(0.1)", "0.1"),
    ("string(1234567.0)", "1.234567e+06"),
    ("string(0.00001)", "1e-05"),
    ("string(true)", "true"),
    ("string(b'abc')", "abc"),
    ("bool('true') && bool('t') && !bool('0')", True),
    ("int(true) + int(false)", 1),
    ("'hello'.contains('ell') && 'hello'.startsWith('he') && 'hello'.endsWith('lo')", True),
    ("'abc123'.matches('[0-9]+')", True),
    ("true ? 'yes' : 'no'", "yes"),
    ("false ? 1 : true ? 2 : 3", 2),
    ("has({'a': 1}.a) && !has({'a': 1}.b)", True),
    ("'a' + 'b' + \"c\"", "abc"),
    ("[1] + [2]", [1, 2]),
    ("dyn(1) == 1", True),
    ("'\\x41\\u00e9\\U0001F600\\101\\n\\t\\\\\\''", "A\u00e9\U0001F600A\n\t\\'"),
    ("r'\\d+'", "\\d+"),
    ("'''multi\nline'''", "multi\nline"),
    ('"""a "quoted" word"""', 'a "quoted" word'),
    (".5 + 1e1 + 2.5e-1", 10.75),
    ("!!true", True),
    ("--5", 5),
    ("1 < 2 == true", True),  # relations associate left: (1 < 2) == true
    ("// a comment\n 1 + 1", 2),
])
def test_cel_semantics(expression: str, expected: Any) -> None:
    value = evaluate(expression, {})
    assert value == expected
    assert type(value) is type(expected) or isinstance(value, UInt)


def test_uint_keeps_its_type() -> None:
    assert isinstance(evaluate("1u + 2u", {}), UInt)
    assert evaluate("type_check", {}, variables={"type_check": 5}) == 5


def test_logical_operators_absorb_errors_like_cel() -> None:
    missing = f"{P}['pipelinechannel--nope'] == 'x'"
    assert evaluate(f"false && {missing}", {}) is False
    assert evaluate(f"{missing} && false", {}) is False
    assert evaluate(f"true || {missing}", {}) is True
    assert evaluate(f"{missing} || true", {}) is True
    with pytest.raises(CelError, match="no such key"):
        evaluate(f"true && {missing}", {})
    with pytest.raises(CelError, match="takes bools"):
        evaluate("1 && true", {})


def test_doubles_follow_ieee() -> None:
    assert evaluate("1.0 / 0.0", {}) == math.inf
    assert math.isnan(evaluate("0.0 / 0.0", {}))
    assert evaluate("double('nan') == double('nan')", {}) is False


@pytest.mark.parametrize(("expression", "message", "column"), [
    ("1 + 1.0", "no such overload: int + double", 3),
    ("0x1F + 0x1fu", "no such overload: int + uint", 6),
    ("'a' < 1", "no such overload: string < int", 5),
    ("9223372036854775807 + 1", "int overflow", 21),
    ("-9223372036854775808 - 1", "int overflow", 22),
    ("1 / 0", "division by zero", 3),
    ("5 % 0", "modulus by zero", 3),
    ("0u - 1u", "uint overflow", 4),
    ("[1, 2][2]", "index out of range: 2", 8),
    ("[1][-1]", "index out of range: -1", 5),
    ("{'a': 1}.b", "no such key: 'b'", 10),
    ("1.a", "int has no field 'a'", 3),
    ("int('1.5')", "cannot convert string '1.5' to int", 1),
    ("int(1e19)", "out of the int range", 1),
    ("uint(true)", "no such overload: uint(bool)", 1),
    ("uint(-1)", "out of the uint range", 1),
    ("bool('yes')", "cannot convert string 'yes' to bool", 1),
    ("string(null)", "no such overload: string(null)", 1),
    ("size(1)", "no such overload: size(int)", 1),
    ("foo(1)", "unknown function 'foo'", 1),
    ("int(1, 2)", "takes 1 argument, got 2", 1),
    ("x == 1", "undeclared reference to 'x'", 1),
    ("1 ? 2 : 3", "the condition of '?:' is int", 1),
    ("1 in 2", "'in' needs a list or a map", 3),
    ("{'a': 1, 'a': 2}", "duplicate map key 'a'", 10),
    ("{[1]: 2}", "a map key cannot be list", 2),
    ("!1", "no such overload: !int", 1),
    ("-'a'", "no such overload: -string", 1),
    ("2.0 % 1.0", "double % double", 5),
    ("'abc'.matches('(')", "invalid regular expression", 7),
])
def test_evaluation_errors_name_the_problem_and_position(expression: str, message: str,
                                                          column: int) -> None:
    with pytest.raises(CelError) as err:
        evaluate(expression, {})
    assert message in err.value.reason
    assert err.value.position + 1 == column, str(err.value)
    assert f"column {column}" in str(err.value) and repr(expression) in str(err.value)
    assert isinstance(err.value, InvalidError)


@pytest.mark.parametrize(("expression", "message", "column"), [
    ("", "the expression is empty", 1),
    ("1 +", "unexpected end of the expression", 4),
    ("(1 + 2", "expected ')', found the end of the expression", 7),
    ("1 2", "unexpected '2' after a complete expression", 3),
    ("'abc", "unterminated string literal", 1),
    ("'a\\qb'", "invalid escape sequence \\q", 3),
    ("'\\u12'", "malformed \\u escape", 2),
    ("1 # 2", "unexpected character '#'", 3),
    ("12abc", "malformed number", 1),
    ("9223372036854775808", "int literal out of range", 1),
    ("if == 1", "reserved word 'if'", 1),
    ("a.(b)", "expected a field or method name", 3),
    ("a.1", "unexpected '0.1'", 2),
    ("[1, 2", "expected ',', found the end of the expression", 6),
    ("{'a' 1}", "expected ':'", 6),
    ("1 ? 2", "expected ':'", 6),
    ("in [1]", "'in' needs a value on its left", 1),
    ("f(1,)", "expected an argument after ','", 4),
    ("(" * 300 + "1" + ")" * 300, "nested too deeply", 101),
])
def test_syntax_errors_name_the_problem_and_position(expression: str, message: str,
                                                      column: int) -> None:
    with pytest.raises(CelError) as err:
        compile_expression(expression)
    assert message in err.value.reason
    assert err.value.position + 1 == column, str(err.value)


def test_missing_parameter_lists_the_ones_present() -> None:
    condition = f"int({P}['pipelinechannel--x']) > 3"
    with pytest.raises(CelError) as err:
        evaluate_condition(condition, pv(y=1, z=2))
    text = str(err.value)
    assert "no such key: 'pipelinechannel--x'" in text
    assert "'pipelinechannel--y', 'pipelinechannel--z'" in text
    assert err.value.position == condition.index("'pipelinechannel--x'")


def test_a_condition_must_be_a_bool() -> None:
    with pytest.raises(CelError, match="evaluated to int 3, not a bool"):
        evaluate_condition("1 + 2", {})


def test_unsupported_python_values_and_huge_ints_are_errors() -> None:
    with pytest.raises(CelError, match="Python type set is not a CEL value"):
        evaluate(f"{P}['s'] == 1", {"s": {1}})
    with pytest.raises(CelError, match="out of the 64-bit range"):
        evaluate(f"{P}['n'] > 1", {"n": 2**70})
    assert evaluate(f"{P}['t'][1]", {"t": (1, 2)}) == 2  # tuples are lists


def test_parsed_expressions_are_cached_and_reusable() -> None:
    condition = f"int({P}['pipelinechannel--i']) >= 100"
    compiled = compile_expression(condition)
    assert compile_expression(condition) is compiled
    assert [compiled(pv(i=i)) for i in (99, 100, 101)] == [False, True, True]


def test_long_chains_evaluate_or_fail_cleanly() -> None:
    assert evaluate(" && ".join(["true"] * 400), {}) is True
    deep = " + ".join(["1"] * 5000)
    try:
        assert evaluate(deep, {}) == 5000
    except CelError as err:
        assert "too deeply nested" in err.reason


# -- the same expressions on the official CEL runtime -------------------------------

# Edge cases checked only against the reference runtime.
ORACLE_EXTRA = [
    "1.0 == 1u", "-0.0 == 0.0", "'a' in ['a', 'b']", "[1, 'a'] == [1, 'a']",
    "{'a': 1} == {'a': 1, 'b': 2}", "null == 0", "[] == []", "{'a': [1, {'b': 2}]}.a[1].b",
    "'\\u00e9'.size()", "1 < 1u", "9223372036854775807 < 18446744073709551615u",
    "18446744073709551615u + 1u", "-(-9223372036854775807 - 1)",
    "int(-9223372036854775808.0)", "int(9223372036854775807.0)",
    "uint(18446744073709551615.0)", "double('1e400')", "0.1 + 0.2 == 0.3", "1e308 * 10.0",
    "size(r'\\n')", "'\\'' == \"'\"", "b'\\377' == b'\\xff'", "true ? 1 : 'a'",
    "[1, 2, 3][1u]", "[1, 2][1.0]", "{true: 1}[true]", "{1: 'a'}[true]", "{'a': 1}['b']",
    "has({'a': {'b': 1}}.a.b)", "'abc'.startsWith('')", "'ÄÖ' < 'ÄÜ'", "b'a' + b'b' == b'ab'",
    "-5 / 2", "5 % -3", "-9223372036854775808 / -1", "-9223372036854775808 % -1",
    "2 * 4611686018427387904", "0u - 0u", "10u / 3u", "10u % 3u", "1.5 / 0.0 > 1e308",
    "'x' * 2", "[1] + ['a']", "!(1 == 1) || (2 > 1 && 'b' > 'a')", "1 in {1: 2}",
    "'1' in {1: 2}", "null in [null]", "int('9223372036854775807')",
    "int('9223372036854775808')", "uint('18446744073709551616')", "string(b'\\xff')",
    "bytes('é') == b'\\xc3\\xa9'", "double(18446744073709551615u)", "string(-1.5e-7)",
    "string(123456789.0)", "string(1.0e20)", "string(12345.678)", "dyn([1, 2])[0] == 1.0",
    "0x7fffffffffffffff + 1", "'a' < 'B'", "true && false || true", "false ? 1 / 0 : 2",
    "(true || 1 / 0 == 0) && true", "(1 / 0 == 0 && false)", "size({})", "size([[]])",
]


def _oracle_cases() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = [(c, v) for c, v, _ in KFP_CONDITIONS]
    cases += [(e, {}) for e in ORACLE_EXTRA]
    for mark in (test_cel_semantics, test_evaluation_errors_name_the_problem_and_position):
        for param in mark.pytestmark[0].args[1]:  # type: ignore[attr-defined]
            cases.append((param[0], {}))
    return cases


def _plain(value: Any) -> Any:
    """Python values out of the runtime's list and map elements."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "value") and callable(value.value):
        return _plain(value.value())
    return value


@pytest.fixture(scope="module")
def cel_cpp() -> Any:
    """Google's CEL runtime (C++, ``cel-expr-python``) as the reference."""
    from cel_expr_python import cel  # type: ignore[import-not-found, unused-ignore]

    return cel.NewEnv(variables={"inputs": cel.Type.DYN})


@pytest.mark.parametrize(("expression", "values"), _oracle_cases())
def test_same_answer_as_the_official_cel_runtime(cel_cpp: Any, expression: str,
                                                 values: dict[str, Any]) -> None:
    data = {"inputs": {"parameter_values": values}}
    try:
        theirs = cel_cpp.compile(expression, disable_check=True).eval(data=data)
        kind, expected = str(theirs.type()), theirs.value()
    except Exception:  # a syntax error there
        kind, expected = "ERROR", None
    if kind.endswith("ERROR"):
        with pytest.raises(CelError):
            evaluate(expression, values)
        return
    ours = evaluate(expression, values)
    expected = _plain(expected)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(ours)
        return
    assert ours == expected, (kind, expected)
    python_type = {"BOOL": bool, "INT": int, "UINT": UInt, "DOUBLE": float, "STRING": str,
                   "BYTES": bytes}.get(kind.rsplit(".", 1)[-1])
    if python_type is not None:
        assert type(ours) is python_type, (kind, ours)


@pytest.mark.parametrize("expression", [
    *(p[0] for p in test_syntax_errors_name_the_problem_and_position.pytestmark[0].args[1]
      if "nested" not in p[1]),
    "[1, 2,]", "{'a': 1,}", "1 < 2 < 3", "- 5", "!!true", ".5", "1.", "1e5", "0x",
    '"""x"""', 'r"\\d"', 'b"\\u00e9"', "a.b.c", "a[0].b()", "{}", "[]", "x ? y : z ? w : v",
])
def test_same_syntax_as_the_official_cel_runtime(cel_cpp: Any, expression: str) -> None:
    try:
        cel_cpp.compile(expression, disable_check=True)
        theirs_ok = True
    except Exception:
        theirs_ok = False
    try:
        compile_expression(expression)
        ours_ok = True
    except CelError:
        ours_ok = False
    assert ours_ok == theirs_ok
