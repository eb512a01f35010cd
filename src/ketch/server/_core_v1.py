"""The core v1 routes that are not plain stored kinds: Namespaces and Pods.

``/api/v1/namespaces``: Namespace objects that were created, and every namespace that
holds objects (``default`` always), each ``Active``. ``/api/v1/.../pods``: the pods
view of executor units (``ketch.core.pods``): list, get, ``log`` and delete; a pod
cannot be created (405). A pod watch lists again every second and sends what changed
(``ADDED``, ``MODIFIED``, ``DELETED``, newline-delimited JSON as Kubernetes streams a
watch). ConfigMaps, Secrets and Events are served by the generic
kind routes (``_resources.py``) under ``/api/v1``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ketch.core.codec import dumps
from ketch.core.core_kinds import NAMESPACE, POD
from ketch.core.errors import KetchError, NotFoundError
from ketch.core.pods import PodLogOptions, delete_pod, find_pod, list_pods, pod_log
from ketch.core.resources import now
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.server._resources import _body as request_body
from ketch.server._schemas import NamespaceList, documented
from ketch.server._table import table_response, table_watch, wants_table

__all__ = ["SERVED_HERE", "SERVED_VERBS", "core_v1_router"]

# Kinds whose routes are here, not the generic kind routes.
SERVED_HERE = frozenset({NAMESPACE.key, POD.key})
# What discovery says each answers: (the kind's verbs, its status subresource's verbs),
# kept next to the routes below that serve them.
SERVED_VERBS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    NAMESPACE.key: (("create", "delete", "get", "list"), ()),
    POD.key: (("delete", "get", "list", "watch"), ("get",)),
}


class MethodNotAllowedError(KetchError):
    code = "MethodNotAllowed"
    http_status = 405


def _namespace(name: str, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    body = stored or {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                      "spec": {}, "status": {}}
    body.setdefault("status", {})
    if not body["status"].get("phase"):
        body["status"]["phase"] = "Active"
    body["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    return body


# Pods are a view, with no change log of their own: a watch lists them again this often
# and sends the differences, for at most _WATCH_FOR seconds without timeoutSeconds.
_POLL = 1.0
_WATCH_FOR = 1800.0


def _pod_key(pod: dict[str, Any]) -> tuple[str, str]:
    return pod["metadata"]["namespace"], pod["metadata"]["name"]


def _event(kind: str, pod: dict[str, Any]) -> bytes:
    return dumps({"type": kind, "object": pod}).encode() + b"\n"


def _true(value: str | None) -> bool:
    """``watch=true``, read case-insensitively (the Python client sends ``True``)."""
    return (value or "").strip().lower() in ("true", "1")


def core_v1_router(runtime: Runtime, service: ResourceService) -> APIRouter:
    router = APIRouter(tags=["core/v1"])
    store = runtime.store

    def all_namespaces() -> list[dict[str, Any]]:
        stored = {o.name: o.to_wire() for o in store.list(NAMESPACE).items}
        names = set(stored) | set(store.namespaces()) | {"default"}
        return [_namespace(n, stored.get(n)) for n in sorted(names)]

    @router.get("/api/v1/namespaces", summary="List namespaces", response_model=None,
                responses=documented(NamespaceList))
    async def list_namespaces(request: Request) -> dict[str, Any] | Response:
        items = await run_in_threadpool(all_namespaces)
        meta = {"resourceVersion": str(await run_in_threadpool(store.revision))}
        if wants_table(request):
            return table_response(request, NAMESPACE, items, meta)
        return {"kind": "NamespaceList", "apiVersion": "v1", "metadata": meta, "items": items}

    @router.post("/api/v1/namespaces", status_code=201, summary="Create a Namespace")
    async def create_namespace(request: Request) -> JSONResponse:
        body = await request_body(request)
        obj = await run_in_threadpool(service.create, NAMESPACE, body, None)
        return JSONResponse(_namespace(obj.name, obj.to_wire()), status_code=201)

    @router.get("/api/v1/namespaces/{name}", summary="Read a Namespace", response_model=None)
    async def get_namespace(request: Request, name: str) -> dict[str, Any] | Response:
        for item in await run_in_threadpool(all_namespaces):
            if item["metadata"]["name"] == name:
                return table_response(request, NAMESPACE, [item]) if wants_table(
                    request) else item
        raise NotFoundError(f'namespaces "{name}" not found')

    @router.delete("/api/v1/namespaces/{name}", summary="Delete a Namespace object")
    async def delete_namespace(name: str) -> dict[str, Any]:
        # Only the Namespace object goes: the objects in it stay (no cascade here).
        obj = await run_in_threadpool(service.delete, NAMESPACE, None, name)
        body = _namespace(obj.name, obj.to_wire())
        body["status"]["phase"] = "Terminating"
        body["metadata"]["deletionTimestamp"] = now()
        return body

    def pod_list(namespace: str | None, label_selector: str | None,
                 field_selector: str | None) -> dict[str, Any]:
        items = list_pods(runtime, namespace, label_selector=label_selector,
                          field_selector=field_selector)
        return {"kind": "PodList", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(store.revision())}, "items": items}

    async def pods_or_watch(request: Request, namespace: str | None,
                            label_selector: str | None, field_selector: str | None,
                            watch: bool, resource_version: str | None,
                            timeout_seconds: int | None) -> Response:
        listed = await run_in_threadpool(pod_list, namespace, label_selector, field_selector)
        if not watch:
            if wants_table(request):
                return table_response(request, POD, listed["items"], listed["metadata"])
            return JSONResponse(listed)
        # A list with a version: the caller has these pods already (kubectl get -w).
        seen = ({} if resource_version in (None, "", "0") else
                {_pod_key(p): p for p in listed["items"]})
        first = [] if seen else listed["items"]

        async def events() -> AsyncIterator[bytes]:
            nonlocal seen
            for pod in first:
                seen[_pod_key(pod)] = pod
                yield _event("ADDED", pod)
            deadline = time.monotonic() + (timeout_seconds or _WATCH_FOR)
            while time.monotonic() < deadline and not await request.is_disconnected():
                await asyncio.sleep(_POLL)
                now_items = (await run_in_threadpool(
                    pod_list, namespace, label_selector, field_selector))["items"]
                current = {_pod_key(p): p for p in now_items}
                for key, pod in current.items():
                    if key not in seen:
                        yield _event("ADDED", pod)
                    elif seen[key] != pod:
                        yield _event("MODIFIED", pod)
                for key, pod in seen.items():
                    if key not in current:
                        yield _event("DELETED", pod)
                seen = current

        stream = table_watch(request, POD, events()) if wants_table(request) else events()
        return StreamingResponse(stream, media_type="application/json",
                                 headers={"Cache-Control": "no-cache"})

    @router.get("/api/v1/pods", summary="List or watch pods in all namespaces")
    async def list_all_pods(request: Request, labelSelector: str | None = None,
                            fieldSelector: str | None = None, watch: str | None = None,
                            resourceVersion: str | None = None,
                            timeoutSeconds: int | None = Query(None, ge=1)) -> Response:
        return await pods_or_watch(request, None, labelSelector, fieldSelector,
                                   _true(watch), resourceVersion, timeoutSeconds)

    @router.get("/api/v1/namespaces/{namespace}/pods", summary="List or watch pods")
    async def list_ns_pods(request: Request, namespace: str, labelSelector: str | None = None,
                           fieldSelector: str | None = None, watch: str | None = None,
                           resourceVersion: str | None = None,
                           timeoutSeconds: int | None = Query(None, ge=1)) -> Response:
        return await pods_or_watch(request, namespace, labelSelector, fieldSelector,
                                   _true(watch), resourceVersion, timeoutSeconds)

    @router.post("/api/v1/namespaces/{namespace}/pods", summary="Pods cannot be created")
    async def create_pod(namespace: str) -> JSONResponse:
        raise MethodNotAllowedError(
            "pods cannot be created directly: ketch's controllers create them for the "
            "work they run (create a Job, a PipelineRun or an InferenceService instead)")

    @router.get("/api/v1/namespaces/{namespace}/pods/{name}", summary="Read a pod",
                response_model=None)
    async def get_pod(request: Request, namespace: str, name: str) -> dict[str, Any] | Response:
        pod = await run_in_threadpool(find_pod, runtime, namespace, name)
        return table_response(request, POD, [pod]) if wants_table(request) else pod

    @router.get("/api/v1/namespaces/{namespace}/pods/{name}/status",
                summary="Read a pod's status")
    async def get_pod_status(namespace: str, name: str) -> dict[str, Any]:
        return await run_in_threadpool(find_pod, runtime, namespace, name)

    @router.delete("/api/v1/namespaces/{namespace}/pods/{name}",
                   summary="Delete a pod: stop its unit (its owner reacts)")
    async def remove_pod(namespace: str, name: str) -> dict[str, Any]:
        return await run_in_threadpool(delete_pod, runtime, namespace, name)

    @router.get("/api/v1/namespaces/{namespace}/pods/{name}/log",
                summary="A pod's log", response_class=StreamingResponse,
                responses={200: {"content": {"text/plain": {}}}})
    async def read_pod_log(namespace: str, name: str, container: str | None = None,
                           follow: bool = False,
                           tailLines: int | None = Query(None, ge=0),
                           sinceSeconds: int | None = Query(None, ge=1),
                           timestamps: bool = False) -> StreamingResponse:
        options = PodLogOptions(container=container, follow=follow, tail_lines=tailLines,
                                since_seconds=sinceSeconds, timestamps=timestamps)
        chunks = await run_in_threadpool(pod_log, runtime, namespace, name, options)
        return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")

    return router
