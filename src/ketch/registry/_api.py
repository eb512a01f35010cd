"""The Kubeflow Model Registry REST API at ``/api/model_registry/v1`` (what the
PyPI client 0.3.18 calls) and ``/api/model_registry/v1alpha3`` (older clients).

Routes, parameters, status codes and error bodies (``{"code", "message"}``)
follow the upstream server. Beyond upstream: ``DELETE`` on every entity, and a
``namespace`` query parameter (default ``default``) selecting the ketch
namespace, since a Kubeflow registry is one per namespace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Annotated, Any, Union

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ketch.core.codec import decode_json
from ketch.core.errors import FieldError, InvalidError, KetchError, NotFoundError
from ketch.core.resources import validate_name
from ketch.core.runtime import Runtime
from ketch.registry._entities import ARTIFACT_TYPES, ENTITIES, artifact_entity
from ketch.registry._schemas import ARTIFACT_MODELS, ENTITY_MODELS, page_model
from ketch.registry._store import Page, PageRequest, RegistryStore, parse_id
from ketch.registry._tables import entities as table

__all__ = ["PREFIXES", "registry_router"]

PREFIXES = ("/api/model_registry/v1", "/api/model_registry/v1alpha3")
ALL_ARTIFACTS = tuple(ARTIFACT_TYPES.values())
Handler = Callable[[Request], Awaitable[Any]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": HTTPStatus(status).phrase, "message": message},
                        status_code=status)


def _status_of(err: KetchError) -> int:
    if isinstance(err, InvalidError):
        missing = err.fields and all(f.message == "Field required" for f in err.fields)
        return 422 if missing else 400
    return err.http_status


def _namespace(request: Request) -> str:
    namespace = request.query_params.get("namespace") or "default"
    try:
        return validate_name(namespace, "namespace")
    except ValueError as err:
        raise InvalidError(str(err), [FieldError("namespace", str(err))]) from None


async def _body(request: Request) -> Any:
    raw = await request.body()
    if b"\x00" in raw:
        raise InvalidError("the body contains a NUL byte")
    # The API's one decoder of untrusted JSON: nesting past its limit is a 400, not the
    # RecursionError (a 500) the standard library raises on a 100,000-deep list.
    return decode_json(raw or b"null", "body")


def _page_request(request: Request) -> PageRequest:
    q = request.query_params
    size_text = q.get("pageSize") or ""
    if size_text and (not (size_text.isascii() and size_text.isdigit())
                      or int(size_text) > 2**31):
        raise InvalidError("invalid pageSize", [FieldError("pageSize",
                                                           f"{size_text!r} is not a number")])
    order = (q.get("orderBy") or "ID").upper()
    if order not in ("ID", "CREATE_TIME", "LAST_UPDATE_TIME"):
        raise InvalidError("invalid orderBy", [FieldError(
            "orderBy", f"{order!r}: use CREATE_TIME, LAST_UPDATE_TIME or ID")])
    sort = (q.get("sortOrder") or "ASC").upper()
    if sort not in ("ASC", "DESC"):
        raise InvalidError("invalid sortOrder", [FieldError("sortOrder", "use ASC or DESC")])
    return PageRequest(page_size=int(size_text) if size_text else None,
                       order_by=order,  # type: ignore[arg-type]
                       descending=sort == "DESC", token=q.get("nextPageToken") or None,
                       filter_query=q.get("filterQuery") or None)


def _page(page: Page) -> dict[str, Any]:
    return {"items": page.items, "nextPageToken": page.next_token, "pageSize": page.page_size,
            "size": len(page.items)}


def _upstream(handler: Callable[[Request], Awaitable[Any]]) -> Handler:
    """Run a handler, answering errors in the upstream shape."""

    async def run(request: Request) -> Any:
        try:
            return await handler(request)
        except KetchError as err:
            return _error(_status_of(err), err.message)

    return run


def registry_router(runtime: Runtime) -> APIRouter:
    """Every registry route, under both API prefixes."""
    store = RegistryStore(runtime.store)
    router = APIRouter(tags=["model registry"])

    def route(path: str, methods: list[str], handler: Handler, summary: str,
              body: dict[str, Any] | None = None, listing: bool = False,
              query: tuple[str, ...] = (), answers: Answers | None = None) -> None:
        """Register ``handler`` under both prefixes, one route per method so each gets
        its own OpenAPI (the handlers read parameters by hand, as upstream's do);
        ``answers`` documents, per method, the model each status code answers."""
        for method in methods:
            documented = (answers or {}).get(method, {})
            responses: dict[int | str, dict[str, Any]] = {
                code: {"model": model} for code, model in documented.items()}
            params = [_param("namespace", "query", "ketch namespace (default: default)")]
            if "{id}" in path:
                params.append(_param("id", "path", "Entity id", pattern=r"^[1-9][0-9]{0,8}$"))
            if method == "GET" and listing:
                params += _LIST_PARAMS
            params += [_param(q, "query", q) for q in query if method == "GET"]
            extra: dict[str, Any] = {"parameters": params}
            if body is not None and method in ("POST", "PATCH"):
                schema = body["create" if method == "POST" else "update"]
                extra["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": schema}}}
            for prefix in PREFIXES:
                router.add_api_route(prefix + path, _upstream(handler), methods=[method],
                                     summary=summary, openapi_extra=extra,
                                     responses=responses,
                                     include_in_schema=prefix == PREFIXES[0])

    def collection(plural: str, types: tuple[str, ...], create_type: str | None,
                   find: str | None = None) -> None:
        label = create_type or "artifact"

        async def list_or_create(request: Request) -> Any:
            ns = _namespace(request)
            if request.method == "GET":
                extra = _artifact_type_filter(request)
                page = await run_in_threadpool(store.list, ns, types, _page_request(request),
                                               extra=extra)
                return _page(page)
            body = await _body(request)
            entity = create_type or artifact_entity(
                body.get("artifactType") if isinstance(body, dict) else None)
            created = await run_in_threadpool(store.create, ns, entity, body)
            return JSONResponse(created, status_code=201)

        async def one(request: Request) -> Any:
            ns = _namespace(request)
            id_ = request.path_params["id"]
            if request.method == "GET":
                return await run_in_threadpool(store.get, ns, types, id_)
            if request.method == "DELETE":
                await run_in_threadpool(store.delete, ns, types, id_)
                return Response(status_code=204)
            body = await _body(request)
            return await run_in_threadpool(store.patch, ns, types, id_, body)

        schemas = _schemas(create_type)
        item = _answer(create_type)
        route(f"/{plural}", ["GET", "POST"], list_or_create, f"List or create {label}s",
              body=schemas, listing=True,
              query=("artifactType",) if create_type is None else (),
              answers=item and {"GET": {200: _page_of(create_type)}, "POST": {201: item}})
        route(f"/{plural}/{{id}}", ["GET", "PATCH", "DELETE"], one,
              f"Get, update or delete a {label}", body=schemas,
              answers=item and {"GET": {200: item}, "PATCH": {200: item}})
        if find:
            async def find_one(request: Request) -> Any:
                q = request.query_params
                return await run_in_threadpool(
                    store.find, _namespace(request), types, name=q.get("name"),
                    external_id=q.get("externalId"), parent_id=q.get("parentResourceId"))

            route(f"/{find}", ["GET"], find_one, f"Find a {label} by name or externalId",
                  query=("name", "externalId", "parentResourceId"),
                  answers=item and {"GET": {200: item}})

    def nested(parent_plural: str, child: str, types: tuple[str, ...],
               create_type: str | None) -> None:
        async def handler(request: Request) -> Any:
            ns = _namespace(request)
            parent = request.path_params["id"]
            if request.method == "GET":
                q = request.query_params
                extra = list(_artifact_type_filter(request))
                if q.get("name"):
                    extra.append(table.c.name == q["name"])
                elif q.get("externalId"):
                    extra.append(table.c.external_id == q["externalId"])
                page = await run_in_threadpool(store.list, ns, types, _page_request(request),
                                               parent_id=parse_id(parent), extra=extra)
                return _page(page)
            body = await _body(request)
            if create_type is None:
                created, is_new = await run_in_threadpool(store.upsert_artifact, ns, parent,
                                                          body)
                return JSONResponse(created, status_code=201 if is_new else 200)
            made = await run_in_threadpool(store.create, ns, create_type, body,
                                           parent_id=parent)
            return JSONResponse(made, status_code=201)

        item = _answer(create_type)
        added = {200: item, 201: item} if create_type is None else {201: item}
        route(f"/{parent_plural}/{{id}}/{child}", ["GET", "POST"], handler,
              f"List or add {child} of a {parent_plural[:-1].replace('_', ' ')}",
              body=_schemas(create_type), listing=True,
              query=("name", "externalId") + (("artifactType",) if create_type is None else ()),
              answers=item and {"GET": {200: _page_of(create_type)}, "POST": added})

    collection("registered_models", ("RegisteredModel",), "RegisteredModel", "registered_model")
    nested("registered_models", "versions", ("ModelVersion",), "ModelVersion")
    collection("model_versions", ("ModelVersion",), "ModelVersion", "model_version")
    nested("model_versions", "artifacts", ALL_ARTIFACTS, None)
    collection("model_artifacts", ("ModelArtifact",), "ModelArtifact", "model_artifact")
    collection("artifacts", ALL_ARTIFACTS, None, "artifact")
    collection("serving_environments", ("ServingEnvironment",), "ServingEnvironment",
               "serving_environment")
    nested("serving_environments", "inference_services", ("InferenceService",),
           "InferenceService")
    collection("inference_services", ("InferenceService",), "InferenceService",
               "inference_service")
    nested("inference_services", "serves", ("ServeModel",), "ServeModel")
    collection("experiments", ("Experiment",), "Experiment", "experiment")
    nested("experiments", "experiment_runs", ("ExperimentRun",), "ExperimentRun")
    collection("experiment_runs", ("ExperimentRun",), "ExperimentRun", "experiment_run")
    nested("experiment_runs", "artifacts", ALL_ARTIFACTS, None)

    async def served(request: Request) -> Any:
        ns = _namespace(request)
        service = await run_in_threadpool(store.get, ns, ("InferenceService",),
                                          request.path_params["id"])
        if request.url.path.endswith("/model"):
            return await run_in_threadpool(store.get, ns, ("RegisteredModel",),
                                           service["registeredModelId"])
        version = service.get("modelVersionId")
        if version:
            return await run_in_threadpool(store.get, ns, ("ModelVersion",), version)
        page = await run_in_threadpool(
            store.list, ns, ("ModelVersion",),
            PageRequest(page_size=1, order_by="CREATE_TIME", descending=True),
            parent_id=int(service["registeredModelId"]))
        if not page.items:
            raise NotFoundError(f"registered model {service['registeredModelId']} has no "
                                "versions")
        return page.items[0]

    route("/inference_services/{id}/model", ["GET"], served,
          "The registered model an inference service serves",
          answers={"GET": {200: ENTITY_MODELS["RegisteredModel"]}})
    route("/inference_services/{id}/version", ["GET"], served,
          "The model version an inference service serves (latest if unset)",
          answers={"GET": {200: ENTITY_MODELS["ModelVersion"]}})
    return router


# Per method, the model each status code answers (documentation only).
Answers = dict[str, dict[int, Any]]
# Any artifact, told apart by artifactType.
_ANY_ARTIFACT: Any = Annotated[Union[ARTIFACT_MODELS], Field(discriminator="artifactType")]  # noqa: UP007
_PAGES: dict[str | None, Any] = {}


def _answer(entity_type: str | None) -> Any:
    """The documented answer for an entity type (any artifact when None); None when the
    dashboard reads none of that type, which is left undocumented."""
    return _ANY_ARTIFACT if entity_type is None else ENTITY_MODELS.get(entity_type)


def _page_of(entity_type: str | None) -> Any:
    """One list page model per entity type: its name is its OpenAPI schema's."""
    if entity_type not in _PAGES:
        _PAGES[entity_type] = page_model(f"{entity_type or 'Artifact'}List",
                                         _answer(entity_type))
    return _PAGES[entity_type]


def _artifact_type_filter(request: Request) -> list[Any]:
    tag = request.query_params.get("artifactType")
    if not tag:
        return []
    return [table.c.entity_type == artifact_entity(tag, "artifactType")]




def _param(name: str, where: str, description: str, pattern: str | None = None,
           enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": where, "required": where == "path",
            "description": description, "schema": schema}


_LIST_PARAMS = [
    _param("pageSize", "query", "Items per page (all when absent)", pattern=r"^[0-9]+$"),
    _param("orderBy", "query", "Sort field", enum=["CREATE_TIME", "LAST_UPDATE_TIME", "ID"]),
    _param("sortOrder", "query", "Sort direction", enum=["ASC", "DESC"]),
    _param("nextPageToken", "query", "Token from the previous page"),
    _param("filterQuery", "query", "Filter in the Model Registry query language"),
]


def _schemas(entity_type: str | None) -> dict[str, Any]:
    """JSON schemas of create and update bodies (an artifact of any type when None)."""
    if entity_type is None:
        defs = [ENTITIES[t] for t in ARTIFACT_TYPES.values()]
        return {"create": {"oneOf": [d.create.model_json_schema() for d in defs]},
                "update": {"oneOf": [d.update.model_json_schema() for d in defs]}}
    spec = ENTITIES[entity_type]
    return {"create": spec.create.model_json_schema(),
            "update": spec.update.model_json_schema()}
