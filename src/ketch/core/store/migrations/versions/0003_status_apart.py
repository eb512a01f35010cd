"""An object's status apart from the rest of it, so a status write rewrites only status.

``ketch_bodies`` holds the rest of each object (apiVersion, kind, metadata, spec) as of the
revision that wrote it; ``ketch_resources`` and ``ketch_events`` lose their whole-object
``body`` for ``body_id`` (that row) and ``status``. Every stored object and every
change-log entry is carried over: each becomes one body row and its status.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")
_BATCH = 200
_RV_KEY = '"resourceVersion":"'


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def _encode(rest: dict[str, Any], rev: int) -> tuple[str, int]:
    # As ketch.core.store._bodies.encode_body (frozen here): the text and the offset of
    # its resourceVersion value.
    mark = uuid.uuid4().hex
    text = _dumps({**rest, "metadata": {**rest["metadata"], "resourceVersion": mark}})
    at = text.index(_RV_KEY + mark + '"') + len(_RV_KEY)
    return text[:at] + str(rev) + text[at + len(mark):], at


def _rows(conn: sa.Connection, table: sa.TableClause, key: str) -> Iterator[Any]:
    """Every row of ``table``, in batches by ``key`` (a large database need not fit in
    memory at once)."""
    col = table.c[key]
    after: Any = None
    while True:
        stmt = sa.select(table).order_by(col).limit(_BATCH)
        if after is not None:
            stmt = stmt.where(col > after)
        rows = conn.execute(stmt).all()
        yield from rows
        if len(rows) < _BATCH:
            return
        after = getattr(rows[-1], key)


def upgrade() -> None:
    op.create_table(
        "ketch_bodies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("body", _json, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("rv_at", sa.Integer, nullable=True),
        sqlite_autoincrement=True,
    )
    for name in ("ketch_resources", "ketch_events"):
        op.add_column(name, sa.Column("body_id", sa.Integer, nullable=True))
        op.add_column(name, sa.Column("status", _json, nullable=True))

    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    bodies = sa.table("ketch_bodies", sa.column("id", sa.Integer),
                      sa.column("revision", sa.BigInteger), sa.column("body", _json),
                      sa.column("size", sa.Integer), sa.column("rv_at", sa.Integer))

    def as_json(text: str) -> Any:
        value = sa.literal(text, sa.Text)
        return sa.cast(value, JSONB) if pg else value

    def move(name: str, key: str, rev_col: str) -> None:
        table = sa.table(name, sa.column(key), sa.column(rev_col), sa.column("body", _json))
        target = sa.table(name, sa.column(key), sa.column("body_id", sa.Integer),
                          sa.column("status", _json))
        for row in _rows(conn, table, key):
            rest = dict(row.body)
            status = rest.pop("status", None) or {}
            rev = int(getattr(row, rev_col))
            text, at = _encode(rest, rev)
            body_id = conn.execute(sa.insert(bodies).values(
                revision=rev, body=as_json(text), size=len(text.encode()),
                rv_at=None if pg else at).returning(bodies.c.id)).scalar_one()
            conn.execute(sa.update(target).where(target.c[key] == getattr(row, key)).values(
                body_id=body_id, status=as_json(_dumps(status))))

    move("ketch_resources", "id", "resource_version")
    move("ketch_events", "revision", "revision")
    for name in ("ketch_resources", "ketch_events"):
        with op.batch_alter_table(name) as batch:
            batch.drop_column("body")
            batch.alter_column("body_id", existing_type=sa.Integer, nullable=False)
            batch.alter_column("status", existing_type=_json, nullable=False)
        op.create_index(f"ix_{name}_body_id", name, ["body_id"])


def downgrade() -> None:
    conn = op.get_bind()
    for name, key, rev_col in (("ketch_resources", "id", "resource_version"),
                               ("ketch_events", "revision", "revision")):
        op.add_column(name, sa.Column("body", _json, nullable=True))
        table = sa.table(name, sa.column(key), sa.column(rev_col),
                         sa.column("body_id", sa.Integer), sa.column("status", _json),
                         sa.column("body", _json))
        bodies = sa.table("ketch_bodies", sa.column("id", sa.Integer),
                          sa.column("body", _json))
        for row in _rows(conn, table, key):
            rest = conn.execute(sa.select(bodies.c.body)
                                .where(bodies.c.id == row.body_id)).scalar_one()
            whole = dict(rest)
            whole["metadata"] = {**whole["metadata"],
                                 "resourceVersion": str(getattr(row, rev_col))}
            whole["status"] = row.status or {}
            conn.execute(sa.update(table).where(table.c[key] == getattr(row, key))
                         .values(body=whole))
        op.drop_index(f"ix_{name}_body_id", table_name=name)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("body_id")
            batch.drop_column("status")
            batch.alter_column("body", existing_type=_json, nullable=False)
    op.drop_table("ketch_bodies")
