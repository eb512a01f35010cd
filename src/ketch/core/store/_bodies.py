"""An object as the SQL store keeps it: its status apart from the rest.

A pipeline run's object holds its whole IR (~240 KB for 120 kfp tasks) and its controller
writes status after every step. With the object in one JSON column, each status write
parsed and rewrote all of it twice (the row and its change-log copy), so a step cost more
the larger its run. Now the rest of the object (apiVersion, kind, metadata, spec) is a row
of ``ketch_bodies``, written only when the rest changes, and the status lives in its own
column on the resource row and on each change-log row, which refers to the body current
at that revision. Every revision is still a whole object: the reader puts the two back
together, with ``metadata.resourceVersion`` set to the revision.

A watch stream sends objects as JSON text without decoding them, so the body's text is
kept with the offset of its ``resourceVersion`` value (``rv_at``): one body's text serves
every revision that refers to it, spliced, never parsed (PostgreSQL's jsonb text has no
such offset: there the body is decoded once per read and encoded again with one). A watch
that asks for objects without their spec (``Template.without_spec``) gets the same
splice from a second template, made once per body.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ketch.core.codec import dumps, loads

__all__ = ["BodyText", "Template", "encode_body", "split", "template", "whole"]

_RV_KEY = '"resourceVersion":"'


def split(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the object without its status, its status)."""
    rest = {k: v for k, v in body.items() if k != "status"}
    return rest, body.get("status") or {}


def whole(rest: dict[str, Any], status: dict[str, Any], revision: int) -> dict[str, Any]:
    """The object at ``revision``, built in place from a freshly decoded ``rest``
    (``resourceVersion`` keeps its place among the metadata, status goes last as in
    ``Resource.to_wire``)."""
    rest["metadata"]["resourceVersion"] = str(revision)
    rest["status"] = status
    return rest


@dataclass(frozen=True)
class BodyText:
    """A body's JSON text, with its ``resourceVersion`` (``revision``) at ``rv_at``."""

    text: str
    rv_at: int
    revision: int


def encode_body(rest: dict[str, Any], revision: int) -> BodyText:
    """``rest`` as JSON text with ``metadata.resourceVersion`` = ``revision``, and where
    that value starts. A random marker finds it: a label or annotation spelled
    ``"resourceVersion":"N"`` cannot be taken for it."""
    mark = uuid.uuid4().hex
    text = dumps({**rest, "metadata": {**rest["metadata"], "resourceVersion": mark}})
    at = text.index(_RV_KEY + mark + '"') + len(_RV_KEY)
    rv = str(revision)
    return BodyText(text[:at] + rv + text[at + len(mark):], at, revision)


@dataclass(frozen=True)
class Template:
    """One body's text cut at its ``resourceVersion`` value and before its closing brace:
    the text of the object at any revision, with any status, by concatenation."""

    head: str
    tail: str

    def render(self, revision: int, status_text: str) -> str:
        return f'{self.head}{revision}{self.tail},"status":{status_text}}}'

    @cached_property
    def without_spec(self) -> Template:
        """The template of the same object without its ``spec``: what a client that
        follows only an object's status decodes (a pipeline run's spec is its IR, many
        times its status, and every status write is an event). Made on first use (the
        body is decoded once), kept with this template."""
        rest = loads(f"{self.head}0{self.tail}}}")
        rest.pop("spec", None)
        lean = encode_body(rest, 0)
        return Template(lean.text[:lean.rv_at], lean.text[lean.rv_at + 1:-1])


def template(text: str, rv_at: int | None, revision: int | None) -> Template:
    """The template of a stored body's text; where the text is not ours as written (no
    offset, or jsonb's normal form), the body is decoded once and encoded again."""
    rv = str(revision)
    if (rv_at is not None and revision is not None
            and text.startswith(_RV_KEY, rv_at - len(_RV_KEY))
            and text.startswith(rv + '"', rv_at) and text.endswith("}")):
        return Template(text[:rv_at], text[rv_at + len(rv):-1])
    rest = loads(text)
    rest.pop("status", None)
    again = encode_body(rest, 0)
    return Template(again.text[:again.rv_at], again.text[again.rv_at + 1:-1])
