"""The API server: assembles the core routes, every kind's routes and the dashboard."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ketch import __version__
from ketch.core.errors import FieldError, InvalidError, KetchError, UnauthorizedError
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.server._artifacts import artifacts_router
from ketch.server._core_v1 import SERVED_HERE, core_v1_router
from ketch.server._discovery import discovery_router
from ketch.server._limits import BodyLimit
from ketch.server._lineage import lineage_router
from ketch.server._observability import install_observability
from ketch.server._openapi_v3 import openapi_v3_router
from ketch.server._resources import kind_router
from ketch.server._schemas import ComponentList, KindList, documented
from ketch.server._watch import multi_watch_router

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"
# KFP's healthz too: kfp.Client calls it on construction, retrying a refusal five
# times 5 s apart, so a wrong token would cost 25 s before its first real call said so.
_OPEN_PATHS = ("/healthz", "/readyz", "/apis/v2beta1/healthz")
_API_PREFIXES = ("/api", "/apis", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
                 "/version", "/v1/", "/v2/", "/serving/")


def _status(err: KetchError) -> JSONResponse:
    return JSONResponse(err.to_body(), status_code=err.http_status)


class _BearerToken:
    """ASGI middleware: every path but the open ones needs ``Authorization: Bearer
    TOKEN`` (compared in constant time), else a 401 Status. Plain ASGI, as
    ``_observability._Measure`` and for the same reason."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in _OPEN_PATHS:
            sent = Headers(scope=scope).get("authorization", "")
            scheme, _, value = sent.partition(" ")
            # As bytes: compare_digest refuses a str with non-ASCII characters (a 500).
            presented = value.strip().encode("latin-1")
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented, self.token):
                await _status(UnauthorizedError(
                    "missing or wrong bearer token (set KETCH_TOKEN)"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(runtime: Runtime, *, token: str | None = None, manage_runtime: bool = True,
               on_ready: Callable[[], None] | None = None, dashboard: bool = True) -> FastAPI:
    """The ASGI app for ``runtime``. With ``token``, every request but health checks
    must carry ``Authorization: Bearer <token>``. ``on_ready`` runs once the
    runtime has started and the server is about to accept requests."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await run_in_threadpool(runtime.start)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            if manage_runtime:
                await run_in_threadpool(runtime.stop)

    app = FastAPI(title="ketch", version=__version__, lifespan=lifespan,
                  description="The Kubeflow ML platform as one Python package.")
    service = ResourceService(runtime)
    app.state.runtime = runtime
    app.state.service = service

    @app.exception_handler(KetchError)
    async def ketch_error(_request: Request, err: KetchError) -> JSONResponse:
        return _status(err)

    @app.exception_handler(RequestValidationError)
    async def request_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        fields = [FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in err.errors()]
        return _status(InvalidError("invalid request", fields))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        body = KetchError(str(err.detail)).to_body()
        body["code"] = err.status_code
        body["reason"] = {404: "NotFound", 405: "MethodNotAllowed"}.get(err.status_code,
                                                                       "HTTPError")
        return JSONResponse(body, status_code=err.status_code)

    if token:
        app.add_middleware(_BearerToken, token=token)

    app.add_middleware(BodyLimit, limit=runtime.settings.max_request_bytes)
    install_observability(app, runtime)
    _install_ketch_kinds(app, runtime)
    defs: dict[str, Any] = {}
    app.include_router(core_v1_router(runtime, service))
    for info in runtime.registry:
        if info.key not in SERVED_HERE:
            app.include_router(kind_router(runtime, service, info, defs))
    app.include_router(multi_watch_router(runtime))
    app.include_router(lineage_router(runtime))
    app.include_router(artifacts_router(runtime))
    for component in runtime.components:
        for make_router in component.routers:
            app.include_router(make_router(runtime))
    # Last of the API routes: /apis/{group}/{version} matches any path of that shape.
    app.include_router(discovery_router(runtime.registry))
    app.include_router(openapi_v3_router(app, runtime.registry))
    _install_openapi(app, defs)
    if dashboard:
        _install_dashboard(app)
    return app


def _kind_entry(info: Any) -> dict[str, Any]:
    return {
        "group": info.group, "version": info.version, "kind": info.kind,
        "plural": info.plural, "singular": info.singular, "namespaced": info.namespaced,
        "shortNames": list(info.short_names), "hasLogs": info.has_logs,
        "conditions": list(info.conditions),
        "columns": [{"name": c.name, "path": c.path, "wideOnly": c.wide_only}
                    for c in info.columns],
    }


def _install_ketch_kinds(app: FastAPI, runtime: Runtime) -> None:
    registry = runtime.registry

    @app.get("/api/ketch/kinds", tags=["discovery"], response_model=None,
             responses=documented(KindList))
    async def kinds() -> dict[str, Any]:
        return {"items": [_kind_entry(info) for info in registry]}

    @app.get("/api/ketch/components", tags=["discovery"], response_model=None,
             responses=documented(ComponentList))
    async def components() -> dict[str, Any]:
        # Each component's declaration (its verbs, client facade and dashboard pages)
        # and its kinds: the dashboard shows a component's pages only when it is here.
        return {"items": [{**c.describe(), "kinds": [_kind_entry(k) for k in c.kinds]}
                          for c in runtime.components]}


def _install_openapi(app: FastAPI, defs: dict[str, Any]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            named = schema.setdefault("components", {}).setdefault("schemas", {})
            # A kind's schema and a route's model of one name would overwrite each other.
            clash = sorted(n for n in defs.keys() & named.keys() if defs[n] != named[n])
            if clash:
                raise RuntimeError(f"OpenAPI schema names used twice: {clash}")
            named.update(defs)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_dashboard(app: FastAPI) -> None:
    """Serve the built dashboard at ``/``; unknown non-API paths get index.html so
    the dashboard's own routes survive a reload."""

    @app.get("/{path:path}", include_in_schema=False)
    async def dashboard(path: str) -> Response:
        if ("/" + path).startswith(_API_PREFIXES):
            return _status(_not_found(path))
        root = STATIC_DIR.resolve()
        target = (root / path).resolve() if path else root / "index.html"
        if path and target.is_file() and target.is_relative_to(root):
            return FileResponse(target)
        index = root / "index.html"
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return PlainTextResponse("ketch API server. The dashboard is not built: run "
                                 "`make install` (needs npm).", status_code=200)


def _not_found(path: str) -> KetchError:
    from ketch.core.errors import NotFoundError

    return NotFoundError(f"no route /{path}")
