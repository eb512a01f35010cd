"""The client side of the front: the service port's HTTP/1.1 connections.

Requests are parsed with ``httptools`` only to find where each one ends. When a read
holds exactly one whole request (the common case), those bytes are forwarded as they
are; pipelined requests and ``Expect: 100-continue`` are rebuilt from their parsed
parts. Responses go back in request order, one request at a time per connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING

import httptools

if TYPE_CHECKING:
    from ketch.serving._front import Front, Upstream
    from ketch.serving._front_pool import Backend, Revision

__all__ = ["ADMIN_PREFIX", "ClientConnection", "Exchange", "error_response"]


def error_response(code: int, message: str, *, keep_alive: bool = True,
                   extra: str = "") -> bytes:
    """A complete HTTP/1.1 response with KServe's ``{"error": ...}`` JSON body;
    ``extra`` is more header lines, each ending in CRLF."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\ncontent-type: application/json"
            f"\r\ncontent-length: {len(body)}\r\n{extra}"
            f"{'' if keep_alive else 'connection: close' + chr(13) + chr(10)}\r\n"
            ).encode() + body


# (forward as received?, raw chunks, method, url, headers, body chunks, keep-alive,
#  authorized?)
_Parsed = tuple[bool, list[bytes], bytes, bytes, list[tuple[bytes, bytes]], list[bytes], bool,
                bool]
_UNAUTHORIZED = "missing or wrong bearer token (the platform's, as KETCH_TOKEN)"
_ADMIN_UNAUTHORIZED = "missing or wrong bearer token for the front's admin API (the " \
                      "controller's per-front credential)"
# The controller's routes on the service port (routing table, measurements); they take
# the front's own admin credential, never the platform token or no token.
ADMIN_PREFIX = b"/ketch/admin/"


class Exchange:
    """One request on its way through the front."""

    __slots__ = ("attempts", "backend", "client", "conn", "denied", "gone", "head",
                 "keep_alive", "request", "revision", "sent", "started")

    def __init__(self, client: ClientConnection, request: bytes, keep_alive: bool,
                 head: bool = False, denied: bool = False) -> None:
        self.client = client
        self.denied = denied  # no valid bearer token: answered 401 by the front itself
        self.request = request
        self.keep_alive = keep_alive
        self.head = head  # a HEAD request: its response has headers only
        self.conn: Upstream | None = None
        self.started = time.monotonic()
        self.revision: Revision | None = None
        self.backend: Backend | None = None
        self.attempts = 0
        self.gone = False  # the client went away; finish quietly
        self.sent = False  # some response bytes reached the client


class ClientConnection(asyncio.Protocol):
    """A client's connection on the service port: parses requests, one at a time."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.active: Exchange | None = None
        self.pending: deque[Exchange] = deque()
        self.closed = False
        self._chunk = b""
        self._raw: list[bytes] = []
        self._in_message = False
        self._clean = True
        self._done_in_chunk = 0
        self._completed: list[_Parsed] = []
        self._url: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._expect = False
        self._auth: bytes | None = None
        self._paused: Upstream | None = None

    # -- asyncio.Protocol ----------------------------------------------------------

    def pause_writing(self) -> None:
        # The client reads slower than the replica answers: stop reading the replica
        # rather than buffering its whole response here.
        conn = self.active.conn if self.active is not None else None
        if conn is not None and conn.transport is not None:
            conn.transport.pause_reading()
            self._paused = conn

    def resume_writing(self) -> None:
        conn, self._paused = self._paused, None
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.transport.resume_reading()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        paused, self._paused = self._paused, None
        if paused is not None and paused.transport is not None:
            paused.transport.abort()  # half a response nobody will read
        if self.active is not None:
            self.active.gone = True
        for ex in self.pending:
            ex.gone = True
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self._chunk = data
        self._done_in_chunk = 0
        if self._in_message:
            self._raw.append(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            if self._too_large:
                self._reply_and_close(413, "request body over "
                                           f"{self.front.max_body / 2**20:g} MiB")
            else:
                self._reply_and_close(400, f"malformed HTTP request: {err}")
            return
        done = self._completed
        if not done:
            return
        self._completed = []
        exact = len(done) == 1 and done[0][0] and not self._in_message
        for clean, raw, method, url, headers, body, keep, allowed in done:
            # The common case: the chunks hold exactly this request; forward them as is.
            request = (raw[0] if len(raw) == 1 else b"".join(raw)) if exact and clean \
                else _rebuild(method, url, headers, body)
            self._accept(Exchange(self, request, keep, method == b"HEAD", not allowed))

    # -- httptools callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._clean = self._done_in_chunk == 0
        self._raw = [self._chunk]
        self._url = []
        self._headers = []
        self._body = []
        self._size = 0
        self._expect = False
        self._auth = None

    def on_url(self, url: bytes) -> None:
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 6 and name.lower() == b"expect":
            self._expect = True
        elif len(name) == 13 and name.lower() == b"authorization":
            self._auth = value
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._expect and self.transport is not None:
            # We read the body ourselves; the replica never sees the Expect header.
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._clean = False

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.front.max_body:
            self._too_large = True
            raise ValueError("request body too large")  # stops the parser
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._done_in_chunk += 1
        url = b"".join(self._url)
        self._completed.append((self._clean, self._raw, self.parser.get_method(), url,
                                self._headers, self._body, self.parser.should_keep_alive(),
                                self.front.authorized(self._auth,
                                                      admin=url.startswith(ADMIN_PREFIX))))

    # -- exchanges -----------------------------------------------------------------

    def _accept(self, ex: Exchange) -> None:
        if self.active is None:
            self._start(ex)
        else:
            self.pending.append(ex)

    def _start(self, ex: Exchange) -> None:
        self.active = ex
        if ex.denied:  # every path, health and metrics too: probes go to the replicas
            if not self.closed and self.transport is not None:
                admin = ex.request.startswith(ADMIN_PREFIX, ex.request.find(b" ") + 1)
                self.transport.write(error_response(
                    401, _ADMIN_UNAUTHORIZED if admin else _UNAUTHORIZED,
                    keep_alive=ex.keep_alive,
                    extra="www-authenticate: Bearer\r\n"))
            self.finished(ex, ex.keep_alive)
        else:
            self.front.admit(ex)

    def finished(self, ex: Exchange, keep_alive: bool) -> None:
        """The response to ``ex`` was written in full."""
        self.active = None
        if self.closed:
            return
        if not keep_alive:
            if self.transport is not None:
                self.transport.close()
            return
        if self.pending:
            self._start(self.pending.popleft())

    def reply(self, ex: Exchange, code: int, message: str) -> None:
        """Answer ``ex`` from the front itself (an error) and move on."""
        if not self.closed and self.transport is not None:
            self.transport.write(error_response(code, message, keep_alive=ex.keep_alive))
        self.finished(ex, ex.keep_alive)

    def _reply_and_close(self, code: int, message: str) -> None:
        if self.transport is not None:
            self.transport.write(error_response(code, message, keep_alive=False))
            self.transport.close()
        self.closed = True


def _rebuild(method: bytes, url: bytes, headers: list[tuple[bytes, bytes]],
             body: list[bytes]) -> bytes:
    """A request in HTTP/1.1 form from its parsed parts (pipelined requests, Expect)."""
    payload = b"".join(body)
    lines = [method, b" ", url, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if name.lower() in (b"content-length", b"transfer-encoding", b"expect"):
            continue
        lines += (name, b": ", value, b"\r\n")
    lines += (b"content-length: ", str(len(payload)).encode(), b"\r\n\r\n", payload)
    return b"".join(lines)
