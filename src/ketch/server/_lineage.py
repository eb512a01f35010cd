"""Read-only lineage routes at ``/api/ketch/lineage/...``.

Lists page by id: ``limit`` (1 to 1000, default 100) and ``continue`` (the
``continue`` value of the previous page); a page shorter than ``limit`` is the
last. ``context`` filters artifacts and executions by a context id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ketch.core.errors import FieldError, InvalidError
from ketch.core.lineage import DEFAULT_DEPTH, MAX_DEPTH, MAX_PAGE, LineageStore
from ketch.core.runtime import Runtime

__all__ = ["lineage_router"]

PREFIX = "/api/ketch/lineage"

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")]
Continue = Annotated[str | None, Query(alias="continue",
                                       description="The previous page's continue value")]
Depth = Annotated[int, Query(ge=1, le=MAX_DEPTH, description="How many executions to follow")]
Namespace = Annotated[str | None, Query(max_length=63)]
# Ids are positive 32-bit integers (the tables' id columns).
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
ContextId = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A context id")]


def _after(token: str | None) -> int:
    if not token:
        return 0
    if not (token.isascii() and token.isdigit()) or len(token) > 12:
        raise InvalidError("invalid continue token", [FieldError(
            "continue", "not a value this server returned")])
    return int(token)


def _page(items: list[Any], limit: int) -> dict[str, Any]:
    body: dict[str, Any] = {"items": [i.to_api() for i in items]}
    if len(items) == limit:
        body["continue"] = str(items[-1].id)
    return body


def _recorded(lineage: LineageStore, execution_id: int) -> dict[str, Any]:
    recorded = lineage.get_recorded_execution(execution_id)
    body = recorded.execution.to_api()
    body["inputs"] = {slot: [a.to_api() for a in arts] for slot, arts in recorded.inputs.items()}
    body["outputs"] = {slot: [a.to_api() for a in arts]
                       for slot, arts in recorded.outputs.items()}
    return body


def lineage_router(runtime: Runtime) -> APIRouter:
    """Routes over the runtime's lineage tables."""
    lineage = LineageStore(runtime.store)
    router = APIRouter(prefix=PREFIX, tags=["lineage"])

    @router.get("/artifacts", summary="List artifacts")
    def list_artifacts(context: ContextId = None, type: str | None = None,
                       namespace: Namespace = None, uri: str | None = None,
                       limit: Limit = 100, continue_: Continue = None) -> dict[str, Any]:
        items = lineage.list_artifacts(context_id=context, type=type, namespace=namespace,
                                       uri=uri, limit=limit, after=_after(continue_))
        return _page(items, limit)

    @router.get("/artifacts/{artifact_id}", summary="Get an artifact")
    def get_artifact(artifact_id: Id) -> dict[str, Any]:
        return lineage.get_artifact(artifact_id).to_api()

    @router.get("/artifacts/{artifact_id}/upstream",
                summary="What an artifact was made from")
    def artifact_upstream(artifact_id: Id, depth: Depth = DEFAULT_DEPTH) -> dict[str, Any]:
        return lineage.upstream(artifact_id, depth).to_api()

    @router.get("/artifacts/{artifact_id}/downstream",
                summary="What was made from an artifact")
    def artifact_downstream(artifact_id: Id, depth: Depth = DEFAULT_DEPTH) -> dict[str, Any]:
        return lineage.downstream(artifact_id, depth).to_api()

    @router.get("/executions", summary="List executions")
    def list_executions(context: ContextId = None, type: str | None = None,
                        namespace: Namespace = None, state: str | None = None,
                        cache_key: Annotated[str | None, Query(alias="cacheKey")] = None,
                        limit: Limit = 100, continue_: Continue = None) -> dict[str, Any]:
        items = lineage.list_executions(context_id=context, type=type, namespace=namespace,
                                        state=state, cache_key=cache_key, limit=limit,
                                        after=_after(continue_))
        return _page(items, limit)

    @router.get("/executions/{execution_id}",
                summary="Get an execution with its input and output artifacts")
    def get_execution(execution_id: Id) -> dict[str, Any]:
        return _recorded(lineage, execution_id)

    @router.get("/executions/{execution_id}/upstream",
                summary="An execution's inputs and where they came from")
    def execution_upstream(execution_id: Id, depth: Depth = DEFAULT_DEPTH) -> dict[str, Any]:
        return lineage.execution_upstream(execution_id, depth).to_api()

    @router.get("/executions/{execution_id}/downstream",
                summary="An execution's outputs and what was made from them")
    def execution_downstream(execution_id: Id,
                             depth: Depth = DEFAULT_DEPTH) -> dict[str, Any]:
        return lineage.execution_downstream(execution_id, depth).to_api()

    @router.get("/contexts", summary="List contexts")
    def list_contexts(type: str | None = None, namespace: Namespace = None,
                      name: str | None = None, parent: ContextId = None, limit: Limit = 100,
                      continue_: Continue = None) -> dict[str, Any]:
        items = lineage.list_contexts(type=type, namespace=namespace, name=name,
                                      parent_id=parent, limit=limit, after=_after(continue_))
        return _page(items, limit)

    @router.get("/contexts/{context_id}", summary="Get a context")
    def get_context(context_id: Id) -> dict[str, Any]:
        return lineage.get_context(context_id).to_api()

    return router
