"""A lean HTTP/1.1 server for the model server's hot path (asyncio + httptools).

Why not uvicorn: for a 1-row predict the ASGI layers (scope dicts, receive/send
coroutines, a task per request, proxy-header middleware) cost more than the model.
Here a request is parsed by httptools into one :class:`Request`, handed to a handler
that returns a :data:`Response` directly when it can (no task, no await), or an
awaitable when it must wait (an async model, the batcher, a predict run off the event
loop). Responses go out as one ``write`` of one bytes object.

What it does: keep-alive, pipelining (answers in order: reading pauses while a request
is in flight), chunked request bodies, ``Expect: 100-continue``, HEAD, a body size limit
(413), 400 on malformed HTTP, back-pressure from slow readers, TCP_NODELAY, TCP or unix
sockets, and a graceful stop that finishes requests in flight and closes idle
connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

import httptools

__all__ = ["HTTPServer", "Handler", "Request", "Response"]

# (status, body, content type, extra headers)
Response = tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]
Handler = Callable[["Request"], "Response | Awaitable[Response]"]

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_JSON = b"application/json"
_MAX_HEADER_BYTES = 64 * 1024


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\nserver: ketch\r\n" % (status, _REASONS.get(status, b""))
        _STATUS_LINES[status] = line
    return line


def _error(status: int, message: str) -> Response:
    body = b'{"error":"' + message.replace('"', "'").encode() + b'"}'
    return status, body, _JSON, []


class Request:
    """One parsed HTTP request.

    Attributes:
        method: ``GET``, ``POST``, ... (HEAD is passed on as is).
        path: The percent-decoded path, without the query string.
        query: The raw query string (bytes, possibly empty).
        headers: Header names lower-cased; a repeated header keeps its last value.
        body: The whole body, de-chunked.
    """

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, method: str, path: str, query: bytes, headers: dict[str, str],
                 body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body


class _Connection(asyncio.Protocol):
    """One client connection: parse, dispatch in order, write."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.loop = server.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.refusal: str | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.in_message = False
        self.busy = False  # a request's handler has not answered yet
        self.pending: deque[tuple[Request | Response, bool, bool]] = deque()
        self.closing = False
        self.writable = True

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Without it a kept-alive reply can wait 40 ms for a delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self.pending.clear()
        self.server.check_drained()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reply_and_close(_error(400, "protocol upgrades are not supported"))
        except httptools.HttpParserError as e:
            # A limit hit in a callback reaches here as a generic "callback error".
            self._reply_and_close(_error(400, self.refusal or f"malformed HTTP request: {e}"))

    def pause_writing(self) -> None:
        self.writable = False
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writable = True
        if self.transport is not None and not self.busy:
            self.transport.resume_reading()

    # -- httptools callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.url = b""
        self.headers = {}
        self.header_bytes = 0
        self.chunks = []
        self.size = 0
        self.too_large = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > _MAX_HEADER_BYTES:
            self.refusal = f"request target longer than {_MAX_HEADER_BYTES} bytes"
            raise httptools.HttpParserError(self.refusal)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > _MAX_HEADER_BYTES:  # llhttp itself sets no bound
            self.refusal = f"request headers larger than {_MAX_HEADER_BYTES} bytes"
            raise httptools.HttpParserError(self.refusal)
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.server.max_body:
            self.too_large = True
        elif (self.headers.get("expect", "").lower() == "100-continue"
              and self.transport is not None):
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self.too_large:
            return
        self.size += len(body)
        if self.size > self.server.max_body:
            self.too_large = True
            self.chunks = []
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        keep_alive = self.parser.should_keep_alive() and not self.server.stopping
        method = self.parser.get_method().decode()
        head = method == "HEAD"
        if self.too_large:
            limit = self.server.max_body
            item: Request | Response = _error(413, f"request body larger than {limit} bytes")
            keep_alive = False
        else:
            parsed = httptools.parse_url(self.url)
            raw_path: bytes = parsed.path or b"/"
            path = raw_path.decode("latin-1")
            if "%" in path:
                path = unquote(path)
            chunks = self.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            item = Request(method, path, parsed.query or b"", self.headers, body)
        if self.busy:
            self.pending.append((item, keep_alive, head))
            return
        self._dispatch(item, keep_alive, head)

    # -- answering -----------------------------------------------------------------

    def _dispatch(self, item: Request | Response, keep_alive: bool, head: bool) -> None:
        if isinstance(item, tuple):
            self._write(item, keep_alive, head)
            return
        try:
            result = self.server.handler(item)
        except Exception as e:  # a bug in a handler: still answer
            result = _error(500, f"{type(e).__name__}: {e}")
        if isinstance(result, tuple):
            self._write(result, keep_alive, head)
            return
        self.busy = True
        if self.transport is not None:
            self.transport.pause_reading()
        task = self.loop.create_task(self._finish(result, keep_alive, head))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.task_done)

    async def _finish(self, result: Awaitable[Response], keep_alive: bool,
                      head: bool) -> None:
        try:
            response = await result
        except Exception as e:
            response = _error(500, f"{type(e).__name__}: {e}")
        self.busy = False
        self._write(response, keep_alive, head)
        while self.pending and not self.busy and self.transport is not None:
            item, alive, is_head = self.pending.popleft()
            self._dispatch(item, alive, is_head)
        if self.transport is not None and not self.busy and self.writable:
            self.transport.resume_reading()
        self.server.check_drained()

    def _write(self, response: Response, keep_alive: bool, head: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        status, body, ctype, extra = response
        parts = [_status_line(status), b"content-type: ", ctype,
                 b"\r\ncontent-length: ", str(len(body)).encode(), b"\r\n"]
        for key, value in extra:
            parts += [key, b": ", value, b"\r\n"]
        keep_alive = keep_alive and not self.server.stopping
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if not head:
            parts.append(body)
        transport.write(b"".join(parts))
        if not keep_alive:
            self.closing = True
            transport.close()

    def _reply_and_close(self, response: Response) -> None:
        if self.busy:  # the answer in flight comes first; then just close
            self.closing = True
            self.pending.clear()
            return
        self._write(response, False, False)

    def close_if_idle(self) -> None:
        """Close now unless a request is being read or answered (a graceful stop)."""
        if self.transport is not None and not self.busy and not self.in_message:
            self.transport.close()


class HTTPServer:
    """Serves a :data:`Handler` on listening sockets.

    Args:
        handler: Called on the event loop for every request; returns a response, or an
            awaitable of one.
        max_body: The largest request body accepted (bytes); larger ones get a 413.
    """

    def __init__(self, handler: Handler, *, max_body: int = 256 * 1024 * 1024) -> None:
        self.handler = handler
        self.max_body = max_body
        self.loop = asyncio.get_running_loop()
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False
        self._servers: list[asyncio.AbstractServer] = []
        self._drained = asyncio.Event()

    async def listen(self, sock: socket.socket) -> None:
        """Accept connections on an already bound socket (TCP or unix)."""
        sock.setblocking(False)
        if sock.family == socket.AF_UNIX:
            server = await self.loop.create_unix_server(lambda: _Connection(self), sock=sock,
                                                        backlog=1024)
        else:
            server = await self.loop.create_server(lambda: _Connection(self), sock=sock,
                                                   backlog=1024)
        self._servers.append(server)

    def task_done(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished request task; it may have been the last thing in flight."""
        self.tasks.discard(task)
        self.check_drained()

    def check_drained(self) -> None:
        """Wake :meth:`stop` once nothing is in flight (called as connections finish)."""
        if self.stopping:
            for conn in list(self.connections):
                conn.close_if_idle()
            if not self.connections and not self.tasks:
                self._drained.set()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace`` s), close all."""
        self.stopping = True
        for server in self._servers:
            server.close()
        self.check_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), grace)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for task in list(self.tasks):
            task.cancel()
