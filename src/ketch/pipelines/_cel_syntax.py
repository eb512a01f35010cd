"""CEL's syntax: tokens, the tree, and a precedence-climbing parser (see ``_cel``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ketch.core.errors import InvalidError

__all__ = [
    "Binary", "Call", "CelError", "Cond", "Ident", "Index", "ListExpr", "Lit", "MapExpr", "Node",
    "Select", "UInt", "Unary", "format_double", "parse", "show", "type_name",
]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_UINT_MAX = 2**64 - 1


class CelError(InvalidError):
    """An expression that does not parse or cannot be evaluated.

    ``position`` is the 0-based offset in ``expression`` where the problem is.
    """

    def __init__(self, message: str, position: int, expression: str) -> None:
        self.reason = message
        self.position = position
        self.expression = expression
        super().__init__(f"{message} (column {position + 1} of {expression!r})")


class UInt(int):
    """A CEL ``uint``: an int that keeps its type through evaluation."""

    def __repr__(self) -> str:
        return f"{int(self)}u"


# -- tokens -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Tok:
    kind: str  # INT UINT DOUBLE STRING BYTES IDENT OP EOF
    value: Any
    pos: int


_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%",
              "?", ":", ".", ",", "(", ")", "[", "]", "{", "}")
_RESERVED = {"as", "break", "const", "continue", "else", "for", "function", "if", "import",
             "let", "loop", "package", "namespace", "return", "var", "void", "while"}
_NUMBER = re.compile(
    r"0[xX](?P<hex>[0-9a-fA-F]+)(?P<hexu>[uU])?"
    r"|(?P<float>(?:\d+\.\d+|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)"
    r"|(?P<int>\d+)(?P<intu>[uU])?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?"}


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n\f":
            i += 1
            continue
        if text.startswith("//", i):  # a comment runs to the end of the line
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        prefix = re.match(r"[rRbB]{0,2}(?=['\"])", text[i:])
        if prefix is not None and (ch in "'\"" or prefix.group()):
            tok, i = _string(text, i, prefix.group().lower())
            tokens.append(tok)
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            tok, i = _number(text, i)
            tokens.append(tok)
            continue
        ident = _IDENT.match(text, i)
        if ident:
            word = ident.group()
            if word in _RESERVED:
                raise CelError(f"reserved word {word!r} cannot be used here", i, text)
            tokens.append(_Tok("IDENT", word, i))
            i = ident.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(_Tok("OP", op, i))
                i += len(op)
                break
        else:
            raise CelError(f"unexpected character {ch!r}", i, text)
    tokens.append(_Tok("EOF", None, n))
    return tokens


def _number(text: str, start: int) -> tuple[_Tok, int]:
    m = _NUMBER.match(text, start)
    assert m is not None
    end = m.end()
    if end < len(text) and (text[end].isalnum() or text[end] == "_"):
        raise CelError(f"malformed number {text[start:end + 1]!r}", start, text)
    if m.group("float") is not None:
        return _Tok("DOUBLE", float(m.group("float")), start), end
    digits, base = (m.group("hex"), 16) if m.group("hex") is not None else (m.group("int"), 10)
    value = int(digits, base)
    if m.group("hexu") or m.group("intu"):
        if value > _UINT_MAX:
            raise CelError("uint literal out of range", start, text)
        return _Tok("UINT", UInt(value), start), end
    # -9223372036854775808 is legal: the parser negates this token, so allow one more.
    if value > _INT_MAX + 1:
        raise CelError("int literal out of range", start, text)
    return _Tok("INT", value, start), end


def _string(text: str, start: int, prefix: str) -> tuple[_Tok, int]:
    raw, is_bytes = "r" in prefix, "b" in prefix
    i = start + len(prefix)
    quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else text[i]
    i += len(quote)
    out: list[str] = []
    data = bytearray()  # bytes literals: escapes are raw bytes, other text is UTF-8
    while True:
        if i >= len(text) or (len(quote) == 1 and text[i] in "\r\n"):
            raise CelError("unterminated string literal", start, text)
        if text.startswith(quote, i):
            i += len(quote)
            break
        ch = text[i]
        if ch == "\\" and not raw:
            decoded, i = _escape(text, i, start, is_bytes)
            out.append(decoded)
            if is_bytes:  # \u and \U are refused there, so this is below 256
                data.append(ord(decoded))
            continue
        if ch == "\\" and raw and text.startswith(quote, i + 1) and len(quote) == 1:
            # r'it\'s' keeps the backslash but does not end the string.
            out.append(ch + quote)
            data += (ch + quote).encode()
            i += 2
            continue
        out.append(ch)
        data += ch.encode("utf-8", errors="surrogatepass")
        i += 1
    if is_bytes:
        return _Tok("BYTES", bytes(data), start), i
    return _Tok("STRING", "".join(out), start), i


def _escape(text: str, i: int, start: int, is_bytes: bool) -> tuple[str, int]:
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if nxt in _ESCAPES:
        return _ESCAPES[nxt], i + 2
    widths = {"x": 2, "X": 2, "u": 4, "U": 8}
    if nxt in widths:
        if nxt in "uU" and is_bytes:
            raise CelError(f"\\{nxt} escapes are not allowed in bytes literals", i, text)
        digits = text[i + 2:i + 2 + widths[nxt]]
        if len(digits) != widths[nxt] or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise CelError(f"malformed \\{nxt} escape", i, text)
        code = int(digits, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise CelError(f"\\{nxt}{digits} is not a valid code point", i, text)
        return chr(code), i + 2 + widths[nxt]
    if nxt in "0123":
        digits = text[i + 1:i + 4]
        if len(digits) == 3 and all(c in "01234567" for c in digits):
            return chr(int(digits, 8)), i + 4
    raise CelError(f"invalid escape sequence \\{nxt}", i, text)


# -- syntax tree ------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class Lit(Node):
    value: Any


@dataclass(frozen=True)
class Ident(Node):
    name: str


@dataclass(frozen=True)
class Select(Node):
    operand: Node
    field: str


@dataclass(frozen=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True)
class Call(Node):
    function: str
    args: tuple[Node, ...]
    target: Node | None = None


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Cond(Node):
    test: Node
    then: Node
    other: Node


@dataclass(frozen=True)
class ListExpr(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapExpr(Node):
    entries: tuple[tuple[Node, Node], ...]


# Binding power of binary operators; higher binds tighter. Relations share a level
# and associate left, as in CEL's grammar.
_BINARY = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3,
           "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}
# Nesting limit (cel-go's parser allows 250; each level here costs several Python
# frames, so ketch stops earlier and keeps well inside Python's recursion limit).
_MAX_DEPTH = 100


def _balanced(op: str, pos: int, terms: list[Node]) -> Node:
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return Binary(pos, op, _balanced(op, pos, terms[:middle]), _balanced(op, pos, terms[middle:]))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def error(self, message: str, tok: _Tok | None = None) -> CelError:
        return CelError(message, (tok or self.peek()).pos, self.text)

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return (tok.kind == "OP" or (tok.kind == "IDENT" and value == "in")) and \
            tok.value == value

    def expect(self, value: str) -> _Tok:
        if not self.at(value):
            tok = self.peek()
            found = "the end of the expression" if tok.kind == "EOF" else repr(str(tok.value))
            raise self.error(f"expected {value!r}, found {found}")
        return self.take()

    def parse(self) -> Node:
        node = self.expression()
        if self.peek().kind != "EOF":
            raise self.error(f"unexpected {str(self.peek().value)!r} after a complete "
                             "expression")
        return node

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("expression nested too deeply")
        start = self.peek()
        node = self.binary(1)
        if self.at("?"):
            self.take()
            then = self.binary(1)  # ``a ? b : c ? d : e`` nests to the right
            self.expect(":")
            node = Cond(start.pos, node, then, self.expression())
        self.depth -= 1
        return node

    def binary(self, min_power: int) -> Node:
        left = self.unary()
        while True:
            tok = self.peek()
            op = tok.value if tok.kind == "OP" or (tok.kind == "IDENT" and tok.value == "in") \
                else None
            power = _BINARY.get(op) if isinstance(op, str) else None
            if power is None or power < min_power:
                return left
            self.take()
            if op in ("&&", "||"):
                # A run of one logical operator becomes a balanced tree (as cel-go
                # does), so a long generated chain does not nest thousands deep.
                terms = [left, self.binary(power + 1)]
                while self.at(str(op)):
                    self.take()
                    terms.append(self.binary(power + 1))
                left = _balanced(str(op), tok.pos, terms)
                continue
            right = self.binary(power + 1)
            left = Binary(tok.pos, str(op), left, right)

    def unary(self) -> Node:
        tok = self.peek()
        if self.at("!") or self.at("-"):
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.error("expression nested too deeply")
            operand = self.unary()
            self.depth -= 1
            # Fold negative literals so that -9223372036854775808 is an int.
            if tok.value == "-" and isinstance(operand, Lit) and type(operand.value) in (
                    int, float) and not isinstance(operand.value, bool):
                value = -operand.value
                if isinstance(value, int) and value < _INT_MIN:
                    raise self.error("int literal out of range", tok)
                return Lit(tok.pos, value)
            return Unary(tok.pos, str(tok.value), operand)
        return self.member(self.primary())

    def member(self, node: Node) -> Node:
        while True:
            tok = self.peek()
            if self.at("."):
                self.take()
                name = self.take()
                if name.kind != "IDENT":
                    raise self.error("expected a field or method name after '.'", name)
                if self.at("("):
                    node = Call(name.pos, name.value, self.arguments(")"), node)
                else:
                    node = Select(name.pos, node, name.value)
            elif self.at("["):
                self.take()
                index = self.expression()
                self.expect("]")
                node = Index(tok.pos, node, index)
            else:
                return node

    def arguments(self, close: str) -> tuple[Node, ...]:
        self.take()  # the opening bracket
        args: list[Node] = []
        while not self.at(close):
            args.append(self.expression())
            if not self.at(close):
                comma = self.expect(",")
                # A list literal may end in a comma; a call's arguments may not.
                if close == ")" and self.at(close):
                    raise self.error("expected an argument after ','", comma)
        self.take()
        return tuple(args)

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("INT", "UINT", "DOUBLE", "STRING", "BYTES"):
            if tok.kind == "INT" and tok.value > _INT_MAX and not (
                    self.i >= 2 and self.tokens[self.i - 2].value == "-"):
                raise self.error("int literal out of range", tok)
            return Lit(tok.pos, tok.value)
        if tok.kind == "IDENT":
            if tok.value in ("true", "false"):
                return Lit(tok.pos, tok.value == "true")
            if tok.value == "null":
                return Lit(tok.pos, None)
            if tok.value == "in":
                raise self.error("'in' needs a value on its left", tok)
            if self.at("("):
                return Call(tok.pos, tok.value, self.arguments(")"))
            return Ident(tok.pos, tok.value)
        if tok.kind == "OP" and tok.value == "(":
            node = self.expression()
            self.expect(")")
            return node
        if tok.kind == "OP" and tok.value == "[":
            self.i -= 1
            return ListExpr(tok.pos, self.arguments("]"))
        if tok.kind == "OP" and tok.value == "{":
            entries: list[tuple[Node, Node]] = []
            while not self.at("}"):
                key = self.expression()
                self.expect(":")
                entries.append((key, self.expression()))
                if not self.at("}"):
                    self.expect(",")
            self.take()
            return MapExpr(tok.pos, tuple(entries))
        if tok.kind == "EOF":
            raise self.error("unexpected end of the expression", tok)
        raise self.error(f"unexpected {str(tok.value)!r}", tok)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, UInt):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_double(value: float) -> str:
    """A double as CEL's ``string()`` writes it (Go's ``%g``, shortest form)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # position of the decimal point in ``text``
    exp = point - 1
    if exp < -4 or exp >= 6:  # Go's strconv.FormatFloat(v, 'g', -1, 64), as cel-go
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        body = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif point <= 0:
        body = "0." + "0" * -point + text
    elif point >= len(text):
        body = text + "0" * (point - len(text))
    else:
        body = text[:point] + "." + text[point:]
    return ("-" if sign else "") + body


def parse(expression: str) -> Node:
    """The syntax tree of ``expression``; ``CelError`` on a syntax error."""
    try:
        return _Parser(expression).parse()
    except RecursionError:
        raise CelError("expression nested too deeply", 0, expression) from None
