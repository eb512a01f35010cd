"""CEL's evaluation rules over Python values (see ``_cel`` for the language).

Values: ``None`` is null, ``bool``, ``int`` (64-bit), ``UInt``, ``float``
(double), ``str``, ``bytes``, lists (and tuples) and mappings. Every error is a
``CelError`` at the position of the sub-expression that failed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ketch.pipelines._cel_syntax import (
    Binary,
    Call,
    CelError,
    Cond,
    Ident,
    Index,
    ListExpr,
    Lit,
    MapExpr,
    Node,
    Select,
    UInt,
    Unary,
    format_double,
    show,
    type_name,
)

__all__ = ["Evaluator"]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_UINT_MAX = 2**64 - 1
_INT_TEXT = re.compile(r"[+-]?\d+")
_UINT_TEXT = re.compile(r"\d+")
_DOUBLE_TEXT = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)",
                          re.IGNORECASE)
_BOOL_TEXT = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
              "0": False, "f": False, "F": False, "FALSE": False, "false": False,
              "False": False}


_KINDS = frozenset({"null", "bool", "int", "uint", "double", "string", "bytes", "list", "map"})


def _kind(value: Any) -> str:
    kind = type_name(value)
    return kind if kind in _KINDS else "unsupported"


def _numeric(value: Any) -> bool:
    return _kind(value) in ("int", "uint", "double")


def _equal(a: Any, b: Any) -> bool:
    """CEL equality: numbers compare by value across int, uint and double; other
    values of different types are unequal; lists and maps compare element-wise."""
    ka, kb = _kind(a), _kind(b)
    if ka in ("int", "uint", "double") and kb in ("int", "uint", "double"):
        return bool(a == b)
    if ka != kb:
        return False
    if ka == "list":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        if len(a) != len(b):
            return False
        for key, value in a.items():
            found, other = _lookup(b, key)
            if not found or not _equal(value, other):
                return False
        return True
    return bool(a == b)


def _lookup(mapping: Mapping[Any, Any], key: Any) -> tuple[bool, Any]:
    # Python would find key 1 under True (and True under 1); CEL keeps bool apart.
    for candidate, value in mapping.items():
        if (_kind(candidate) == "bool") == (_kind(key) == "bool") and _equal(candidate, key):
            return True, value
    return False, None


class Evaluator:
    """Evaluates one parsed expression against ``variables`` (top-level names)."""

    def __init__(self, expression: str, variables: Mapping[str, Any]) -> None:
        self.expression = expression
        self.variables = variables

    def error(self, node: Node, message: str) -> CelError:
        return CelError(message, node.pos, self.expression)

    def run(self, node: Node) -> Any:
        try:
            return self.eval(node)
        except RecursionError:
            raise CelError("the expression is too deeply nested to evaluate", 0,
                           self.expression) from None

    def eval(self, node: Node) -> Any:
        if isinstance(node, Lit):
            return node.value
        if isinstance(node, Ident):
            if node.name not in self.variables:
                known = ", ".join(sorted(self.variables)) or "none"
                raise self.error(node, f"undeclared reference to {node.name!r} "
                                       f"(variables: {known})")
            return self.checked(node, self.variables[node.name])
        if isinstance(node, Select):
            return self.select(node)
        if isinstance(node, Index):
            return self.index(node)
        if isinstance(node, Binary):
            if node.op in ("&&", "||"):
                return self.logical(node)
            return self.binary(node, self.eval(node.left), self.eval(node.right))
        if isinstance(node, Unary):
            return self.unary(node, self.eval(node.operand))
        if isinstance(node, Cond):
            test = self.eval(node.test)
            if not isinstance(test, bool):
                raise self.error(node, f"the condition of '?:' is {type_name(test)}, "
                                       "not bool")
            return self.eval(node.then if test else node.other)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, ListExpr):
            return [self.eval(item) for item in node.items]
        if isinstance(node, MapExpr):
            return self.map_literal(node)
        raise self.error(node, f"cannot evaluate {type(node).__name__}")  # pragma: no cover

    def checked(self, node: Node, value: Any) -> Any:
        """A value from outside (a variable, a field, an element), checked for type."""
        kind = _kind(value)
        if kind == "unsupported":
            raise self.error(node, f"value of Python type {type(value).__name__} is not a "
                                   "CEL value")
        if kind == "int" and not _INT_MIN <= value <= _INT_MAX:
            raise self.error(node, f"int value {value} is out of the 64-bit range")
        if isinstance(value, tuple):
            return list(value)
        return value

    # -- access ------------------------------------------------------------------

    def select(self, node: Select) -> Any:
        operand = self.eval(node.operand)
        if _kind(operand) != "map":
            raise self.error(node, f"{type_name(operand)} has no field {node.field!r}")
        found, value = _lookup(operand, node.field)
        if not found:
            raise self.error(node, self.missing_key(node.field, operand))
        return self.checked(node, value)

    def index(self, node: Index) -> Any:
        operand = self.eval(node.operand)
        key = self.eval(node.index)
        kind = _kind(operand)
        if kind == "list":
            if _kind(key) == "double" and key.is_integer():
                key = int(key)
            if _kind(key) not in ("int", "uint"):
                raise self.error(node.index, f"a list index must be an int, not "
                                             f"{type_name(key)}")
            if not 0 <= key < len(operand):
                raise self.error(node.index, f"index out of range: {key} (the list has "
                                             f"{len(operand)} elements)")
            return self.checked(node, operand[key])
        if kind == "map":
            if _kind(key) not in ("int", "uint", "double", "bool", "string"):
                raise self.error(node.index, f"a map key cannot be {type_name(key)}")
            found, value = _lookup(operand, key)
            if not found:
                raise self.error(node.index, self.missing_key(key, operand))
            return self.checked(node, value)
        raise self.error(node, f"{type_name(operand)} cannot be indexed")

    @staticmethod
    def missing_key(key: Any, mapping: Mapping[Any, Any]) -> str:
        keys = sorted(repr(k) for k in mapping)
        listed = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
        return f"no such key: {key!r} (present: {listed or 'none'})"

    def map_literal(self, node: MapExpr) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.entries:
            key = self.eval(key_node)
            if _kind(key) not in ("int", "uint", "bool", "string"):
                raise self.error(key_node, f"a map key cannot be {type_name(key)}")
            if _lookup(result, key)[0]:
                raise self.error(key_node, f"duplicate map key {show(key)}")
            result[key] = self.eval(value_node)
        return result

    # -- operators ---------------------------------------------------------------

    def logical(self, node: Binary) -> bool:
        # CEL's && and || are commutative: a decisive operand wins over an error
        # on the other side, so both sides are evaluated before an error is raised.
        decisive = node.op == "||"
        results: list[Any] = []
        for side in (node.left, node.right):
            try:
                value = self.eval(side)
            except CelError as err:
                results.append(err)
                continue
            if not isinstance(value, bool):
                results.append(self.error(side, f"no such overload: {type_name(value)} "
                                                f"{node.op} ... ({node.op} takes bools)"))
                continue
            if value is decisive:
                return decisive
            results.append(value)
        for result in results:
            if isinstance(result, CelError):
                raise result
        return not decisive

    def unary(self, node: Unary, value: Any) -> Any:
        kind = _kind(value)
        if node.op == "!" and kind == "bool":
            return not value
        if node.op == "-" and kind == "int":
            return self.int_result(node, -value)
        if node.op == "-" and kind == "double":
            return -value
        raise self.error(node, f"no such overload: {node.op}{type_name(value)}")

    def binary(self, node: Binary, left: Any, right: Any) -> Any:
        op = node.op
        if op == "==":
            return _equal(left, right)
        if op == "!=":
            return not _equal(left, right)
        if op == "in":
            return self.contains(node, left, right)
        if op in ("<", "<=", ">", ">="):
            return self.compare(node, left, right)
        return self.arithmetic(node, left, right)

    def contains(self, node: Binary, item: Any, container: Any) -> bool:
        kind = _kind(container)
        if kind == "list":
            return any(_equal(item, element) for element in container)
        if kind == "map":
            return _lookup(container, item)[0]
        raise self.error(node, f"no such overload: {type_name(item)} in "
                               f"{type_name(container)} ('in' needs a list or a map)")

    def compare(self, node: Binary, left: Any, right: Any) -> bool:
        ka, kb = _kind(left), _kind(right)
        comparable = (_numeric(left) and _numeric(right)) or (
            ka == kb and ka in ("string", "bytes", "bool"))
        if not comparable:
            raise self.error(node, f"no such overload: {type_name(left)} {node.op} "
                                   f"{type_name(right)}")
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
        return bool(ops[node.op](left, right))

    def arithmetic(self, node: Binary, left: Any, right: Any) -> Any:
        op, ka, kb = node.op, _kind(left), _kind(right)
        if ka != kb or (ka not in ("int", "uint", "double") and not (
                op == "+" and ka in ("string", "bytes", "list"))):
            raise self.error(node, f"no such overload: {type_name(left)} {op} "
                                   f"{type_name(right)}")
        if ka in ("string", "bytes", "list"):
            return left + right
        if ka == "double":
            return self.double_op(node, left, right)
        if op in ("/", "%") and right == 0:
            raise self.error(node, "division by zero" if op == "/" else "modulus by zero")
        if op in ("/", "%") and ka == "int" and left == _INT_MIN and right == -1:
            raise self.error(node, "int overflow")  # the quotient 2**63 does not fit
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        else:
            # Go's (and CEL's) integer division truncates toward zero.
            quotient = abs(left) // abs(right)
            if (left < 0) != (right < 0):
                quotient = -quotient
            result = quotient if op == "/" else left - right * quotient
        if ka == "uint":
            if not 0 <= result <= _UINT_MAX:
                raise self.error(node, "uint overflow")
            return UInt(result)
        return self.int_result(node, result)

    def double_op(self, node: Binary, left: float, right: float) -> float:
        op = node.op
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            if right == 0:  # IEEE 754, as CEL: x/0 is ±Inf, 0/0 is NaN
                if left == 0 or math.isnan(left):
                    return math.nan
                return math.copysign(math.inf, left) * math.copysign(1.0, right)
            return left / right
        raise self.error(node, "no such overload: double % double")

    def int_result(self, node: Node, value: int) -> int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise self.error(node, "int overflow")
        return value

    # -- functions ---------------------------------------------------------------

    def call(self, node: Call) -> Any:
        name = node.function
        if name == "has" and node.target is None:
            return self.has(node)
        args = [self.eval(arg) for arg in node.args]
        if node.target is not None:
            args.insert(0, self.eval(node.target))
        conversions: dict[str, Callable[[Node, Any], Any]] = {
            "int": self.to_int, "uint": self.to_uint, "double": self.to_double,
            "string": self.to_string, "bool": self.to_bool, "bytes": self.to_bytes,
            "dyn": lambda _node, value: value}
        if name in conversions and node.target is None:
            self.arity(node, args, 1)
            return conversions[name](node, args[0])
        if name == "size":
            self.arity(node, args, 1)
            return self.size(node, args[0])
        if name in ("contains", "startsWith", "endsWith", "matches"):
            self.arity(node, args, 2)
            return self.string_test(node, args[0], args[1])
        raise self.error(node, f"unknown function {name!r}")

    def arity(self, node: Call, args: list[Any], wanted: int) -> None:
        if len(args) != wanted:
            raise self.error(node, f"{node.function}() takes {wanted} argument"
                                   f"{'s' if wanted > 1 else ''}, got {len(args)}")

    def has(self, node: Call) -> bool:
        if len(node.args) != 1 or not isinstance(node.args[0], Select):
            raise self.error(node, "has() takes one field selection, such as has(a.b)")
        select = node.args[0]
        operand = self.eval(select.operand)
        if _kind(operand) != "map":
            raise self.error(select, f"has() needs a map, not {type_name(operand)}")
        return _lookup(operand, select.field)[0]

    def size(self, node: Call, value: Any) -> int:
        if _kind(value) in ("string", "bytes", "list", "map"):
            return len(value)
        raise self.error(node, f"no such overload: size({type_name(value)})")

    def string_test(self, node: Call, text: Any, other: Any) -> bool:
        if _kind(text) != "string" or _kind(other) != "string":
            raise self.error(node, f"no such overload: {type_name(text)}.{node.function}"
                                   f"({type_name(other)})")
        if node.function == "contains":
            return other in text
        if node.function == "startsWith":
            return bool(text.startswith(other))
        if node.function == "endsWith":
            return bool(text.endswith(other))
        try:
            return re.search(other, text) is not None
        except re.error as err:
            raise self.error(node, f"invalid regular expression {other!r}: {err}") from None

    def to_int(self, node: Node, value: Any) -> int:
        kind = _kind(value)
        if kind in ("int", "uint", "bool"):  # int(true) is 1, as the C++ runtime has it
            return self.int_result(node, int(value))
        if kind == "double":
            # Both ends are out, as in cel-go and the C++ runtime.
            if math.isnan(value) or not -(2.0**63) < value < 2.0**63:
                raise self.error(node, f"double {show(value)} is out of the int range")
            truncated: int = math.trunc(value)
            return truncated
        if kind == "string":
            if not _INT_TEXT.fullmatch(value):
                raise self.error(node, f"cannot convert string {show(value)} to int")
            return self.int_result(node, int(value))
        raise self.error(node, f"no such overload: int({type_name(value)})")

    def to_uint(self, node: Node, value: Any) -> UInt:
        kind = _kind(value)
        if kind in ("int", "uint"):
            if not 0 <= value <= _UINT_MAX:
                raise self.error(node, f"{value} is out of the uint range")
            return UInt(value)
        if kind == "double":
            if math.isnan(value) or not 0 <= value < 2.0**64:
                raise self.error(node, f"double {show(value)} is out of the uint range")
            return UInt(math.trunc(value))
        if kind == "string":
            if not _UINT_TEXT.fullmatch(value) or int(value) > _UINT_MAX:
                raise self.error(node, f"cannot convert string {show(value)} to uint")
            return UInt(int(value))
        raise self.error(node, f"no such overload: uint({type_name(value)})")

    def to_double(self, node: Node, value: Any) -> float:
        kind = _kind(value)
        if kind in ("int", "uint", "double"):
            return float(value)
        if kind == "string":
            if not _DOUBLE_TEXT.fullmatch(value):
                raise self.error(node, f"cannot convert string {show(value)} to double")
            return float(value)
        raise self.error(node, f"no such overload: double({type_name(value)})")

    def to_string(self, node: Node, value: Any) -> str:
        kind = _kind(value)
        if kind == "string":
            return str(value)
        if kind in ("int", "uint"):
            return str(int(value))
        if kind == "double":
            return format_double(value)
        if kind == "bool":
            return "true" if value else "false"
        if kind == "bytes":
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise self.error(node, "bytes are not valid UTF-8") from None
        raise self.error(node, f"no such overload: string({type_name(value)})")

    def to_bool(self, node: Node, value: Any) -> bool:
        kind = _kind(value)
        if kind == "bool":
            return bool(value)
        if kind == "string" and value in _BOOL_TEXT:
            return _BOOL_TEXT[value]
        if kind == "string":
            raise self.error(node, f"cannot convert string {show(value)} to bool")
        raise self.error(node, f"no such overload: bool({type_name(value)})")

    def to_bytes(self, node: Node, value: Any) -> bytes:
        kind = _kind(value)
        if kind == "bytes":
            return bytes(value)
        if kind == "string":
            return str(value).encode("utf-8")
        raise self.error(node, f"no such overload: bytes({type_name(value)})")
