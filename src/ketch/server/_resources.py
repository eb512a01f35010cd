"""Kubernetes-style resource routes, generated for every registered kind.

``/apis/{group}/{version}/namespaces/{namespace}/{plural}[/{name}[/status|/log]]``
with list (label and field selectors, pagination, ``watch=true``), create, get, replace,
patch (merge patch, JSON patch, or server-side apply with ``application/apply-patch+yaml``
and managedFields, see ``ketch.core.managed_fields``; strategic merge is 415 as for
custom resources),
delete, and ``dryRun=All``. Handlers hold no domain logic: they parse, call the
``ResourceService``, and serialize.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ketch.core.delete_options import parse_delete_options
from ketch.core.errors import FieldError, InvalidError, NotFoundError, UnsupportedMediaTypeError
from ketch.core.field_validation import FieldValidation, parse_field_validation
from ketch.core.fields import FieldSelector
from ketch.core.kinds import KindInfo, LogOptions
from ketch.core.labels import LabelSelector
from ketch.core.loader import parse_json_body
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.server._schemas import kind_list_schema, kind_object_schema, kind_schema
from ketch.server._table import table_response, table_watch, wants_table
from ketch.server._watch import (
    check_watch_start,
    parse_resource_version,
    watch_format,
    watch_response,
    watch_stream,
)

__all__ = ["kind_router"]

Responses = dict[int | str, dict[str, Any]]
# JSON is YAML, so an apply body may be either; kube-apiserver names the type +yaml.
_APPLY_TYPES = ("application/apply-patch+yaml", "application/apply-patch+json")
_JSON_PATCH = "application/json-patch+json"
_MERGE_PATCH = "application/merge-patch+json"
_PATCH_TYPES = (_JSON_PATCH, _MERGE_PATCH, _APPLY_TYPES[0])
_STRATEGIC = "application/strategic-merge-patch+json"
# A list limit beyond this would overflow the 64-bit SQL LIMIT the store sends.
_MAX_LIMIT = 2**62


def _dry(dry_run: str | None) -> bool:
    if dry_run not in (None, "", "All"):
        raise InvalidError("invalid dryRun", [FieldError("dryRun", "must be 'All'")])
    return dry_run == "All"


async def _body(request: Request) -> Any:
    raw = await _raw_body(request)
    # Off the event loop: a pathological YAML body costs up to a second to refuse.
    return await run_in_threadpool(parse_json_body, raw)


async def _raw_body(request: Request) -> bytes:
    """The body, refused when empty or protobuf, not yet decoded."""
    if request.headers.get("content-type", "").startswith("application/vnd.kubernetes.protobuf"):
        # kubectl's typed generators (`kubectl create configmap`) send core kinds so.
        raise UnsupportedMediaTypeError(
            "ketch reads JSON and YAML bodies, not Kubernetes' protobuf: write the object "
            "as a manifest and use `kubectl create -f` or `kubectl apply -f`")
    raw = await request.body()
    if not raw.strip():
        raise InvalidError("the request body is empty; send the object as JSON or YAML")
    return raw


async def _decode_and_write(
        request: Request, field_validation: str | None,
        write: Callable[[Any, FieldValidation], Resource]) -> tuple[Resource, FieldValidation]:
    """Decode the body and ``write(body, validation)`` it in one worker-thread call (off
    the event loop, as ``_body``): each hop to the thread pool costs a create more than
    its decode does. The body is refused before a bad ``fieldValidation``, as before."""
    raw = await _raw_body(request)

    def decode_and_write() -> tuple[Resource, FieldValidation]:
        body = parse_json_body(raw)
        validation = parse_field_validation(field_validation)
        return write(body, validation), validation

    return await run_in_threadpool(decode_and_write)


def _unsupported_patch(ctype: str) -> UnsupportedMediaTypeError:
    # kube-apiserver's own sentence (kubectl prints it after "<type> is not supported by
    # <kind>"); strategic merge needs a Go type's patch strategies, which custom
    # resources, and so ketch's kinds, do not have.
    accepted = ("the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(_PATCH_TYPES)}")
    if ctype == _STRATEGIC:
        return UnsupportedMediaTypeError(
            "strategic merge patch is not supported for ketch's kinds (as for custom "
            f"resources): use --type=merge or --type=json; {accepted}")
    return UnsupportedMediaTypeError(accepted)


def _field_manager(request: Request, field_manager: str | None, *, apply: bool) -> str:
    """The request's field manager: ``fieldManager``, required for apply; for another
    write, by default the User-Agent's program (``kubectl/v1.32.0 (...)``: ``kubectl``),
    as kube-apiserver defaults it."""
    if field_manager:
        if len(field_manager) > 128 or not field_manager.isprintable():
            raise InvalidError('PatchOptions.meta.k8s.io "" is invalid', [FieldError(
                "fieldManager", "must be at most 128 printable characters")])
        return field_manager
    if apply:
        raise InvalidError('PatchOptions.meta.k8s.io "" is invalid', [FieldError(
            "fieldManager", "Required value: is required for apply patch")])
    agent = request.headers.get("user-agent", "").split("/")[0].strip()
    return "".join(c for c in agent if c.isprintable())[:128]


def kind_router(runtime: Runtime, service: ResourceService, info: KindInfo,
                defs: dict[str, Any]) -> APIRouter:
    """Every route for one kind."""
    router = APIRouter(tags=[f"{info.plural}.{info.group}"])
    # The core group ("") is served under /api, as Kubernetes serves it.
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    coll = f"{base}/namespaces/{{namespace}}/{info.plural}"
    item = f"{coll}/{{name}}"
    body_doc = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": kind_schema(info, defs)}}}}
    patch_doc = {"requestBody": {"required": True, "content": {
        _MERGE_PATCH: {"schema": {"type": "object"}},
        _JSON_PATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
        _APPLY_TYPES[0]: {"schema": kind_schema(info, defs)}}}}
    # What the routes answer, by name, so the dashboard's generated types can use them.
    one: Responses = {200: {"content": {
        "application/json": {"schema": kind_object_schema(info, defs)}}}}
    created: Responses = {201: one[200]}
    listing: Responses = {200: {"content": {
        "application/json": {"schema": kind_list_schema(info, defs)},
        # watch=true: one WatchEvent a line (application/json, as Kubernetes streams
        # it), or `data:` lines when the request accepts text/event-stream.
        "text/event-stream": {"schema": {"type": "string"}}}}}

    async def list_or_watch(request: Request, namespace: str | None,
                            label_selector: str | None, field_selector: str | None,
                            limit: int | None, continue_: str | None, watch: bool,
                            resource_version: str | None,
                            timeout_seconds: int | None, bookmarks: bool) -> Response:
        fields = FieldSelector.for_kind(field_selector, info)
        if watch:
            selector = LabelSelector.parse(label_selector)
            # Checked before streaming: a bad or compacted resourceVersion is a 400 or a
            # 410 with a Status body, not a broken stream.
            await check_watch_start(runtime, [info], parse_resource_version(resource_version))
            fmt = watch_format(request, bookmarks)
            stream = watch_stream(request, runtime, info, namespace, selector, fields,
                                  resource_version, timeout_seconds, fmt)
            if not fmt.sse and wants_table(request):
                stream = table_watch(request, info, stream)
            return watch_response(stream, fmt)
        result = await run_in_threadpool(service.list, info, namespace,
                                         label_selector=label_selector, limit=limit,
                                         continue_token=continue_)
        # Field selectors filter each page (a page may then hold fewer than `limit`).
        items = [body for body in (obj.to_wire() for obj in result.items)
                 if fields.matches(body)]
        list_meta = {"resourceVersion": result.resource_version,
                     **({"continue": result.continue_token} if result.continue_token else {})}
        if wants_table(request):
            return table_response(request, info, items, list_meta)
        return JSONResponse({
            "apiVersion": info.api_version, "kind": f"{info.kind}List",
            "metadata": list_meta, "items": items,
        })

    @router.get(f"{base}/{info.plural}", summary=f"List or watch {info.plural} in all namespaces",
                responses=listing)
    async def list_all(request: Request, labelSelector: str | None = None,
                       fieldSelector: str | None = None,
                       limit: int | None = Query(None, ge=0, le=_MAX_LIMIT),
                       continue_: str | None = Query(None, alias="continue"),
                       watch: bool = False, resourceVersion: str | None = None,
                       timeoutSeconds: int | None = Query(None, ge=0),
                       allowWatchBookmarks: bool = False) -> Response:
        return await list_or_watch(request, None, labelSelector, fieldSelector, limit,
                                   continue_, watch, resourceVersion, timeoutSeconds,
                                   allowWatchBookmarks)

    @router.get(coll, summary=f"List or watch {info.plural}", responses=listing)
    async def list_ns(request: Request, namespace: str, labelSelector: str | None = None,
                      fieldSelector: str | None = None,
                      limit: int | None = Query(None, ge=0, le=_MAX_LIMIT),
                      continue_: str | None = Query(None, alias="continue"),
                      watch: bool = False, resourceVersion: str | None = None,
                      timeoutSeconds: int | None = Query(None, ge=0),
                      allowWatchBookmarks: bool = False) -> Response:
        return await list_or_watch(request, namespace, labelSelector, fieldSelector, limit,
                                   continue_, watch, resourceVersion, timeoutSeconds,
                                   allowWatchBookmarks)

    @router.post(coll, status_code=201, openapi_extra=body_doc, summary=f"Create a {info.kind}",
                 responses=created)
    async def create(request: Request, namespace: str, dryRun: str | None = None,
                     fieldValidation: str | None = None,
                     fieldManager: str | None = None) -> JSONResponse:
        manager = _field_manager(request, fieldManager, apply=False)
        obj, validation = await _decode_and_write(
            request, fieldValidation, lambda body, validation: service.create(
                info, body, namespace, dry_run=_dry(dryRun), validation=validation,
                manager=manager))
        return _warned(JSONResponse(obj.to_wire(), status_code=201), validation)

    @router.get(item, summary=f"Read a {info.kind}", responses=one)
    async def get(request: Request, namespace: str, name: str) -> JSONResponse:
        obj = await run_in_threadpool(service.get, info, namespace, name)
        if wants_table(request):
            return table_response(request, info, [obj.to_wire()])
        return JSONResponse(obj.to_wire())

    async def replace(request: Request, namespace: str, name: str, dry_run: str | None,
                      status: bool, field_validation: str | None,
                      field_manager: str | None) -> JSONResponse:
        manager = _field_manager(request, field_manager, apply=False)
        obj, validation = await _decode_and_write(
            request, field_validation, lambda body, validation: service.replace(
                info, namespace, name, body, status=status, dry_run=_dry(dry_run),
                validation=validation, manager=manager))
        return _warned(JSONResponse(obj.to_wire()), validation)

    async def patch(request: Request, namespace: str, name: str, dry_run: str | None,
                    status: bool, field_validation: str | None, field_manager: str | None,
                    force: bool | None) -> JSONResponse:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in (*_APPLY_TYPES, _JSON_PATCH, _MERGE_PATCH):
            raise _unsupported_patch(ctype)
        # PatchOptions are checked before the body is read, as kube-apiserver does.
        apply = ctype in _APPLY_TYPES
        manager = _field_manager(request, field_manager, apply=apply)
        if force is not None and not apply:
            raise InvalidError('PatchOptions.meta.k8s.io "" is invalid', [FieldError(
                "force", "Forbidden: may not be specified for non-apply patch")])
        dry = _dry(dry_run)
        body = await _body(request)
        validation = parse_field_validation(field_validation)
        if apply and not status:
            obj, action = await run_in_threadpool(
                functools.partial(service.apply, info, namespace, name, body,
                                  manager=manager, force=bool(force), dry_run=dry,
                                  validation=validation))
            return _warned(JSONResponse(obj.to_wire(),
                                        status_code=201 if action == "created" else 200,
                                        headers={"X-Ketch-Apply": action}), validation)
        # An apply to /status merges the status it carries (no owners: see replace).
        obj = await run_in_threadpool(
            functools.partial(service.patch, info, namespace, name, body, status=status,
                              dry_run=dry, validation=validation, manager=manager,
                              json_patch=ctype == _JSON_PATCH))
        return _warned(JSONResponse(obj.to_wire()), validation)

    @router.put(item, openapi_extra=body_doc, summary=f"Replace a {info.kind}",
                responses=one)
    async def put(request: Request, namespace: str, name: str, dryRun: str | None = None,
                  fieldValidation: str | None = None,
                  fieldManager: str | None = None) -> JSONResponse:
        return await replace(request, namespace, name, dryRun, False, fieldValidation,
                             fieldManager)

    @router.patch(item, openapi_extra=patch_doc, summary=f"Patch or apply a {info.kind}",
                  responses={**one, **created})
    async def patch_item(request: Request, namespace: str, name: str,
                         dryRun: str | None = None,
                         fieldValidation: str | None = None,
                         fieldManager: str | None = None,
                         force: bool | None = None) -> JSONResponse:
        return await patch(request, namespace, name, dryRun, False, fieldValidation,
                           fieldManager, force)

    @router.delete(item, summary=f"Delete a {info.kind}", responses=one)
    async def delete(request: Request, namespace: str, name: str,
                     resourceVersion: str | None = None,
                     propagationPolicy: str | None = None,
                     gracePeriodSeconds: int | None = Query(None, ge=0),
                     dryRun: str | None = None) -> JSONResponse:
        raw = await request.body()
        body = await run_in_threadpool(parse_json_body, raw) if raw.strip() else None
        options = parse_delete_options(body, propagation=propagationPolicy,
                                       resource_version=resourceVersion)
        obj = await run_in_threadpool(service.delete, info, namespace, name,
                                      options=options, dry_run=_dry(dryRun))
        return JSONResponse(obj.to_wire())

    @router.get(f"{item}/status", summary=f"Read a {info.kind}'s status", responses=one)
    async def get_status(request: Request, namespace: str, name: str) -> JSONResponse:
        return await get(request, namespace, name)

    @router.put(f"{item}/status", openapi_extra=body_doc, summary=f"Replace {info.kind} status",
                responses=one)
    async def put_status(request: Request, namespace: str, name: str,
                         dryRun: str | None = None,
                         fieldValidation: str | None = None,
                         fieldManager: str | None = None) -> JSONResponse:
        return await replace(request, namespace, name, dryRun, True, fieldValidation,
                             fieldManager)

    @router.patch(f"{item}/status", openapi_extra=patch_doc, summary=f"Patch {info.kind} status",
                  responses=one)
    async def patch_status(request: Request, namespace: str, name: str,
                           dryRun: str | None = None,
                           fieldValidation: str | None = None,
                           fieldManager: str | None = None,
                           force: bool | None = None) -> JSONResponse:
        return await patch(request, namespace, name, dryRun, True, fieldValidation,
                           fieldManager, force)

    if info.has_logs:
        reader = next((c.log_readers[info.key] for c in runtime.components
                       if info.key in c.log_readers), None)

        @router.get(f"{item}/log", summary=f"Stream a {info.kind}'s log",
                    response_class=StreamingResponse,
                    responses={200: {"content": {"text/plain": {}}}})
        async def logs(namespace: str, name: str, follow: bool = False,
                       attempt: int | None = Query(None, ge=1),
                       task: str | None = None) -> StreamingResponse:
            if reader is None:
                raise NotFoundError(f"{info.plural} have no log reader")
            obj = await run_in_threadpool(service.get, info, namespace, name)
            # The reader checks its options before returning, so errors become HTTP errors.
            chunks = await run_in_threadpool(
                reader, runtime, obj, LogOptions(follow=follow, attempt=attempt, task=task))
            return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")

    return router


def _warned(response: JSONResponse, validation: FieldValidation) -> JSONResponse:
    """One ``Warning: 299`` header per warning, as kube-apiserver sends them (the
    Kubernetes clients print or log each)."""
    for text in validation.warnings:
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.append("Warning", f'299 - "{quoted}"')
    return response
