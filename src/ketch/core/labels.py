"""Kubernetes label selectors: ``app=web,tier!=db,env in (a,b),!legacy,team``.

A selector that does not parse is a ``BadRequestError`` (400), as kube-apiserver answers a
list or watch with a bad ``labelSelector``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ketch.core.errors import BadRequestError, FieldError

__all__ = ["LabelSelector", "Requirement"]

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|[A-Za-z0-9_./-]+)")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        if self.op in ("!=", "notin"):
            return value is None or value not in self.values
        if self.op == "exists":
            return value is not None
        return value is None


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req.matches(labels) for req in self.requirements)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse the Kubernetes selector syntax; bad syntax is an ``InvalidError``."""
        if not text or not text.strip():
            return cls()
        tokens = _tokenize(text)
        reqs: list[Requirement] = []
        pos = 0

        def fail(why: str) -> BadRequestError:
            return BadRequestError("invalid label selector", [FieldError("labelSelector",
                                                                     f"{why} in {text!r}")])

        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "!":
                if pos + 1 >= len(tokens) or not _is_word(tokens[pos + 1]):
                    raise fail("'!' must be followed by a label key")
                reqs.append(Requirement(tokens[pos + 1], "!exists"))
                pos += 2
            elif _is_word(tok):
                nxt = tokens[pos + 1] if pos + 1 < len(tokens) else ","
                if nxt == ",":
                    reqs.append(Requirement(tok, "exists"))
                    pos += 1
                elif nxt in ("=", "==", "!="):
                    if pos + 2 >= len(tokens) or not _is_word(tokens[pos + 2]):
                        raise fail(f"missing value after {tok}{nxt}")
                    op = "!=" if nxt == "!=" else "="
                    reqs.append(Requirement(tok, op, frozenset([tokens[pos + 2]])))
                    pos += 3
                elif nxt in ("in", "notin"):
                    values, pos = _parse_set(tokens, pos + 2, fail)
                    reqs.append(Requirement(tok, nxt, values))
                else:
                    raise fail(f"unexpected {nxt!r} after {tok!r}")
            else:
                raise fail(f"unexpected {tok!r}")
            if pos < len(tokens):
                if tokens[pos] != ",":
                    raise fail(f"expected ',' before {tokens[pos]!r}")
                pos += 1
        return cls(tuple(reqs))


def _is_word(tok: str) -> bool:
    return tok not in ("!=", "==", "=", "!", "(", ")", ",")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise BadRequestError("invalid label selector",
                               [FieldError("labelSelector", f"unexpected character in {text!r}")])
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _parse_set(tokens: list[str], pos: int,
               fail: Callable[[str], BadRequestError]) -> tuple[frozenset[str], int]:
    if pos >= len(tokens) or tokens[pos] != "(":
        raise fail("expected '(' after in/notin")
    values: set[str] = set()
    pos += 1
    expect_value = True
    while pos < len(tokens) and tokens[pos] != ")":
        tok = tokens[pos]
        if expect_value and _is_word(tok):
            values.add(tok)
        elif expect_value or tok != ",":
            raise fail(f"unexpected {tok!r} in a value set")
        expect_value = not expect_value
        pos += 1
    if pos >= len(tokens):
        raise fail("missing ')'")
    if not values:
        # Kubernetes' own wording (labels.Parse).
        raise fail("for 'in', 'notin' operators, values set can't be empty")
    return frozenset(values), pos + 1
