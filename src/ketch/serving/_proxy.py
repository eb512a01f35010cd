"""``/serving/{namespace}/{name}/...`` on the main server: every InferenceService
behind one address (the main server's port, its auth), forwarded to the
service's front as is — V1, V2 and the binary tensor extension alike.

``/serving/metrics`` merges every service front's Prometheus metrics into one page
(one scrape target for all services), read from each front's ``/metrics`` at its
published address (``status.url``), with the platform token where there is one."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ketch.core.errors import NotFoundError
from ketch.core.resources import find_condition
from ketch.core.runtime import Runtime
from ketch.serving._front_admin import METRICS_TYPE, merge_metrics
from ketch.serving._kind import INFERENCE_SERVICE

__all__ = ["proxy_router"]

_FORWARD_REQUEST = ("content-type", "content-encoding", "inference-header-content-length",
                    "accept")
_FORWARD_RESPONSE = ("content-type", "inference-header-content-length", "ketch-revision")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def proxy_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["serving"])
    holder: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        # One pool for the server's life, created on its event loop at first use.
        if "client" not in holder:
            holder["client"] = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
        return holder["client"]

    async def forward(request: Request, namespace: str, name: str, path: str) -> Response:
        try:
            obj = await run_in_threadpool(runtime.store.get, INFERENCE_SERVICE, namespace, name)
        except NotFoundError:
            return JSONResponse({"error": f"inference service {namespace}/{name} not found"},
                                status_code=404)
        url = obj.status.get("url")
        ready = find_condition(obj.status, "Ready") or {}
        if not url or ready.get("status") != "True":
            why = ready.get("message") or ready.get("reason") or "no revision is serving"
            return JSONResponse({"error": f"inference service {namespace}/{name} is not "
                                          f"ready: {why}"}, status_code=503)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARD_REQUEST}
        if runtime.settings.token:  # the caller passed this server's check; the front's too
            headers["authorization"] = f"Bearer {runtime.settings.token}"
        try:
            upstream = await client().request(
                request.method, f"{url}/{path}", content=await request.body(),
                headers=headers, params=request.query_params)
        except httpx.HTTPError as err:
            return JSONResponse({"error": f"inference service {namespace}/{name} did not "
                                          f"answer: {err}"}, status_code=503)
        out: dict[str, Any] = {k: v for k, v in upstream.headers.items()
                               if k.lower() in _FORWARD_RESPONSE}
        return Response(upstream.content, status_code=upstream.status_code, headers=out)

    async def metrics() -> Response:
        listed = await run_in_threadpool(runtime.store.list, INFERENCE_SERVICE)
        urls = [str(obj.status["url"]) for obj in listed.items if obj.status.get("url")]
        token = runtime.settings.token
        headers = {"authorization": f"Bearer {token}"} if token else {}
        pages = await asyncio.gather(*(_front_metrics(client(), url, headers)
                                       for url in urls))
        return Response(merge_metrics(pages), media_type=METRICS_TYPE)

    router.add_api_route("/serving/metrics", metrics, methods=["GET"], include_in_schema=False)
    router.add_api_route("/serving/{namespace}/{name}/{path:path}", forward, methods=_METHODS,
                         include_in_schema=False)
    return router


async def _front_metrics(client: httpx.AsyncClient, url: str,
                         headers: dict[str, str]) -> str:
    try:
        reply = await client.get(f"{url}/metrics", headers=headers, timeout=2.0)
    except httpx.HTTPError:
        return ""  # a front starting or gone: its service is missing from this scrape
    return reply.text if reply.is_success else ""
