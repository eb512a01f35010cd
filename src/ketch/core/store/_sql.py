"""The SQL store: SQLAlchemy 2.x Core over SQLite (WAL) or PostgreSQL.

Every call is one transaction through ``_transaction``, which also rewraps
driver errors. Writers take the single revision row first (``UPDATE ...
RETURNING``), which serializes writers across processes and makes commit order
equal revision order: a watch that reads the change log by revision never
misses a write that commits late.
"""

from __future__ import annotations

import base64
import builtins
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Text,
    and_,
    cast,
    create_engine,
    delete,
    event,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ketch.core.codec import dumps, loads
from ketch.core.config import redact_url
from ketch.core.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldError,
    GoneError,
    InvalidError,
    KetchError,
    NotFoundError,
    RequestEntityTooLargeError,
    StoreError,
)
from ketch.core.kinds import KindInfo
from ketch.core.labels import LabelSelector
from ketch.core.resources import Resource, now
from ketch.core.store import _schema as t
from ketch.core.store._base import (
    ChangedKey,
    EventType,
    Lease,
    ListResult,
    RawEvent,
    ResourceStore,
    WatchEvent,
)
from ketch.core.store._bodies import Template, encode_body, split, template, whole
from ketch.core.store._migrate import SchemaBranch, ensure_schema
from ketch.core.store._prepared import (
    ALL_EVENTS,
    NEXT_REVISION,
    PRUNED_THROUGH,
    CreateStatements,
    StatusStatements,
)

__all__ = ["SqlResourceStore"]

_MUTABLE_META = ("labels", "annotations", "finalizers", "owner_references")

# Kubernetes' limits: annotations 256 KiB in all (apimachinery's TotalAnnotationSizeLimitB),
# an object 1.5 MiB (etcd's default --max-request-bytes). Without them one 50 MB annotation
# grew the database by hundreds of megabytes a minute (each write of the rest of the object
# is a new body row, kept as long as the change log refers to it).
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_OBJECT_BYTES = 3 * 512 * 1024
# What the status adds to the body's text besides its own: ``,"status":``.
_STATUS_KEY_BYTES = len(',"status":')
# Templates of recent bodies kept per store (a watch feed renders every revision of a
# running pipeline from one body); rows are immutable and ids never reused.
_TEMPLATES = 16


def _check_annotations(meta: dict[str, Any]) -> None:
    notes = meta.get("annotations") or {}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in notes.items())
    if size > MAX_ANNOTATIONS_BYTES:
        raise InvalidError("annotations too long", [FieldError(
            "metadata.annotations",
            f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes (has {size})")])


def _check_size(kind: str, name: str, body_bytes: int, status_bytes: int) -> None:
    size = body_bytes + _STATUS_KEY_BYTES + status_bytes
    if size > MAX_OBJECT_BYTES:
        raise RequestEntityTooLargeError(
            f"{kind} {name!r} is too large: {size} bytes stored, "
            f"the limit is {MAX_OBJECT_BYTES} (as etcd's request limit)")


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` for writes (so concurrent writers queue instead of
    failing with 'database is locked' on lock upgrade)."""
    # orjson: every status write serializes the whole object (see ketch.core.codec).
    codec: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": loads}
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                   poolclass=NullPool if ":memory:" in url else None, **codec)
            _tune_sqlite(engine)
            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **codec)
    except (SQLAlchemyError, ImportError) as err:
        raise StoreError(f"cannot open database {redact_url(url)}: "
                         f"{_scrub(str(err), url)}") from None


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        # A checkpointed WAL is truncated back to this size (by default it keeps its peak
        # size for good: hundreds of megabytes after a burst of large writes).
        cur.execute("PRAGMA journal_size_limit=67108864")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("ketch_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _scrub(text: str, url: str) -> str:
    """``text`` (a driver's message, which may quote the URL) with the URL's password
    masked wherever it appears."""
    text = text.replace(url, redact_url(url))
    for secret in _passwords(url):
        text = text.replace(secret, "***")
    return text


def _passwords(url: str) -> list[str]:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    found = [parsed.password, parsed.query.get("password")]
    flat = [p for value in found for p in ((value,) if isinstance(value, str) else value or ())]
    return [p for p in flat if p and len(p) > 2]


class SqlResourceStore(ResourceStore):
    """``ResourceStore`` on any SQLAlchemy database (SQLite and PostgreSQL tested)."""

    def __init__(self, url: str, *, migrate: bool = True,
                 schemas: Sequence[SchemaBranch] = ()) -> None:
        self.url = url
        self._engine = make_engine(url)
        self._pg = self._engine.dialect.name == "postgresql"
        self._status_sql = StatusStatements(self._pg)
        self._create_sql = CreateStatements(self._pg)
        self._cache: OrderedDict[int, Template] = OrderedDict()
        self._cache_lock = threading.Lock()
        if migrate:
            with self._errors():
                ensure_schema(self._engine, schemas)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        with self._transaction(write=write) as conn:
            yield conn

    # -- plumbing -------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except KetchError:
            raise
        except DBAPIError as err:
            raise StoreError(f"database error ({redact_url(self.url)}): "
                             f"{_scrub(str(err.orig), self.url)}") from None
        except SQLAlchemyError as err:
            raise StoreError(f"database error ({redact_url(self.url)}): "
                             f"{_scrub(str(err), self.url)}") from None

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        with self._errors(), self._engine.connect() as conn:
            conn.execution_options(ketch_write=write)
            with conn.begin():
                yield conn

    def _next_revision(self, conn: Connection) -> int:
        return int(conn.execute(NEXT_REVISION).scalar_one())

    def _json(self, text: str) -> Any:
        """A JSON value already encoded as text, bound without encoding it again."""
        value = literal(text, Text)
        return cast(value, JSONB) if self._pg else value

    def _row(self, conn: Connection, info: KindInfo, namespace: str, name: str,
             *, lock: bool = False) -> Any:
        key = {"p_kind": info.key, "p_ns": namespace, "p_name": name}
        if lock and self._pg:
            # The row alone, before it is read with its body: a ``FOR UPDATE`` over the
            # join would, after waiting on a concurrent write that gave the row a new
            # body, recheck the join against the old body row and find nothing
            # (PostgreSQL's EvalPlanQual under READ COMMITTED): a 404 for an object that
            # exists, seen by the soak test. SQLite's write transactions are serial.
            conn.execute(self._status_sql.lock, key)
        row = conn.execute(self._status_sql.read, key).first()
        if row is None:
            self._not_found(info, namespace, name)
        return row

    @staticmethod
    def _object(row: Any) -> dict[str, Any]:
        """The whole object of a ``_row`` (its decoded body, completed in place)."""
        return whole(row.body, row.status, int(row.resource_version))

    def _new_body(self, conn: Connection, info: KindInfo, body: dict[str, Any],
                  rev: int) -> int:
        """Store the rest of ``body`` (the whole object at ``rev``) as a new body row,
        within the limits; its id."""
        rest, status = split(body)
        _check_annotations(rest["metadata"])
        enc = encode_body(rest, rev)
        size = len(enc.text.encode())
        _check_size(info.kind, rest["metadata"]["name"], size, len(dumps(status).encode()))
        return int(conn.execute(self._create_sql.body, {
            "p_rev": rev, "p_text": enc.text, "p_size": size,
            "p_rv_at": None if self._pg else enc.rv_at}).scalar_one())

    @staticmethod
    def _not_found(info: KindInfo, namespace: str | None, name: str) -> NoReturn:
        raise NotFoundError(f'{info.plural}.{info.group} "{name}" not found'
                            + (f" in namespace {namespace!r}" if info.namespaced else ""))

    @staticmethod
    def _log(conn: Connection, rev: int, kind: EventType, info: KindInfo, namespace: str,
             name: str, body_id: int, status: Any) -> None:
        conn.execute(insert(t.events).values(
            revision=rev, event_type=kind, kind_key=info.key, namespace=namespace,
            name=name, body_id=body_id, status=status, created_at=time.time()))

    def _log_text(self, conn: Connection, key: dict[str, Any], rev: int, kind: EventType,
                  body_id: int, status_text: str) -> None:
        """``_log`` by the statement built once, the status bound as its JSON text;
        ``key``: the object's ``p_kind``, ``p_ns`` and ``p_name``."""
        conn.execute(self._status_sql.log, {**key, "p_status": status_text, "p_rev": rev,
                                            "p_body": body_id, "p_type": kind,
                                            "p_at": time.time()})

    @staticmethod
    def _ns(info: KindInfo, namespace: str | None) -> str:
        # Cluster-scoped kinds live under the empty namespace.
        return (namespace or "default") if info.namespaced else ""

    # -- resources ------------------------------------------------------------

    def create(self, info: KindInfo, resource: Resource) -> Resource:
        namespace = self._ns(info, resource.metadata.namespace)
        sql = self._create_sql
        key: dict[str, Any] = {"p_kind": info.key, "p_ns": namespace, "p_name": resource.name}
        with self._transaction(write=True) as conn:
            if conn.execute(sql.exists, key).first() is not None:
                raise AlreadyExistsError(f'{info.plural}.{info.group} "{resource.name}" '
                                         "already exists")
            rev = self._next_revision(conn)
            meta = resource.metadata.model_copy(update={
                "namespace": namespace or resource.metadata.namespace,
                "uid": str(uuid.uuid4()), "creation_timestamp": now(),
                "resource_version": str(rev), "generation": 1, "deletion_timestamp": None,
            })
            obj = resource.model_copy(update={"metadata": meta, "status": {}})
            body = obj.to_wire()
            body_id = self._new_body(conn, info, body, rev)
            try:
                conn.execute(sql.resource, {**key, "p_uid": meta.uid, "p_rev": rev,
                                            "p_body": body_id, "p_status": "{}"})
            except IntegrityError:
                raise AlreadyExistsError(f'{info.plural}.{info.group} "{resource.name}" '
                                         "already exists") from None
            self._log_text(conn, key, rev, "ADDED", body_id, "{}")
        self._committed(info.key, namespace, resource.name)
        return Resource.model_validate(body)

    def get(self, info: KindInfo, namespace: str | None, name: str) -> Resource:
        with self._transaction(write=False) as conn:
            row = self._row(conn, info, self._ns(info, namespace), name)
        return Resource.model_validate(self._object(row))

    def resource_version(self, info: KindInfo, namespace: str | None, name: str) -> str:
        with self._transaction(write=False) as conn:
            rev = conn.execute(self._status_sql.resource_version, {
                "p_kind": info.key, "p_ns": self._ns(info, namespace), "p_name": name,
            }).scalar()
        if rev is None:
            self._not_found(info, namespace, name)
        return str(rev)

    def list(self, info: KindInfo, namespace: str | None = None, *,
             selector: LabelSelector | None = None, limit: int | None = None,
             continue_token: str | None = None) -> ListResult:
        if limit is not None and limit <= 0:
            limit = None
        after = _decode_token(continue_token) if continue_token else None
        items: list[Resource] = []
        more = False
        batch = max((limit or 0) + 1, 200)
        with self._transaction(write=False) as conn:
            rev = int(conn.execute(select(t.revision.c.value)).scalar_one())
            cols, bd = t.resources.c, t.bodies.c
            while True:
                stmt = select(cols.namespace, cols.name, cols.resource_version, cols.status,
                              bd.body).join_from(t.resources, t.bodies,
                                                 cols.body_id == bd.id).where(
                    cols.kind_key == info.key)
                if namespace is not None and info.namespaced:
                    stmt = stmt.where(cols.namespace == namespace)
                if after is not None:
                    stmt = stmt.where(or_(cols.namespace > after[0],
                                          and_(cols.namespace == after[0], cols.name > after[1])))
                rows = conn.execute(stmt.order_by(cols.namespace, cols.name).limit(batch)).all()
                for row in rows:
                    labels = row.body.get("metadata", {}).get("labels") or {}
                    if selector is not None and not selector.matches(labels):
                        after = (row.namespace, row.name)
                        continue
                    if limit is not None and len(items) == limit:
                        more = True
                        break
                    items.append(Resource.model_validate(self._object(row)))
                    after = (row.namespace, row.name)
                if more or len(rows) < batch:
                    break
        token = None
        if more and items:
            token = _encode_token(items[-1].namespace if info.namespaced else "", items[-1].name)
        return ListResult(items=items, resource_version=str(rev), continue_token=token)

    def update(self, info: KindInfo, resource: Resource) -> Resource:
        return self._write(info, resource, status_only=False)

    def update_status(self, info: KindInfo, resource: Resource) -> Resource:
        return self._write(info, resource, status_only=True)

    def _write(self, info: KindInfo, resource: Resource, *, status_only: bool) -> Resource:
        namespace = self._ns(info, resource.metadata.namespace)
        with self._transaction(write=True) as conn:
            row = self._row(conn, info, namespace, resource.name, lock=True)
            _check_version(info, resource.metadata.resource_version, row.resource_version,
                           resource.name)
            if resource.metadata.uid and resource.metadata.uid != row.uid:
                raise ConflictError(f'{info.plural} "{resource.name}" was deleted and recreated '
                                    f"(uid {row.uid}, not {resource.metadata.uid})")
            body = (self._write_status(conn, info, namespace, row, resource) if status_only
                    else self._write_object(conn, info, namespace, row, resource))
            if body is None:
                # A no-op write does not move resourceVersion (as Kubernetes).
                return Resource.model_validate(self._object(row))
        self._committed(info.key, namespace, resource.name)
        written = Resource.model_validate(body)
        if status_only:
            self._status_committed(info, resource)
        elif written.metadata.deletion_timestamp and not written.metadata.finalizers:
            self._removal_committed(info, written)
        return written

    def _write_status(self, conn: Connection, info: KindInfo, namespace: str, row: Any,
                      resource: Resource) -> dict[str, Any] | None:
        """The status column swapped; the body row is not touched."""
        status = resource.status or {}
        if status == (row.status or {}):
            return None
        text = dumps(status)
        _check_size(info.kind, resource.name, int(row.size), len(text.encode()))
        rev = self._next_revision(conn)
        conn.execute(update(t.resources).where(t.resources.c.id == row.id)
                     .values(resource_version=rev, status=self._json(text)))
        self._log(conn, rev, "MODIFIED", info, namespace, resource.name, int(row.body_id),
                  self._json(text))
        return whole(row.body, status, rev)

    def write_status(self, info: KindInfo, resource: Resource) -> str:
        status = resource.status or {}
        try:
            # orjson alone: the stored status text is orjson's (the column's encoder), so
            # SQLite can compare text; what orjson refuses (integers past 64 bits) goes
            # the way of every other write.
            text = orjson.dumps(status, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            text = None
        if text is None or self._engine.dialect.name not in ("sqlite", "postgresql"):
            return super().write_status(info, resource)
        namespace = self._ns(info, resource.metadata.namespace)
        sql = self._status_sql
        # Compared by the database, without decoding the stored status in Python (jsonb
        # equality on PostgreSQL; on SQLite the text, which the same encoder wrote: the
        # same status with its keys in another order is written again, a spare
        # resourceVersion, never a lost change).
        key: dict[str, Any] = {"p_kind": info.key, "p_ns": namespace, "p_name": resource.name}
        with self._transaction(write=True) as conn:
            if self._pg:
                conn.execute(sql.lock, key)
            row = conn.execute(sql.row, {**key, "p_status": text}).first()
            if row is None:
                self._not_found(info, namespace, resource.name)
            _check_version(info, resource.metadata.resource_version, row.resource_version,
                           resource.name)
            if resource.metadata.uid and resource.metadata.uid != row.uid:
                raise ConflictError(f'{info.plural} "{resource.name}" was deleted and recreated '
                                    f"(uid {row.uid}, not {resource.metadata.uid})")
            if row.same:
                return str(row.resource_version)  # a no-op write keeps resourceVersion
            _check_size(info.kind, resource.name, int(row.size), len(text.encode()))
            rev = self._next_revision(conn)
            # Two small rows: the status and its change-log entry, which refers to the
            # body the resource row refers to (not a copy of it). Each statement gets
            # only its own parameters (an INSERT or UPDATE refuses names it does not use).
            conn.execute(sql.update, {"p_row": row.id, "p_rev": rev, "p_status": text})
            self._log_text(conn, key, rev, "MODIFIED", int(row.body_id), text)
        self._committed(info.key, namespace, resource.name)
        self._status_committed(info, resource)
        return str(rev)

    def _write_object(self, conn: Connection, info: KindInfo, namespace: str, row: Any,
                      resource: Resource) -> dict[str, Any] | None:
        old = Resource.model_validate(self._object(row))
        changes = {f: getattr(resource.metadata, f) for f in _MUTABLE_META}
        if resource.metadata.managed_fields is not None:
            # Only a writer that says (the resource service) changes them; one that
            # leaves them out (None) keeps what is stored, as kube-apiserver does.
            changes["managed_fields"] = resource.metadata.managed_fields
        meta = old.metadata.model_copy(update=changes)
        if resource.spec != old.spec:
            meta = meta.model_copy(update={"generation": (old.metadata.generation or 1) + 1})
        new = old.model_copy(update={"metadata": meta, "spec": resource.spec})
        if new.to_wire() == old.to_wire():
            return None
        rev = self._next_revision(conn)
        new.metadata.resource_version = str(rev)
        body = new.to_wire()
        body_id = self._new_body(conn, info, body, rev)
        if new.metadata.deletion_timestamp and not new.metadata.finalizers:
            conn.execute(delete(t.resources).where(t.resources.c.id == row.id))
            self._log(conn, rev, "DELETED", info, namespace, new.name, body_id, body["status"])
        else:
            conn.execute(update(t.resources).where(t.resources.c.id == row.id)
                         .values(resource_version=rev, body_id=body_id))
            self._log(conn, rev, "MODIFIED", info, namespace, new.name, body_id,
                      body["status"])
        return body

    def delete(self, info: KindInfo, namespace: str | None, name: str, *,
               resource_version: str | None = None) -> Resource:
        ns = self._ns(info, namespace)
        with self._transaction(write=True) as conn:
            row = self._row(conn, info, ns, name, lock=True)
            _check_version(info, resource_version, row.resource_version, name)
            obj = Resource.model_validate(self._object(row))
            if obj.metadata.finalizers and obj.metadata.deletion_timestamp:
                return obj  # already being deleted; the controller finishes it
            rev = self._next_revision(conn)
            obj.metadata.resource_version = str(rev)
            body = obj.to_wire()
            if obj.metadata.finalizers:
                obj.metadata.deletion_timestamp = now()
                body = obj.to_wire()
                body_id = self._new_body(conn, info, body, rev)
                conn.execute(update(t.resources).where(t.resources.c.id == row.id)
                             .values(resource_version=rev, body_id=body_id))
                self._log(conn, rev, "MODIFIED", info, ns, name, body_id, body["status"])
            else:
                # The last revision is the last body with its status, as it was.
                conn.execute(delete(t.resources).where(t.resources.c.id == row.id))
                self._log(conn, rev, "DELETED", info, ns, name, int(row.body_id),
                          body["status"])
        self._committed(info.key, ns, name)
        removed = Resource.model_validate(body)
        if not removed.metadata.finalizers:
            self._removal_committed(info, removed)
        return removed

    # -- change log -----------------------------------------------------------

    def events(self, since: int, *, kind_keys: set[str] | None = None,
               namespace: str | None = None, limit: int = 500) -> builtins.list[WatchEvent]:
        cols, bd = t.events.c, t.bodies.c
        with self._transaction(write=False) as conn:
            self._check_not_pruned(conn, since)
            stmt = select(cols.revision, cols.event_type, cols.kind_key, cols.status,
                          bd.body).join_from(t.events, t.bodies, cols.body_id == bd.id).where(
                cols.revision > since)
            if kind_keys is not None:
                stmt = stmt.where(cols.kind_key.in_(sorted(kind_keys)))
            if namespace is not None:
                stmt = stmt.where(cols.namespace == namespace)
            rows = conn.execute(stmt.order_by(cols.revision).limit(limit)).all()
        out = []
        for row in rows:
            body = whole(row.body, row.status, int(row.revision))
            out.append(WatchEvent(type=row.event_type, object=Resource.model_validate(body),
                                  revision=int(row.revision), kind_key=row.kind_key, body=body))
        return out

    def raw_events(self, since: int, *, kind_keys: set[str] | None = None,
                   namespace: str | None = None,
                   limit: int = 500) -> builtins.list[RawEvent]:
        cols = t.events.c
        # The status column's JSON text as the database holds it (SQLite: orjson's output;
        # PostgreSQL: jsonb's text form), never decoded here; each body's text is read
        # once (or not at all, when its template is at hand) for all its revisions.
        status = cast(cols.status, Text).label("status_text")
        with self._transaction(write=False) as conn:
            self._check_not_pruned(conn, since)
            if kind_keys is None and namespace is None:  # the change feed's, after each write
                rows = conn.execute(ALL_EVENTS, {"p_since": since, "p_limit": limit}).all()
            else:
                stmt = select(cols.revision, cols.event_type, cols.kind_key, cols.namespace,
                              cols.name, cols.body_id, status).where(cols.revision > since)
                if kind_keys is not None:
                    stmt = stmt.where(cols.kind_key.in_(sorted(kind_keys)))
                if namespace is not None:
                    stmt = stmt.where(cols.namespace == namespace)
                rows = conn.execute(stmt.order_by(cols.revision).limit(limit)).all()
            templates = self._templates_of(conn, {int(row.body_id) for row in rows})
            if len(templates) < len({row.body_id for row in rows}):
                # Compacted between the two reads (PostgreSQL reads each statement anew).
                self._check_not_pruned(conn, since)
                raise GoneError(f"resourceVersion {since} is too old: the change log was "
                                "compacted; list again and watch from the list's version")
        return [RawEvent(int(row.revision), row.event_type, row.kind_key, row.namespace,
                         row.name, templates[int(row.body_id)].render(int(row.revision),
                                                                      row.status_text),
                         row.status_text, templates[int(row.body_id)])
                for row in rows]

    def _templates_of(self, conn: Connection, ids: set[int]) -> dict[int, Template]:
        with self._cache_lock:
            found = {i: self._cache[i] for i in ids if i in self._cache}
        missing = sorted(ids - found.keys())
        if not missing:
            return found
        bd = t.bodies.c
        rows = conn.execute(select(bd.id, bd.revision, bd.rv_at,
                                   cast(bd.body, Text).label("text"))
                            .where(bd.id.in_(missing))).all()
        made = {int(row.id): template(row.text, row.rv_at, row.revision) for row in rows}
        with self._cache_lock:
            self._cache.update(made)
            while len(self._cache) > _TEMPLATES:
                self._cache.popitem(last=False)
        return {**found, **made}

    @staticmethod
    def _check_not_pruned(conn: Connection, since: int) -> None:
        pruned = int(conn.execute(PRUNED_THROUGH).scalar_one())
        if since < pruned:
            raise GoneError(f"resourceVersion {since} is too old: the change log starts "
                            f"after {pruned}; list again and watch from the list's version")

    def changed_keys(self, since: int, *, kind_keys: set[str] | None = None,
                     limit: int = 500) -> builtins.list[ChangedKey]:
        cols = t.events.c
        with self._transaction(write=False) as conn:
            self._check_not_pruned(conn, since)
            stmt = select(cols.revision, cols.kind_key, cols.namespace, cols.name).where(
                cols.revision > since)
            if kind_keys is not None:
                stmt = stmt.where(cols.kind_key.in_(sorted(kind_keys)))
            rows = conn.execute(stmt.order_by(cols.revision).limit(limit)).all()
        return [ChangedKey(int(row.revision), row.kind_key, row.namespace, row.name)
                for row in rows]

    def revision(self) -> int:
        with self._transaction(write=False) as conn:
            return int(conn.execute(select(t.revision.c.value)).scalar_one())

    def prune_events(self, older_than_seconds: float, *,
                     keep_revisions: int | None = None) -> int:
        cutoff = time.time() - older_than_seconds
        cols = t.events.c
        with self._transaction(write=True) as conn:
            newest = conn.execute(select(cols.revision).where(cols.created_at < cutoff)
                                  .order_by(cols.revision.desc()).limit(1)).scalar()
            if keep_revisions is not None:
                latest = int(conn.execute(select(t.revision.c.value)).scalar_one())
                window_start = latest - keep_revisions
                if window_start > (newest or 0):
                    newest = window_start
            pruned = int(conn.execute(select(t.revision.c.pruned_through)).scalar_one())
            if newest is None or newest <= pruned:
                return 0
            count = conn.execute(delete(t.events).where(cols.revision <= newest)).rowcount
            conn.execute(update(t.revision).where(t.revision.c.id == 1)
                         .values(pruned_through=newest))
            # Bodies that only the compacted entries referred to (older versions of an
            # object's spec and metadata, and deleted objects).
            bd = t.bodies.c
            conn.execute(delete(t.bodies).where(
                ~exists().where(t.resources.c.body_id == bd.id),
                ~exists().where(cols.body_id == bd.id)))
        return int(count or 0)

    def namespaces(self) -> builtins.list[str]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(select(t.resources.c.namespace).distinct()).scalars().all()
        return sorted(ns for ns in rows if ns)

    # -- leases ---------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float,
                      data: dict[str, Any] | None = None) -> bool:
        stamp = time.time()
        with self._transaction(write=True) as conn:
            row = conn.execute(select(t.leases).where(t.leases.c.name == name)
                               .with_for_update()).first()
            values = {"holder": holder, "expires_at": stamp + ttl_seconds, "data": data or {}}
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(t.leases).values(name=name, **values))
                except IntegrityError:
                    return False
                return True
            if row.holder != holder and row.expires_at > stamp:
                return False
            conn.execute(update(t.leases).where(t.leases.c.name == name).values(**values))
        return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction(write=True) as conn:
            conn.execute(delete(t.leases).where(t.leases.c.name == name,
                                                t.leases.c.holder == holder))

    def prune_leases(self, expired_for_seconds: float) -> int:
        cutoff = time.time() - expired_for_seconds
        with self._transaction(write=True) as conn:
            count = conn.execute(delete(t.leases).where(t.leases.c.expires_at < cutoff)).rowcount
        return int(count or 0)

    def get_lease(self, name: str) -> Lease | None:
        with self._transaction(write=False) as conn:
            row = conn.execute(select(t.leases).where(t.leases.c.name == name)).first()
        if row is None:
            return None
        return Lease(name=row.name, holder=row.holder, expires_at=row.expires_at,
                     data=dict(row.data or {}))

    def ping(self) -> None:
        with self._transaction(write=False) as conn:
            conn.execute(select(t.revision.c.value)).scalar_one()

    def close(self) -> None:
        self._engine.dispose()


def _check_version(info: KindInfo, wanted: str | None, actual: int, name: str) -> None:
    if wanted is None or wanted == "":
        return
    if not wanted.isdigit():
        raise InvalidError("invalid resourceVersion",
                           [FieldError("metadata.resourceVersion", f"{wanted!r} is not a number")])
    if int(wanted) != actual:
        raise ConflictError(
            f'Operation cannot be fulfilled on {info.plural}.{info.group} "{name}": the object '
            f"has been modified (resourceVersion {wanted}, now {actual}); read it again and "
            "apply your changes to the latest version")


def _encode_token(namespace: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([namespace, name]).encode()).decode()


def _decode_token(token: str) -> tuple[str, str]:
    try:
        ns, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(ns), str(name)
    except (ValueError, TypeError):
        raise InvalidError("invalid continue token",
                           [FieldError("continue", "not a token this server issued")]) from None
