"""Checks on every API request before a route sees it.

NUL characters in the path or a query parameter are a 400 naming the parameter: no route
means one, and they reached the file system (``ValueError: embedded null byte``) or
PostgreSQL (which cannot store them) as 500s.

Then the cap on API request bodies (kube-apiserver's ``MaxRequestBodyBytes``: 3 MiB).

Without it an 11 KB YAML bomb was the small end of the problem: any client could stream
a body of any size into memory. The cap covers the Kubernetes-style and ketch's own API
(``/api/...``, ``/apis/...``); inference routes (``/v1/models``, ``/v2``, ``/serving``)
carry tensors of their own sizes and are left to the model servers.

A body that announces its length beyond the cap is answered 413 before any of it is read;
one that streams past it (chunked, or lying about its length) is cut off at the cap with
the same 413 (raised from ``receive``, so the app's own handler writes the Status body).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ketch.core.errors import (
    BadRequestError,
    FieldError,
    KetchError,
    RequestEntityTooLargeError,
)

__all__ = ["BodyLimit"]

_LIMITED = ("/api/", "/apis/")


def _too_large(limit: int) -> RequestEntityTooLargeError:
    # kube-apiserver's wording (it names the limit, as a client needs to know it).
    return RequestEntityTooLargeError(
        f"Request entity too large: limit is {limit} (KETCH_MAX_REQUEST_BYTES)")


def _nul_in(scope: Scope) -> BadRequestError | None:
    if "\x00" in str(scope["path"]):
        return BadRequestError("invalid path", [FieldError(
            "path", "may not contain NUL (U+0000)")])
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key or "\x00" in value:
                return BadRequestError("invalid query parameter", [FieldError(
                    key.replace("\x00", "\\0"), "may not contain NUL (U+0000)")])
    return None


async def _answer(err: KetchError, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse(err.to_body(), status_code=err.http_status)(scope, receive, send)


class BodyLimit:
    """ASGI middleware: NUL in the path or query is a 400; a body over ``limit`` bytes
    a 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(_LIMITED):
            await self.app(scope, receive, send)
            return
        bad = _nul_in(scope)
        if bad is not None:
            await _answer(bad, scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _answer(_too_large(self.limit), scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _too_large(self.limit)
            return message

        await self.app(scope, limited, send)
