"""The core v1 routes that are not plain stored kinds: Namespaces and Pods.

``/api/v1/namespaces``: Namespace objects that were created, and every namespace that
holds objects (``default`` always), each ``Active``. ``/api/v1/.../pods``: the pods
view of executor units (``ketch.core.pods``): list, get, ``log`` and delete; a pod
cannot be created (405). ConfigMaps, Secrets and Events are served by the generic
kind routes (``_resources.py``) under ``/api/v1``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ketch.core.core_kinds import NAMESPACE, POD
from ketch.core.errors import KetchError, NotFoundError
from ketch.core.pods import PodLogOptions, delete_pod, find_pod, list_pods, pod_log
from ketch.core.resources import now
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.server._schemas import NamespaceList, documented

__all__ = ["SERVED_HERE", "core_v1_router"]

# Kinds whose routes are here, not the generic kind routes.
SERVED_HERE = frozenset({NAMESPACE.key, POD.key})


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


def core_v1_router(runtime: Runtime, service: ResourceService) -> APIRouter:
    router = APIRouter(tags=["core/v1"])
    store = runtime.store

    def all_namespaces() -> list[dict[str, Any]]:
        stored = {o.name: o.to_wire() for o in store.list(NAMESPACE).items}
        names = set(stored) | set(store.namespaces()) | {"default"}
        return [_namespace(n, stored.get(n)) for n in sorted(names)]

    @router.get("/api/v1/namespaces", summary="List namespaces", response_model=None,
                responses=documented(NamespaceList))
    async def list_namespaces() -> dict[str, Any]:
        items = await run_in_threadpool(all_namespaces)
        return {"kind": "NamespaceList", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(await run_in_threadpool(store.revision))},
                "items": items}

    @router.post("/api/v1/namespaces", status_code=201, summary="Create a Namespace")
    async def create_namespace(request: Request) -> JSONResponse:
        body = await request.json()
        obj = await run_in_threadpool(service.create, NAMESPACE, body, None)
        return JSONResponse(_namespace(obj.name, obj.to_wire()), status_code=201)

    @router.get("/api/v1/namespaces/{name}", summary="Read a Namespace")
    async def get_namespace(name: str) -> dict[str, Any]:
        for item in await run_in_threadpool(all_namespaces):
            if item["metadata"]["name"] == name:
                return item
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

    @router.get("/api/v1/pods", summary="List pods in all namespaces")
    async def list_all_pods(labelSelector: str | None = None,
                            fieldSelector: str | None = None) -> dict[str, Any]:
        return await run_in_threadpool(pod_list, None, labelSelector, fieldSelector)

    @router.get("/api/v1/namespaces/{namespace}/pods", summary="List pods")
    async def list_ns_pods(namespace: str, labelSelector: str | None = None,
                           fieldSelector: str | None = None) -> dict[str, Any]:
        return await run_in_threadpool(pod_list, namespace, labelSelector, fieldSelector)

    @router.post("/api/v1/namespaces/{namespace}/pods", summary="Pods cannot be created")
    async def create_pod(namespace: str) -> JSONResponse:
        raise MethodNotAllowedError(
            "pods cannot be created directly: ketch's controllers create them for the "
            "work they run (create a Job, a PipelineRun or an InferenceService instead)")

    @router.get("/api/v1/namespaces/{namespace}/pods/{name}", summary="Read a pod")
    async def get_pod(namespace: str, name: str) -> dict[str, Any]:
        return await run_in_threadpool(find_pod, runtime, namespace, name)

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
