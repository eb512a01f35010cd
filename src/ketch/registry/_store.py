"""The registry's store: entities in the ketch database, one transaction per call.

Rows live in ``registry_entities`` (see ``_tables``); ``body`` is the entity as
the API returns it, minus the columns (id, timestamps) added on the way out.
Lists page with a keyset cursor on (order column, id), so tokens are stable for
the same data — the upstream client's pager relies on that.
"""

from __future__ import annotations

import base64
import builtins
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ketch.core.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldError,
    InvalidError,
    NotFoundError,
)
from ketch.core.kinds import validation_fields
from ketch.core.store import ResourceStore
from ketch.registry._entities import ENTITIES, EntityDef, artifact_entity
from ketch.registry._filter import FilterError, compile_filter, parse_filter
from ketch.registry._tables import entities as t

__all__ = ["Page", "PageRequest", "RegistryStore"]

OrderBy = Literal["ID", "CREATE_TIME", "LAST_UPDATE_TIME"]
_ORDER_COLUMNS = {"ID": t.c.id, "CREATE_TIME": t.c.create_ms, "LAST_UPDATE_TIME": t.c.update_ms}
# Fields a PATCH ignores (upstream: immutable, silently dropped).
_IMMUTABLE = ("id", "name", "createTimeSinceEpoch", "lastUpdateTimeSinceEpoch",
              "registeredModelId", "servingEnvironmentId", "experimentId")
_COLUMN_FIELDS = ("id", "name", "externalId", "state", "createTimeSinceEpoch",
                  "lastUpdateTimeSinceEpoch")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class PageRequest:
    page_size: int | None = None
    order_by: OrderBy = "ID"
    descending: bool = False
    token: str | None = None
    filter_query: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str
    page_size: int


def _validate(model: Any, payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidError(f"{what}: the body must be a JSON object")
    try:
        obj = model.model_validate(payload)
    except ValidationError as err:
        raise InvalidError(f"invalid {what}", validation_fields(err)) from None
    return dict(obj.model_dump(exclude_none=True, by_alias=True))


def _to_api(row: Any) -> dict[str, Any]:
    body = dict(row.body)
    body["id"] = str(row.id)
    body["name"] = row.name
    body["createTimeSinceEpoch"] = str(row.create_ms)
    body["lastUpdateTimeSinceEpoch"] = str(row.update_ms)
    body.setdefault("customProperties", {})
    if row.state is not None:
        body["state"] = row.state
    if row.external_id is not None:
        body["externalId"] = row.external_id
    return body


def parse_id(value: str | int, what: str = "id") -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        raise InvalidError(f"invalid {what}", [FieldError(what, f"{value!r} is not a positive "
                                                                "32-bit integer id")])
    return int(text)


class RegistryStore:
    """Model registry entities, namespaced, in the ketch database."""

    def __init__(self, store: ResourceStore) -> None:
        self._store = store

    # -- reads ----------------------------------------------------------------

    def _row(self, conn: Connection, namespace: str, types: Sequence[str], id_: int) -> Any:
        row = conn.execute(select(t).where(t.c.namespace == namespace, t.c.id == id_,
                                           t.c.entity_type.in_(types))).first()
        if row is None:
            label = types[0] if len(types) == 1 else "artifact"
            raise NotFoundError(f"{_words(label)} with id {id_} not found")
        return row

    def get(self, namespace: str, types: Sequence[str], id_: str | int) -> dict[str, Any]:
        with self._store.transaction(write=False) as conn:
            return _to_api(self._row(conn, namespace, types, parse_id(id_)))

    def find(self, namespace: str, types: Sequence[str], *, name: str | None = None,
             external_id: str | None = None, parent_id: str | None = None) -> dict[str, Any]:
        """One entity by externalId, or by name (within ``parent_id`` for children)."""
        conds = [t.c.namespace == namespace, t.c.entity_type.in_(types)]
        if external_id:
            conds.append(t.c.external_id == external_id)
        elif name is not None:
            conds.append(t.c.name == name)
            if parent_id:
                conds.append(t.c.parent_id == parse_id(parent_id, "parentResourceId"))
        else:
            raise InvalidError("invalid parameters call, supply either name (with "
                               "parentResourceId for nested entities) or externalId")
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(select(t).where(*conds).limit(2)).all()
        if len(rows) != 1:
            what = "no" if not rows else "multiple"
            raise NotFoundError(f"{what} {_words(types[0])}s found for name={name or ''}, "
                                f"externalId={external_id or ''}")
        return _to_api(rows[0])

    def list(self, namespace: str, types: Sequence[str], page: PageRequest, *,
             parent_id: int | None = None, extra: Iterable[Any] = ()) -> Page:
        order_col = _ORDER_COLUMNS[page.order_by]
        conds = [t.c.namespace == namespace, t.c.entity_type.in_(types), *extra]
        if parent_id is not None:
            conds.append(t.c.parent_id == parent_id)
        if page.filter_query:
            try:
                expr = parse_filter(page.filter_query)
                if expr is not None:
                    conds.append(compile_filter(expr, types[0], t))
            except FilterError as err:
                raise InvalidError(f"invalid filterQuery: {err}", [
                    FieldError("filterQuery", str(err))]) from None
        if page.token:
            last_id, last_value = _decode(page.token)
            if page.descending:
                conds.append(or_(order_col < last_value,
                                 and_(order_col == last_value, t.c.id < last_id)))
            else:
                conds.append(or_(order_col > last_value,
                                 and_(order_col == last_value, t.c.id > last_id)))
        order = ((order_col.desc(), t.c.id.desc()) if page.descending
                 else (order_col.asc(), t.c.id.asc()))
        stmt = select(t).where(*conds).order_by(*order)
        if page.page_size:
            stmt = stmt.limit(page.page_size + 1)
        with self._store.transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
        token = ""
        if page.page_size and len(rows) > page.page_size:
            rows = rows[:page.page_size]
            last = rows[-1]
            token = _encode(last.id, getattr(last, order_col.name))
        return Page([_to_api(r) for r in rows], token, page.page_size or 0)

    # -- writes ---------------------------------------------------------------

    def create(self, namespace: str, entity_type: str, payload: Any, *,
               parent_id: str | int | None = None) -> dict[str, Any]:
        """Validate and insert; ``parent_id`` comes from a nested route's path."""
        spec = ENTITIES[entity_type]
        body = _validate(spec.create, payload, _words(entity_type))
        if spec.parent_field and parent_id is None:
            parent_id = body[spec.parent_field]
        if spec.parent_field and parent_id is not None:
            body[spec.parent_field] = str(parent_id)
        name = body.pop("name", None) or (str(uuid.uuid4()) if spec.artifact_type or
                                          spec.name in ("InferenceService", "ServeModel",
                                                        "ExperimentRun") else None)
        if name is None:
            raise InvalidError(f"invalid {_words(entity_type)}",
                               [FieldError("name", "Field required")])
        stamp = _now_ms()
        with self._store.transaction(write=True) as conn:
            parent = 0
            if parent_id is not None:
                parent_row = self._row(conn, namespace, spec.parent_type, parse_id(parent_id))
                parent = parent_row.id
            self._check_links(conn, namespace, entity_type, body)
            scope = spec.scope if parent or not spec.artifact_type else (
                f"Artifact:{uuid.uuid4().hex[:20]}")
            external_id = body.pop("externalId", None)
            state = body.pop("state", spec.default_state)
            self._check_unique(conn, namespace, spec, scope, parent, name, external_id)
            try:
                new_id = conn.execute(insert(t).values(
                    namespace=namespace, entity_type=entity_type, scope=scope,
                    parent_id=parent, name=name, external_id=external_id, state=state,
                    create_ms=stamp, update_ms=stamp, body=body).returning(t.c.id)).scalar_one()
            except IntegrityError:
                raise AlreadyExistsError(f"{_words(entity_type)} with name {name} already "
                                         "exists") from None
            return _to_api(self._row(conn, namespace, [entity_type], new_id))

    def patch(self, namespace: str, types: Sequence[str], id_: str | int,
              payload: Any) -> dict[str, Any]:
        """Upstream PATCH: absent fields keep their values; ``customProperties``, when
        present, replaces the whole map. Immutable fields in the body are ignored."""
        if not isinstance(payload, dict):
            raise InvalidError("the body must be a JSON object")
        payload = {k: v for k, v in payload.items() if k not in _IMMUTABLE}
        with self._store.transaction(write=True) as conn:
            return self._patch(conn, namespace, types, parse_id(id_), payload)

    def _patch(self, conn: Connection, namespace: str, types: Sequence[str], id_: int,
               payload: dict[str, Any], new_parent: int | None = None) -> dict[str, Any]:
        row = self._row(conn, namespace, types, id_)
        spec = ENTITIES[row.entity_type]
        if spec.artifact_type and payload.get("artifactType") not in (None,
                                                                      spec.artifact_type):
            raise InvalidError("artifactType cannot change", [FieldError(
                "artifactType", f"is {spec.artifact_type!r}")])
        changes = _validate(spec.update, payload, _words(row.entity_type))
        self._check_links(conn, namespace, row.entity_type, changes)
        body = dict(row.body)
        external_id = changes.pop("externalId", row.external_id)
        state = changes.pop("state", row.state)
        body.update(changes)
        scope, parent = row.scope, row.parent_id
        if new_parent is not None and (new_parent, "Artifact") != (parent, scope):
            # An artifact linked to a (new) parent: its name must be free there.
            scope, parent = "Artifact", new_parent
            self._check_unique(conn, namespace, spec, scope, parent, row.name, None)
        if external_id != row.external_id:
            self._check_unique(conn, namespace, spec, scope, parent, None, external_id)
        conn.execute(update(t).where(t.c.id == row.id).values(
            body=body, external_id=external_id, state=state, scope=scope, parent_id=parent,
            update_ms=max(_now_ms(), row.update_ms + 1)))
        return _to_api(self._row(conn, namespace, [row.entity_type], row.id))

    def upsert_artifact(self, namespace: str, parent_id: str, payload: Any) -> tuple[
            dict[str, Any], bool]:
        """``POST /model_versions/{id}/artifacts``: link an existing artifact (body has
        ``id``) to the version and update it, or create a new one. True if created."""
        if not isinstance(payload, dict):
            raise InvalidError("the body must be a JSON object")
        entity_type = artifact_entity(payload.get("artifactType"))
        if payload.get("id"):
            artifact_id = parse_id(payload["id"])
            parent = parse_id(parent_id)
            changes = {k: v for k, v in payload.items() if k not in _IMMUTABLE}
            with self._store.transaction(write=True) as conn:
                self._row(conn, namespace, ENTITIES[entity_type].parent_type, parent)
                return self._patch(conn, namespace, [entity_type], artifact_id, changes,
                                   new_parent=parent), False
        return self.create(namespace, entity_type, payload, parent_id=parent_id), True

    def delete(self, namespace: str, types: Sequence[str], id_: str | int) -> None:
        """Delete an entity and everything under it (versions, artifacts), unless a
        deployed InferenceService still serves it."""
        with self._store.transaction(write=True) as conn:
            row = self._row(conn, namespace, types, parse_id(id_))
            doomed = self._subtree(conn, row.id)
            ids = [str(i) for i in doomed]
            users = conn.execute(select(t.c.id, t.c.name, t.c.body).where(
                t.c.namespace == namespace, t.c.entity_type == "InferenceService")).all()
            for user in users:
                body = user.body
                serves = body.get("modelVersionId") in ids or (
                    row.entity_type == "RegisteredModel"
                    and body.get("registeredModelId") == str(row.id))
                if serves and body.get("desiredState", "DEPLOYED") == "DEPLOYED":
                    raise ConflictError(
                        f"{_words(row.entity_type)} {row.name!r} is still served by inference "
                        f"service {user.name!r} (id {user.id}); undeploy it first")
            conn.execute(delete(t).where(t.c.id.in_(doomed)))

    # -- helpers --------------------------------------------------------------

    def _subtree(self, conn: Connection, root: int) -> builtins.list[int]:
        found, frontier = [root], [root]
        while frontier:
            frontier = list(conn.execute(select(t.c.id).where(
                t.c.parent_id.in_(frontier))).scalars())
            found += frontier
        return found

    def _check_unique(self, conn: Connection, namespace: str, spec: EntityDef, scope: str,
                      parent: int, name: str | None, external_id: str | None) -> None:
        if name is not None and conn.execute(select(func.count()).where(
                t.c.namespace == namespace, t.c.scope == scope, t.c.parent_id == parent,
                t.c.name == name)).scalar_one():
            where = " in this parent" if parent else ""
            raise AlreadyExistsError(f"{_words(spec.name)} with name {name} already "
                                     f"exists{where}")
        # Unparented artifacts each have a scope of their own ("Artifact:<hex>"), so
        # externalIds are checked against the whole type family (spec.scope).
        if external_id is not None and conn.execute(select(func.count()).where(
                t.c.namespace == namespace,
                or_(t.c.scope == spec.scope, t.c.scope.startswith(f"{spec.scope}:")),
                t.c.external_id == external_id)).scalar_one():
            raise AlreadyExistsError(f"{_words(spec.name)} with externalId {external_id} "
                                     "already exists")

    def _check_links(self, conn: Connection, namespace: str, entity_type: str,
                     body: dict[str, Any]) -> None:
        """Ids an entity points at (besides its parent) must exist, with the right type."""
        links = {"registeredModelId": ("RegisteredModel",),
                 "modelVersionId": ("ModelVersion",)}
        if entity_type in ("ModelVersion",):
            return
        for field, types in links.items():
            if body.get(field):
                self._row(conn, namespace, types, parse_id(body[field], field))


def _words(entity_type: str) -> str:
    """``ModelVersion`` -> ``model version`` (as upstream's messages say it)."""
    out = "".join(f" {c.lower()}" if c.isupper() else c for c in entity_type).strip()
    return out.replace("data set", "dataset")


def _encode(last_id: int, value: Any) -> str:
    return base64.urlsafe_b64encode(f"{last_id}:{value}".encode()).decode()


def _decode(token: str) -> tuple[int, int]:
    try:
        last_id, value = base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)
        decoded = int(last_id), int(value)
        if not (0 <= decoded[0] < 2**31 and 0 <= decoded[1] < 2**63):
            raise ValueError("out of range")
        return decoded
    except ValueError:
        raise InvalidError("invalid nextPageToken", [FieldError(
            "nextPageToken", "not a token this server issued")]) from None
