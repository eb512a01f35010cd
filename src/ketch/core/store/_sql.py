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
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Float,
    LargeBinary,
    String,
    Text,
    and_,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import array as pg_array
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
from ketch.core.store._migrate import SchemaBranch, ensure_schema

__all__ = ["SqlResourceStore"]

_MUTABLE_META = ("labels", "annotations", "finalizers", "owner_references")

# Kubernetes' limits: annotations 256 KiB in all (apimachinery's TotalAnnotationSizeLimitB),
# an object 1.5 MiB (etcd's default --max-request-bytes). Every status write copies the
# object into the change log, so without them one 50 MB annotation grew the database by
# hundreds of megabytes a minute.
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_OBJECT_BYTES = 3 * 512 * 1024


def _check_limits(body: dict[str, Any], *, annotations: bool = True) -> None:
    if annotations:
        notes = body["metadata"].get("annotations") or {}
        size = sum(len(k.encode()) + len(v.encode()) for k, v in notes.items())
        if size > MAX_ANNOTATIONS_BYTES:
            raise InvalidError("annotations too long", [FieldError(
                "metadata.annotations",
                f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes (has {size})")])
    size = len(dumps(body).encode())
    if size > MAX_OBJECT_BYTES:
        raise RequestEntityTooLargeError(
            f"{body['kind']} {body['metadata']['name']!r} is too large: {size} bytes stored, "
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
        stmt = (update(t.revision).where(t.revision.c.id == 1)
                .values(value=t.revision.c.value + 1).returning(t.revision.c.value))
        return int(conn.execute(stmt).scalar_one())

    def _row(self, conn: Connection, info: KindInfo, namespace: str, name: str,
             *, lock: bool = False) -> Any:
        stmt = select(t.resources).where(
            t.resources.c.kind_key == info.key, t.resources.c.namespace == namespace,
            t.resources.c.name == name)
        if lock:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            self._not_found(info, namespace, name)
        return row

    @staticmethod
    def _not_found(info: KindInfo, namespace: str | None, name: str) -> NoReturn:
        raise NotFoundError(f'{info.plural}.{info.group} "{name}" not found'
                            + (f" in namespace {namespace!r}" if info.namespaced else ""))

    @staticmethod
    def _log(conn: Connection, rev: int, kind: EventType, info: KindInfo,
             body: dict[str, Any]) -> None:
        meta = body["metadata"]
        conn.execute(insert(t.events).values(
            revision=rev, event_type=kind, kind_key=info.key, namespace=meta["namespace"],
            name=meta["name"], body=body, created_at=time.time()))

    @staticmethod
    def _ns(info: KindInfo, namespace: str | None) -> str:
        # Cluster-scoped kinds live under the empty namespace.
        return (namespace or "default") if info.namespaced else ""

    # -- resources ------------------------------------------------------------

    def create(self, info: KindInfo, resource: Resource) -> Resource:
        namespace = self._ns(info, resource.metadata.namespace)
        with self._transaction(write=True) as conn:
            exists = conn.execute(select(t.resources.c.id).where(
                t.resources.c.kind_key == info.key, t.resources.c.namespace == namespace,
                t.resources.c.name == resource.name)).first()
            if exists is not None:
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
            _check_limits(body)
            try:
                conn.execute(insert(t.resources).values(
                    uid=meta.uid, kind_key=info.key, namespace=namespace, name=obj.name,
                    resource_version=rev, body=body))
            except IntegrityError:
                raise AlreadyExistsError(f'{info.plural}.{info.group} "{resource.name}" '
                                         "already exists") from None
            self._log(conn, rev, "ADDED", info, body)
        self._committed(info.key, namespace, resource.name)
        return Resource.model_validate(body)

    def get(self, info: KindInfo, namespace: str | None, name: str) -> Resource:
        with self._transaction(write=False) as conn:
            row = self._row(conn, info, self._ns(info, namespace), name)
        return Resource.model_validate(row.body)

    def resource_version(self, info: KindInfo, namespace: str | None, name: str) -> str:
        cols = t.resources.c
        with self._transaction(write=False) as conn:
            rev = conn.execute(select(cols.resource_version).where(
                cols.kind_key == info.key, cols.namespace == self._ns(info, namespace),
                cols.name == name)).scalar()
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
            cols = t.resources.c
            while True:
                stmt = select(cols.namespace, cols.name, cols.body).where(
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
                    items.append(Resource.model_validate(row.body))
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
            body = (self._write_status(conn, info, row, resource) if status_only
                    else self._write_object(conn, info, row, resource))
            if body is None:
                # A no-op write does not move resourceVersion (as Kubernetes).
                return Resource.model_validate(row.body)
        self._committed(info.key, namespace, resource.name)
        return Resource.model_validate(body)

    def _write_status(self, conn: Connection, info: KindInfo, row: Any,
                      resource: Resource) -> dict[str, Any] | None:
        """Every controller's hot path: the stored body with the status swapped in, and
        no model round trip of the whole object (a pipeline run's can be large)."""
        status = resource.status or {}
        if status == (row.body.get("status") or {}):
            return None
        rev = self._next_revision(conn)
        body = {**row.body, "status": status,
                "metadata": {**row.body["metadata"], "resourceVersion": str(rev)}}
        _check_limits(body, annotations=False)
        conn.execute(update(t.resources).where(t.resources.c.id == row.id)
                     .values(resource_version=rev, body=body))
        self._log(conn, rev, "MODIFIED", info, body)
        return body

    def write_status(self, info: KindInfo, resource: Resource) -> str:
        dialect = self._engine.dialect.name
        status = resource.status or {}
        try:
            # orjson alone: what it refuses (integers past 64 bits) SQLite's json() would
            # turn into floats, so that goes the way of every other write.
            text = orjson.dumps(status, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            text = None
        if text is None or dialect not in ("sqlite", "postgresql"):
            return super().write_status(info, resource)
        namespace = self._ns(info, resource.metadata.namespace)
        cols = t.resources.c
        new_status = literal(text, Text)
        # Compared by the database, which parses the stored JSON in C: decoding the
        # stored status in Python cost more than the rest of the write. (SQLite compares
        # minified text, so the same status with its keys in another order is written
        # again: a spare resourceVersion, never a lost change.)
        same = (cols.body.op("->")("status") == cast(new_status, JSONB)
                if dialect == "postgresql"
                else func.json_extract(cols.body, "$.status") == func.json(new_status))
        with self._transaction(write=True) as conn:
            row = conn.execute(select(
                cols.id, cols.uid, cols.resource_version, same.label("same"),
            ).where(cols.kind_key == info.key, cols.namespace == namespace,
                    cols.name == resource.name).with_for_update()).first()
            if row is None:
                self._not_found(info, namespace, resource.name)
            _check_version(info, resource.metadata.resource_version, row.resource_version,
                           resource.name)
            if resource.metadata.uid and resource.metadata.uid != row.uid:
                raise ConflictError(f'{info.plural} "{resource.name}" was deleted and recreated '
                                    f"(uid {row.uid}, not {resource.metadata.uid})")
            if row.same:
                return str(row.resource_version)  # a no-op write keeps resourceVersion
            rev = self._next_revision(conn)
            patched: Any
            if dialect == "postgresql":
                patched = func.jsonb_set(func.jsonb_set(
                    cols.body, pg_array(["status"]), cast(new_status, JSONB)),
                    pg_array(["metadata", "resourceVersion"]), func.to_jsonb(literal(str(rev),
                                                                                 Text)))
                size = func.octet_length(cast(cols.body, Text))
            else:
                patched = func.json_set(cols.body, "$.status", func.json(new_status),
                                        "$.metadata.resourceVersion", str(rev))
                size = func.length(cast(cols.body, LargeBinary))
            stored = int(conn.execute(update(t.resources).where(cols.id == row.id).values(
                resource_version=rev, body=patched).returning(size)).scalar_one())
            if stored > MAX_OBJECT_BYTES:  # rolled back with the transaction
                raise RequestEntityTooLargeError(
                    f"{info.kind} {resource.name!r} is too large: {stored} bytes stored, "
                    f"the limit is {MAX_OBJECT_BYTES} (as etcd's request limit)")
            # The change-log row is the stored body, copied by the database.
            ev = t.events.c
            conn.execute(insert(t.events).from_select(
                [ev.revision, ev.event_type, ev.kind_key, ev.namespace, ev.name, ev.body,
                 ev.created_at],
                select(literal(rev, BigInteger), literal("MODIFIED", String), cols.kind_key,
                       cols.namespace, cols.name, cols.body, literal(time.time(), Float))
                .where(cols.id == row.id)))
        self._committed(info.key, namespace, resource.name)
        return str(rev)

    def _write_object(self, conn: Connection, info: KindInfo, row: Any,
                      resource: Resource) -> dict[str, Any] | None:
        old = Resource.model_validate(row.body)
        changes = {f: getattr(resource.metadata, f) for f in _MUTABLE_META}
        meta = old.metadata.model_copy(update=changes)
        if resource.spec != old.spec:
            meta = meta.model_copy(update={"generation": (old.metadata.generation or 1) + 1})
        new = old.model_copy(update={"metadata": meta, "spec": resource.spec})
        if new.to_wire() == old.to_wire():
            return None
        rev = self._next_revision(conn)
        new.metadata.resource_version = str(rev)
        body = new.to_wire()
        _check_limits(body)
        if new.metadata.deletion_timestamp and not new.metadata.finalizers:
            conn.execute(delete(t.resources).where(t.resources.c.id == row.id))
            self._log(conn, rev, "DELETED", info, body)
        else:
            conn.execute(update(t.resources).where(t.resources.c.id == row.id)
                         .values(resource_version=rev, body=body))
            self._log(conn, rev, "MODIFIED", info, body)
        return body

    def delete(self, info: KindInfo, namespace: str | None, name: str, *,
               resource_version: str | None = None) -> Resource:
        with self._transaction(write=True) as conn:
            row = self._row(conn, info, self._ns(info, namespace), name, lock=True)
            _check_version(info, resource_version, row.resource_version, name)
            obj = Resource.model_validate(row.body)
            if obj.metadata.finalizers and obj.metadata.deletion_timestamp:
                return obj  # already being deleted; the controller finishes it
            rev = self._next_revision(conn)
            obj.metadata.resource_version = str(rev)
            if obj.metadata.finalizers:
                obj.metadata.deletion_timestamp = now()
                body = obj.to_wire()
                conn.execute(update(t.resources).where(t.resources.c.id == row.id)
                             .values(resource_version=rev, body=body))
                self._log(conn, rev, "MODIFIED", info, body)
            else:
                body = obj.to_wire()
                conn.execute(delete(t.resources).where(t.resources.c.id == row.id))
                self._log(conn, rev, "DELETED", info, body)
        self._committed(info.key, self._ns(info, namespace), name)
        return Resource.model_validate(body)

    # -- change log -----------------------------------------------------------

    def events(self, since: int, *, kind_keys: set[str] | None = None,
               namespace: str | None = None, limit: int = 500) -> builtins.list[WatchEvent]:
        cols = t.events.c
        with self._transaction(write=False) as conn:
            self._check_not_pruned(conn, since)
            stmt = select(t.events).where(cols.revision > since)
            if kind_keys is not None:
                stmt = stmt.where(cols.kind_key.in_(sorted(kind_keys)))
            if namespace is not None:
                stmt = stmt.where(cols.namespace == namespace)
            rows = conn.execute(stmt.order_by(cols.revision).limit(limit)).all()
        return [WatchEvent(type=row.event_type, object=Resource.model_validate(row.body),
                           revision=int(row.revision), kind_key=row.kind_key, body=row.body)
                for row in rows]

    def raw_events(self, since: int, *, kind_keys: set[str] | None = None,
                   namespace: str | None = None,
                   limit: int = 500) -> builtins.list[RawEvent]:
        cols = t.events.c
        # The column's JSON text as the database holds it (SQLite: orjson's output;
        # PostgreSQL: jsonb's text form), never decoded here.
        text = cast(cols.body, Text).label("body_text")
        with self._transaction(write=False) as conn:
            self._check_not_pruned(conn, since)
            stmt = select(cols.revision, cols.event_type, cols.kind_key, cols.namespace,
                          cols.name, text).where(cols.revision > since)
            if kind_keys is not None:
                stmt = stmt.where(cols.kind_key.in_(sorted(kind_keys)))
            if namespace is not None:
                stmt = stmt.where(cols.namespace == namespace)
            rows = conn.execute(stmt.order_by(cols.revision).limit(limit)).all()
        return [RawEvent(int(row.revision), row.event_type, row.kind_key, row.namespace,
                         row.name, row.body_text) for row in rows]

    @staticmethod
    def _check_not_pruned(conn: Connection, since: int) -> None:
        pruned = int(conn.execute(select(t.revision.c.pruned_through)).scalar_one())
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
