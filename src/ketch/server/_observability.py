"""``/healthz``, ``/readyz`` and Prometheus ``/metrics``."""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ketch.core.errors import KetchError
from ketch.core.runtime import Runtime
from ketch.server._feed import feed_stats

__all__ = ["install_observability"]


class _QueueCollector:
    """Work-queue depth per controller, read at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> object:
        family = GaugeMetricFamily("ketch_workqueue_depth", "Keys waiting per controller",
                                   labels=["kind"])
        for controller in self.runtime.controllers:
            family.add_metric([controller.kind.key], len(controller.queue))
        yield family


class _WatchCollector:
    """Open watch streams and the shared change feed's reads, read at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> object:
        streams, reads = feed_stats(self.runtime)
        yield GaugeMetricFamily("ketch_watch_streams", "Open watch streams", value=streams)
        yield CounterMetricFamily("ketch_change_feed_reads", "Reads of the change log by "
                                  "the one feed all watch streams share", value=reads)


class _Measure:
    """ASGI middleware counting requests and timing them to the response's start (what
    the client waits for; a watch stream's body runs on). Plain ASGI rather than
    ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs each request in a
    task group with memory streams, which cost more CPU than most handlers here."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        recorded = False

        def record(code: int) -> None:
            nonlocal recorded
            recorded = True
            # The router records the route it picked in the scope; FastAPI keeps
            # included routers as one entry in app.router.routes, so matching those
            # here would miss every kind route.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.requests.labels(scope["method"], route, str(code)).inc()
            self.latency.labels(scope["method"], route).observe(time.perf_counter() - start)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not recorded:
                record(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not recorded:
                record(500)  # it raised before answering: the server error handler's 500


def install_observability(app: FastAPI, runtime: Runtime) -> None:
    registry = CollectorRegistry()
    requests = Counter("ketch_http_requests_total", "HTTP requests",
                       ["method", "route", "code"], registry=registry)
    latency = Histogram("ketch_http_request_duration_seconds", "HTTP request latency",
                        ["method", "route"], registry=registry)
    up = Gauge("ketch_up", "1 while the control plane runs", registry=registry)
    up.set(1)
    registry.register(_QueueCollector(runtime))  # type: ignore[arg-type]
    registry.register(_WatchCollector(runtime))  # type: ignore[arg-type]

    app.add_middleware(_Measure, requests=requests, latency=latency)

    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @router.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> Response:
        try:
            await run_in_threadpool(runtime.store.ping)
        except KetchError as err:
            return PlainTextResponse(f"store not ready: {err.message}", status_code=503)
        return PlainTextResponse("ok")

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
