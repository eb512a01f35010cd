"""Statements of the store's per-step path and of a create, built once with bound
parameters.

A pipeline step costs its run a resourceVersion read and a status write (five
statements); a create is four (the name check, the body, the resource row and its
change-log row), between a Job's submit and its process start. Built anew on every call,
each statement was constructed, coerced and given its SQLAlchemy cache key again, which
cost more CPU than the database's own work; a statement object built once keeps its
cache key (SQLAlchemy memoizes it on the object), so a call only binds its values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, bindparam, cast, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB

from ketch.core.store import _schema as t

__all__ = ["ALL_EVENTS", "NEXT_REVISION", "PRUNED_THROUGH", "CreateStatements",
           "StatusStatements"]

NEXT_REVISION = (update(t.revision).where(t.revision.c.id == 1)
                 .values(value=t.revision.c.value + 1).returning(t.revision.c.value))
PRUNED_THROUGH = select(t.revision.c.pruned_through)
# What the change feed reads after each write (``raw_events`` of every kind, from
# ``p_since``, at most ``p_limit``): the status as the database holds its text.
ALL_EVENTS = (select(t.events.c.revision, t.events.c.event_type, t.events.c.kind_key,
                     t.events.c.namespace, t.events.c.name, t.events.c.body_id,
                     cast(t.events.c.status, Text).label("status_text"))
              .where(t.events.c.revision > bindparam("p_since"))
              .order_by(t.events.c.revision).limit(bindparam("p_limit")))


def _object_key() -> tuple[Any, ...]:
    """The where clause naming one object: ``p_kind``, ``p_ns``, ``p_name``."""
    r = t.resources.c
    return (r.kind_key == bindparam("p_kind"), r.namespace == bindparam("p_ns"),
            r.name == bindparam("p_name"))


def _json_text(name: str, postgres: bool) -> Any:
    """A JSON value bound as the text it already is (never encoded again)."""
    text = bindparam(name, type_=Text)
    return cast(text, JSONB) if postgres else text


class StatusStatements:
    """The object read, the resourceVersion read and the status write's statements,
    for one dialect.

    Parameters (named apart from the columns, which an INSERT's and an UPDATE's own
    parameters are named after): ``p_kind``, ``p_ns``, ``p_name`` (the object);
    ``p_status`` (the new status as JSON text, bound as text: never encoded again);
    ``p_row``, ``p_rev``, ``p_body``, ``p_type``, ``p_at`` (the write)."""

    def __init__(self, postgres: bool) -> None:
        r, bd = t.resources.c, t.bodies.c
        where = _object_key()

        def status() -> Any:
            return _json_text("p_status", postgres)

        self.resource_version = select(r.resource_version).where(*where)
        # The object as stored (its row with its body): every get, and a write's read.
        self.read = select(r.id, r.uid, r.resource_version, r.body_id, r.status, bd.body,
                           bd.size).join_from(t.resources, t.bodies,
                                              r.body_id == bd.id).where(*where)
        # The row alone, before it is read with its body (see SqlResourceStore._row).
        self.lock = select(r.id).where(*where).with_for_update()
        self.row = select(
            r.id, r.uid, r.resource_version, r.body_id, bd.size,
            (r.status == status()).label("same"),
        ).join_from(t.resources, t.bodies, r.body_id == bd.id).where(*where)
        self.update = (update(t.resources).where(r.id == bindparam("p_row"))
                       .values(resource_version=bindparam("p_rev"), status=status()))
        self.log = insert(t.events).values(
            revision=bindparam("p_rev"), event_type=bindparam("p_type"),
            kind_key=bindparam("p_kind"), namespace=bindparam("p_ns"),
            name=bindparam("p_name"), body_id=bindparam("p_body"), status=status(),
            created_at=bindparam("p_at"))


class CreateStatements:
    """A create's statements, for one dialect: ``exists`` (``p_kind``, ``p_ns``,
    ``p_name``), ``body`` (``p_rev``, ``p_text``: the body's JSON text, ``p_size``,
    ``p_rv_at``; returns the body's id) and ``resource`` (the object's row: ``p_uid``,
    ``p_kind``, ``p_ns``, ``p_name``, ``p_rev``, ``p_body``, ``p_status``). Its
    change-log row is ``StatusStatements.log`` with ``p_type`` ``ADDED``."""

    def __init__(self, postgres: bool) -> None:
        r, bd = t.resources.c, t.bodies.c
        self.exists = select(r.id).where(*_object_key())
        self.body = insert(t.bodies).values(
            revision=bindparam("p_rev"), body=_json_text("p_text", postgres),
            size=bindparam("p_size"), rv_at=bindparam("p_rv_at")).returning(bd.id)
        self.resource = insert(t.resources).values(
            uid=bindparam("p_uid"), kind_key=bindparam("p_kind"), namespace=bindparam("p_ns"),
            name=bindparam("p_name"), resource_version=bindparam("p_rev"),
            body_id=bindparam("p_body"), status=_json_text("p_status", postgres))
