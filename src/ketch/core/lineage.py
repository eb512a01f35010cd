"""Lineage: what ran, on what, producing what — the ML Metadata (MLMD) model.

* **Artifacts**: data an execution read or wrote (``system.Dataset`` at a URI).
* **Executions**: one run of one step (``system.ContainerExecution``), with a state
  (``NEW``, ``RUNNING``, ``COMPLETE``, ``FAILED``, ``CACHED``, ``CANCELED``) and a
  ``cache_key`` the pipeline cache looks executions up by.
* **Contexts**: groups (``system.PipelineRun``, ``system.Pipeline``), named uniquely
  per type and namespace, optionally inside a parent context.
* **Attributions** tie artifacts to contexts, **associations** executions to
  contexts, and **events** an artifact to an execution as its ``INPUT`` or
  ``OUTPUT`` in one slot (``path``, the input or output name).

As in KFP's use of MLMD, an execution's parameters live in its custom
properties: ``inputs`` and ``outputs`` hold the input and output parameter values.

Every method is one transaction. Pass ``conn=`` (a connection from
``ResourceStore.transaction(write=True)``) to make it part of the caller's
transaction instead, so that lineage and the caller's own tables commit or roll
back together. Entities are returned as frozen dataclasses; ``to_api()`` gives
the JSON shape the REST API serves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Executable, Row, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ketch.core._lineage_model import (
    ARTIFACT_STATES,
    DEFAULT_DEPTH,
    EXECUTION_STATES,
    MAX_DEPTH,
    MAX_PAGE,
    Artifact,
    ArtifactRef,
    CachedExecution,
    Context,
    Event,
    EventType,
    Execution,
    LineageGraph,
    NewArtifact,
    RecordedExecution,
    Slots,
    artifact_from_row,
    check_choice,
    check_depth,
    check_json,
    check_namespace,
    check_page,
    check_text,
    context_from_row,
    event_from_row,
    execution_from_row,
    now_ms,
    slot_refs,
)
from ketch.core.errors import FieldError, InvalidError, NotFoundError
from ketch.core.store import ResourceStore
from ketch.core.store import _schema as t

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.sql.base import ReadOnlyColumnCollection

__all__ = [
    "ARTIFACT_STATES",
    "DEFAULT_DEPTH",
    "EXECUTION_STATES",
    "MAX_DEPTH",
    "MAX_PAGE",
    "Artifact",
    "ArtifactRef",
    "CachedExecution",
    "Context",
    "Event",
    "Execution",
    "LineageGraph",
    "LineageStore",
    "NewArtifact",
    "RecordedExecution",
]


# Statements of a pipeline step's record (an execution, its links, the read back), built
# once: built per call, SQLAlchemy's construction and cache key cost more CPU than the
# database's work (a statement object keeps its cache key). Keyed by what varies.
_STATEMENTS: dict[tuple[str, str], Executable] = {}


def _statement(kind: str, table: Table, build: Any) -> Any:
    key = (kind, table.name)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = build()
    return found


def _insert_links(c: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert link rows (attributions, associations, events), dropping any that another
    transaction inserted meanwhile: PostgreSQL runs writers side by side, so two steps
    reading one artifact may both tie it to their run's context at the same moment."""
    if not rows:
        return
    dialect = c.dialect.name
    if dialect == "postgresql":
        stmt = _statement("pg-insert-links", table,
                          lambda: postgresql.insert(table).on_conflict_do_nothing())
    elif dialect == "sqlite":
        stmt = _statement("sqlite-insert-links", table,
                          lambda: sqlite.insert(table).on_conflict_do_nothing())
    else:  # another database: plain inserts (its writers must serialize)
        stmt = insert(table)
    c.execute(stmt, rows)


def _equal(cols: ReadOnlyColumnCollection[str, Any],
           **values: object) -> list[ColumnElement[bool]]:
    """``column == value`` for each filter given (``None``: not filtered on)."""
    return [cols[key] == value for key, value in values.items() if value is not None]


def _event_refs(inputs: list[tuple[str, ArtifactRef]], outputs: list[tuple[str, ArtifactRef]],
                ) -> list[tuple[EventType, str, ArtifactRef]]:
    refs: list[tuple[EventType, str, ArtifactRef]] = [("INPUT", s, r) for s, r in inputs]
    return refs + [("OUTPUT", s, r) for s, r in outputs]


class LineageStore:
    """Lineage records in the ketch database. Thread-safe (no state of its own)."""

    def __init__(self, store: ResourceStore) -> None:
        self._store = store

    @contextmanager
    def _tx(self, conn: Connection | None, *, write: bool) -> Iterator[Connection]:
        if conn is not None:
            yield conn
            return
        with self._store.transaction(write=write) as own:
            yield own

    # -- single rows ----------------------------------------------------------

    @staticmethod
    def _one(conn: Connection, table: Table, id_: int, what: str) -> Row[Any]:
        if isinstance(id_, bool) or not isinstance(id_, int):
            raise InvalidError(f"invalid {what} id", [FieldError("id", f"{id_!r} is not an "
                                                                      "integer")])
        stmt = _statement("one", table,
                          lambda: select(table).where(table.c.id == bindparam("p_id")))
        row = conn.execute(stmt, {"p_id": id_}).first()
        if row is None:
            raise NotFoundError(f"{what} {id_} not found")
        return row

    def get_artifact(self, artifact_id: int, *, conn: Connection | None = None) -> Artifact:
        with self._tx(conn, write=False) as c:
            return artifact_from_row(self._one(c, t.lineage_artifacts, artifact_id, "artifact"))

    def get_execution(self, execution_id: int, *, conn: Connection | None = None) -> Execution:
        with self._tx(conn, write=False) as c:
            return execution_from_row(self._one(c, t.lineage_executions, execution_id, "execution"))

    def get_context(self, context_id: int, *, conn: Connection | None = None) -> Context:
        with self._tx(conn, write=False) as c:
            return context_from_row(self._one(c, t.lineage_contexts, context_id, "context"))

    def find_context(self, type: str, name: str, *, namespace: str = "default",
                     conn: Connection | None = None) -> Context | None:
        """The context of this type and name in ``namespace``, or None."""
        cols = t.lineage_contexts.c
        with self._tx(conn, write=False) as c:
            row = c.execute(select(t.lineage_contexts).where(
                cols.type == type, cols.namespace == namespace, cols.name == name)).first()
        return None if row is None else context_from_row(row)

    # -- contexts -------------------------------------------------------------

    def put_context(self, type: str, name: str, *, namespace: str = "default",
                    properties: Mapping[str, Any] | None = None, parent_id: int | None = None,
                    conn: Connection | None = None) -> Context:
        """Get or create the context ``(type, namespace, name)``; given ``properties``
        are merged into an existing one's."""
        check_text(type, "type", 255)
        check_text(name, "name", 255)
        check_namespace(namespace)
        props = check_json(properties, "properties")
        cols = t.lineage_contexts.c
        stamp = now_ms()
        with self._tx(conn, write=True) as c:
            if parent_id is not None:
                self._one(c, t.lineage_contexts, parent_id, "parent context")
            where = (cols.type == type, cols.namespace == namespace, cols.name == name)
            row = c.execute(select(t.lineage_contexts).where(*where)).first()
            if row is None:
                try:
                    # A savepoint: a concurrent creator of the same name (PostgreSQL)
                    # makes this insert fail without spoiling the caller's transaction.
                    with c.begin_nested():
                        c.execute(insert(t.lineage_contexts).values(
                            namespace=namespace, type=type, name=name, parent_id=parent_id,
                            properties=props, create_ms=stamp, update_ms=stamp))
                except IntegrityError:
                    pass
                return context_from_row(c.execute(select(t.lineage_contexts).where(*where)).one())
            merged = {**row.properties, **props}
            changes: dict[str, Any] = {}
            if merged != row.properties:
                changes["properties"] = merged
            if parent_id is not None and parent_id != row.parent_id:
                changes["parent_id"] = parent_id
            if changes:
                c.execute(update(t.lineage_contexts).where(cols.id == row.id)
                          .values(update_ms=stamp, **changes))
            return context_from_row(c.execute(select(t.lineage_contexts)
                                      .where(cols.id == row.id)).one())

    def list_contexts(self, *, type: str | None = None, namespace: str | None = None,
                      name: str | None = None, parent_id: int | None = None,
                      limit: int = 100, after: int = 0,
                      conn: Connection | None = None) -> list[Context]:
        """Contexts ordered by id, those after id ``after`` (a page cursor)."""
        cols = t.lineage_contexts.c
        conds = [cols.id > after, *_equal(cols, type=type, name=name, namespace=namespace,
                                          parent_id=parent_id)]
        with self._tx(conn, write=False) as c:
            rows = c.execute(select(t.lineage_contexts).where(*conds).order_by(cols.id)
                             .limit(check_page(limit))).all()
        return [context_from_row(r) for r in rows]

    # -- artifacts ------------------------------------------------------------

    def _insert_artifacts(self, c: Connection, new: Sequence[NewArtifact], namespace: str,
                          stamp: int) -> list[int]:
        """Insert artifacts in one statement; their ids in the order given."""
        rows = []
        for artifact in new:
            check_text(artifact.type, "artifact.type", 255)
            check_text(artifact.uri, "artifact.uri", 2048, empty=True)
            check_text(artifact.name, "artifact.name", 255, empty=True)
            check_choice(artifact.state, ARTIFACT_STATES, "artifact.state")
            rows.append({"namespace": namespace, "type": artifact.type, "uri": artifact.uri,
                         "name": artifact.name, "state": artifact.state,
                         "custom_properties": check_json(artifact.custom_properties,
                                                         "artifact.customProperties"),
                         "create_ms": stamp, "update_ms": stamp})
        if not rows:
            return []
        result = c.execute(insert(t.lineage_artifacts).returning(
            t.lineage_artifacts.c.id, sort_by_parameter_order=True), rows)
        return [int(i) for i in result.scalars()]

    def put_artifact(self, artifact: NewArtifact, *, namespace: str = "default",
                     contexts: Sequence[int] = (), conn: Connection | None = None) -> Artifact:
        """Create an artifact (attributed to ``contexts``)."""
        check_namespace(namespace)
        stamp = now_ms()
        with self._tx(conn, write=True) as c:
            new_id = self._insert_artifacts(c, [artifact], namespace, stamp)[0]
            self._link(c, None, [], namespace, contexts, stamp, extra_artifacts=[new_id])
            return artifact_from_row(self._one(c, t.lineage_artifacts, new_id, "artifact"))

    def update_artifact(self, artifact_id: int, *, state: str | None = None,
                        uri: str | None = None,
                        custom_properties: Mapping[str, Any] | None = None,
                        conn: Connection | None = None) -> Artifact:
        """Change state or URI; ``custom_properties`` are merged into the existing ones."""
        with self._tx(conn, write=True) as c:
            row = self._one(c, t.lineage_artifacts, artifact_id, "artifact")
            changes: dict[str, Any] = {}
            if state is not None:
                changes["state"] = check_choice(state, ARTIFACT_STATES, "state")
            if uri is not None:
                changes["uri"] = check_text(uri, "uri", 2048, empty=True)
            if custom_properties is not None:
                changes["custom_properties"] = {
                    **row.custom_properties, **check_json(custom_properties,
                                                           "customProperties")}
            if changes:
                c.execute(update(t.lineage_artifacts).where(t.lineage_artifacts.c.id == row.id)
                          .values(update_ms=now_ms(), **changes))
            return artifact_from_row(self._one(c, t.lineage_artifacts, artifact_id, "artifact"))

    def list_artifacts(self, *, context_id: int | None = None, type: str | None = None,
                       namespace: str | None = None, uri: str | None = None,
                       limit: int = 100, after: int = 0,
                       conn: Connection | None = None) -> list[Artifact]:
        """Artifacts ordered by id (those after id ``after``), filtered."""
        cols = t.lineage_artifacts.c
        stmt = select(t.lineage_artifacts).where(cols.id > after)
        if context_id is not None:
            stmt = stmt.join(t.lineage_attributions,
                             t.lineage_attributions.c.artifact_id == cols.id).where(
                t.lineage_attributions.c.context_id == context_id)
        stmt = stmt.where(*_equal(cols, type=type, namespace=namespace, uri=uri))
        with self._tx(conn, write=False) as c:
            rows = c.execute(stmt.order_by(cols.id).limit(check_page(limit))).all()
        return [artifact_from_row(r) for r in rows]

    # -- executions -----------------------------------------------------------

    def record_execution(self, type: str, *, name: str = "", namespace: str = "default",
                         state: str = "COMPLETE",
                         custom_properties: Mapping[str, Any] | None = None,
                         cache_key: str | None = None, contexts: Sequence[int] = (),
                         inputs: Slots | None = None, outputs: Slots | None = None,
                         input_parameters: Mapping[str, Any] | None = None,
                         output_parameters: Mapping[str, Any] | None = None,
                         conn: Connection | None = None) -> RecordedExecution:
        """Create an execution with its input and output events in one transaction.

        ``inputs``/``outputs`` map a slot name to artifact ids or ``NewArtifact``s
        (created here). The execution and every artifact named are tied to
        ``contexts``. Parameters go to ``custom_properties['inputs'|'outputs']``.
        """
        check_text(type, "type", 255)
        check_text(name, "name", 255, empty=True)
        check_namespace(namespace)
        check_choice(state, EXECUTION_STATES, "state")
        if cache_key is not None:
            check_text(cache_key, "cacheKey", 255)
        props = check_json(custom_properties, "customProperties")
        if input_parameters is not None:
            props["inputs"] = check_json(input_parameters, "inputParameters")
        if output_parameters is not None:
            props["outputs"] = check_json(output_parameters, "outputParameters")
        in_refs = slot_refs(inputs or {}, "inputs")
        out_refs = slot_refs(outputs or {}, "outputs")
        stamp = now_ms()
        with self._tx(conn, write=True) as c:
            result = c.execute(_statement(
                "insert-returning-id", t.lineage_executions,
                lambda: insert(t.lineage_executions).returning(t.lineage_executions.c.id)), {
                "namespace": namespace, "type": type, "name": name, "state": state,
                "custom_properties": props, "cache_key": cache_key, "create_ms": stamp,
                "update_ms": stamp})
            execution_id = int(result.scalar_one())
            refs = _event_refs(in_refs, out_refs)
            self._link(c, execution_id, refs, namespace, contexts, stamp, fresh=True)
            return self._recorded(c, execution_id)

    def update_execution(self, execution_id: int, *, state: str | None = None,
                         custom_properties: Mapping[str, Any] | None = None,
                         cache_key: str | None = None, contexts: Sequence[int] = (),
                         inputs: Slots | None = None, outputs: Slots | None = None,
                         output_parameters: Mapping[str, Any] | None = None,
                         conn: Connection | None = None) -> RecordedExecution:
        """Move an execution on (say RUNNING -> COMPLETE with its outputs) in one
        transaction; ``custom_properties`` and ``output_parameters`` are merged."""
        if state is not None:
            check_choice(state, EXECUTION_STATES, "state")
        if cache_key is not None:
            check_text(cache_key, "cacheKey", 255)
        extra = check_json(custom_properties, "customProperties")
        outs = check_json(output_parameters, "outputParameters")
        in_refs = slot_refs(inputs or {}, "inputs")
        out_refs = slot_refs(outputs or {}, "outputs")
        stamp = now_ms()
        with self._tx(conn, write=True) as c:
            row = self._one(c, t.lineage_executions, execution_id, "execution")
            props = {**row.custom_properties, **extra}
            if outs:
                props["outputs"] = {**(props.get("outputs") or {}), **outs}
            changes: dict[str, Any] = {"update_ms": stamp, "custom_properties": props}
            if state is not None:
                changes["state"] = state
            if cache_key is not None:
                changes["cache_key"] = cache_key
            c.execute(update(t.lineage_executions)
                      .where(t.lineage_executions.c.id == execution_id).values(**changes))
            every_context = [*contexts, *self._contexts_of(c, execution_id)]
            refs = _event_refs(in_refs, out_refs)
            self._link(c, execution_id, refs, row.namespace, every_context, stamp, fresh=False)
            return self._recorded(c, execution_id)

    def get_recorded_execution(self, execution_id: int, *,
                               conn: Connection | None = None) -> RecordedExecution:
        """An execution with its input and output artifacts by slot."""
        with self._tx(conn, write=False) as c:
            return self._recorded(c, execution_id)

    def list_executions(self, *, context_id: int | None = None, type: str | None = None,
                        namespace: str | None = None, state: str | None = None,
                        cache_key: str | None = None, limit: int = 100, after: int = 0,
                        conn: Connection | None = None) -> list[Execution]:
        """Executions ordered by id (those after id ``after``), filtered."""
        cols = t.lineage_executions.c
        stmt = select(t.lineage_executions).where(cols.id > after)
        if context_id is not None:
            stmt = stmt.join(t.lineage_associations,
                             t.lineage_associations.c.execution_id == cols.id).where(
                t.lineage_associations.c.context_id == context_id)
        if state is not None:
            state = check_choice(state, EXECUTION_STATES, "state")
        stmt = stmt.where(*_equal(cols, type=type, namespace=namespace, state=state,
                                  cache_key=cache_key))
        with self._tx(conn, write=False) as c:
            rows = c.execute(stmt.order_by(cols.id).limit(check_page(limit))).all()
        return [execution_from_row(r) for r in rows]

    def find_cached_execution(self, cache_key: str, *, namespace: str | None = None,
                              conn: Connection | None = None) -> CachedExecution | None:
        """The latest ``COMPLETE`` execution recorded with ``cache_key`` (in
        ``namespace`` when given), its output artifacts and parameters; or None."""
        cols = t.lineage_executions.c
        stmt = select(t.lineage_executions).where(cols.cache_key == cache_key,
                                                  cols.state == "COMPLETE")
        if namespace is not None:
            stmt = stmt.where(cols.namespace == namespace)
        with self._tx(conn, write=False) as c:
            row = c.execute(stmt.order_by(cols.create_ms.desc(), cols.id.desc())
                            .limit(1)).first()
            if row is None:
                return None
            recorded = self._recorded(c, row.id)
        return CachedExecution(execution=recorded.execution, output_artifacts=recorded.outputs,
                               output_parameters=recorded.execution.output_parameters)

    # -- events and graph queries ---------------------------------------------

    def events(self, *, execution_id: int | None = None, artifact_id: int | None = None,
               conn: Connection | None = None) -> list[Event]:
        """Events of an execution and/or an artifact, in the order they were recorded."""
        cols = t.lineage_events.c
        stmt = select(t.lineage_events)
        if execution_id is not None:
            stmt = stmt.where(cols.execution_id == execution_id)
        if artifact_id is not None:
            stmt = stmt.where(cols.artifact_id == artifact_id)
        with self._tx(conn, write=False) as c:
            return [event_from_row(r) for r in c.execute(stmt.order_by(cols.id)).all()]

    def upstream(self, artifact_id: int, depth: int = DEFAULT_DEPTH, *,
                 conn: Connection | None = None) -> LineageGraph:
        """What ``artifact_id`` came from: the executions that output it, their
        inputs, and so on, ``depth`` executions back. The start is included."""
        return self._walk(artifact_id, None, "up", depth, conn)

    def downstream(self, artifact_id: int, depth: int = DEFAULT_DEPTH, *,
                   conn: Connection | None = None) -> LineageGraph:
        """What was made from ``artifact_id``, ``depth`` executions onward."""
        return self._walk(artifact_id, None, "down", depth, conn)

    def execution_upstream(self, execution_id: int, depth: int = DEFAULT_DEPTH, *,
                           conn: Connection | None = None) -> LineageGraph:
        """An execution's inputs and where they came from (the execution is level 1)."""
        return self._walk(None, execution_id, "up", depth, conn)

    def execution_downstream(self, execution_id: int, depth: int = DEFAULT_DEPTH, *,
                             conn: Connection | None = None) -> LineageGraph:
        """An execution's outputs and what was made from them."""
        return self._walk(None, execution_id, "down", depth, conn)

    def _walk(self, artifact_id: int | None, execution_id: int | None,
              direction: Literal["up", "down"], depth: int,
              conn: Connection | None) -> LineageGraph:
        check_depth(depth)
        ev = t.lineage_events.c
        # Going up, an artifact leads to the executions that OUTPUT it, and an
        # execution to its INPUTs; going down, the other way round.
        to_exec, to_art = ("OUTPUT", "INPUT") if direction == "up" else ("INPUT", "OUTPUT")
        artifacts: set[int] = set()
        executions: set[int] = set()
        events: dict[int, Event] = {}
        with self._tx(conn, write=False) as c:
            frontier_execs: set[int] = set()
            if artifact_id is not None:
                self._one(c, t.lineage_artifacts, artifact_id, "artifact")
                artifacts.add(artifact_id)
                frontier_arts = {artifact_id}
            else:
                assert execution_id is not None
                self._one(c, t.lineage_executions, execution_id, "execution")
                frontier_arts = set()
                frontier_execs = {execution_id}
            for _level in range(depth):
                if frontier_arts:
                    rows = c.execute(select(t.lineage_events).where(
                        ev.artifact_id.in_(sorted(frontier_arts)), ev.type == to_exec)).all()
                    for row in rows:
                        events[row.id] = event_from_row(row)
                    frontier_execs |= {r.execution_id for r in rows} - executions
                if not frontier_execs:
                    break
                executions |= frontier_execs
                rows = c.execute(select(t.lineage_events).where(
                    ev.execution_id.in_(sorted(frontier_execs)), ev.type == to_art)).all()
                for row in rows:
                    events[row.id] = event_from_row(row)
                frontier_arts = {r.artifact_id for r in rows} - artifacts
                artifacts |= frontier_arts
                frontier_execs = set()
            art_rows = c.execute(select(t.lineage_artifacts).where(
                t.lineage_artifacts.c.id.in_(sorted(artifacts)))
                .order_by(t.lineage_artifacts.c.id)).all() if artifacts else []
            exec_rows = c.execute(select(t.lineage_executions).where(
                t.lineage_executions.c.id.in_(sorted(executions)))
                .order_by(t.lineage_executions.c.id)).all() if executions else []
        return LineageGraph(artifacts=[artifact_from_row(r) for r in art_rows],
                            executions=[execution_from_row(r) for r in exec_rows],
                            events=[events[k] for k in sorted(events)])

    # -- helpers --------------------------------------------------------------

    def _contexts_of(self, c: Connection, execution_id: int) -> list[int]:
        cols = t.lineage_associations.c
        return list(c.execute(select(cols.context_id)
                              .where(cols.execution_id == execution_id)).scalars())

    @staticmethod
    def _require(c: Connection, table: Table, ids: Sequence[int], what: str) -> None:
        """``NotFoundError`` naming the first of ``ids`` that does not exist."""
        for id_ in ids:
            if isinstance(id_, bool) or not isinstance(id_, int):
                raise InvalidError(f"invalid {what} id", [FieldError(
                    what, f"{id_!r} is not an integer id")])
        if not ids:
            return
        stmt = _statement("require", table, lambda: select(table.c.id).where(
            table.c.id.in_(bindparam("p_ids", expanding=True))))
        found = set(c.execute(stmt, {"p_ids": list(ids)}).scalars())
        for id_ in ids:
            if id_ not in found:
                raise NotFoundError(f"{what} {id_} not found")

    def _link(self, c: Connection, execution_id: int | None,
              refs: list[tuple[EventType, str, ArtifactRef]], namespace: str,
              contexts: Sequence[int], stamp: int, *, fresh: bool = False,
              extra_artifacts: Sequence[int] = ()) -> None:
        """Create the new artifacts among ``refs``, record their events with the
        execution, and tie the execution and every artifact to ``contexts``. A few
        statements whatever the numbers (this is on every pipeline step's path).
        ``fresh``: the execution was created in this transaction, so nothing of it
        can exist yet and no look-up is needed."""
        contexts = list(dict.fromkeys(contexts))
        self._require(c, t.lineage_contexts, contexts, "context")
        given = [ref for _, _, ref in refs if not isinstance(ref, NewArtifact)]
        self._require(c, t.lineage_artifacts, list(dict.fromkeys(given)), "artifact")
        created = iter(self._insert_artifacts(
            c, [ref for _, _, ref in refs if isinstance(ref, NewArtifact)], namespace, stamp))
        ids = [next(created) if isinstance(ref, NewArtifact) else ref for _, _, ref in refs]
        if execution_id is not None and contexts:
            assoc = t.lineage_associations.c
            have = set() if fresh else set(c.execute(select(assoc.context_id).where(
                assoc.execution_id == execution_id, assoc.context_id.in_(contexts))).scalars())
            _insert_links(c, t.lineage_associations, [
                {"context_id": x, "execution_id": execution_id} for x in contexts
                if x not in have])
        artifacts = list(dict.fromkeys([*ids, *extra_artifacts]))
        if contexts and artifacts:
            attr = t.lineage_attributions.c
            pairs = {(r[0], r[1]) for r in c.execute(select(attr.context_id, attr.artifact_id)
                                                      .where(attr.context_id.in_(contexts),
                                                             attr.artifact_id.in_(artifacts)))}
            _insert_links(c, t.lineage_attributions, [
                {"context_id": x, "artifact_id": a} for x in contexts for a in artifacts
                if (x, a) not in pairs])
        if execution_id is None or not refs:
            return
        wanted = list(dict.fromkeys(
            (kind, slot, artifact_id) for (kind, slot, _), artifact_id in zip(
                refs, ids, strict=True)))
        if not fresh:
            # Recording the same event twice (a retried write) is not an error.
            ev = t.lineage_events.c
            have_events = {(r[0], r[1], r[2]) for r in c.execute(
                select(ev.type, ev.path, ev.artifact_id).where(ev.execution_id == execution_id))}
            wanted = [w for w in wanted if w not in have_events]
        _insert_links(c, t.lineage_events, [
            {"artifact_id": artifact_id, "execution_id": execution_id, "type": kind,
             "path": slot, "time_ms": stamp} for kind, slot, artifact_id in wanted])

    def _recorded(self, c: Connection, execution_id: int) -> RecordedExecution:
        execution = execution_from_row(
            self._one(c, t.lineage_executions, execution_id, "execution"))
        ev = t.lineage_events.c
        stmt = _statement("events-of", t.lineage_events, lambda: select(
            ev.type.label("event_type"), ev.path.label("event_path"), t.lineage_artifacts)
            .join(t.lineage_artifacts, t.lineage_artifacts.c.id == ev.artifact_id)
            .where(ev.execution_id == bindparam("p_id")).order_by(ev.id))
        rows = c.execute(stmt, {"p_id": execution_id}).all()
        inputs: dict[str, list[Artifact]] = {}
        outputs: dict[str, list[Artifact]] = {}
        for row in rows:
            target = inputs if row.event_type == "INPUT" else outputs
            target.setdefault(row.event_path, []).append(artifact_from_row(row))
        return RecordedExecution(execution=execution, inputs=inputs, outputs=outputs)
