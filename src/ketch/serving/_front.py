"""The front of one InferenceService: ``python -m ketch.serving._front``.

One process per service (an executor ``serves`` unit), listening on the address the
executor chose for it (``KETCH_UNIT_HOST``/``KETCH_UNIT_PORT``; its ``status.url``),
forwarding each HTTP/1.1 request to a replica (a model server at the address its own
unit was given, ``host:port`` or ``unix:PATH``; on the local backend, over the unix
socket it gave that unit besides its port: ``routes_to``) over kept-alive pooled
connections. It is the hot path, so it is a bare ``asyncio.Protocol`` on ``httptools``:
the request's bytes are forwarded as received and the response's bytes are relayed as
they arrive, with one header added (``ketch-revision``); no JSON is parsed and nothing
is buffered beyond one request.

The service port's connections are ``_front_http``; the policies (canary split, least
outstanding requests, bounded queue) live in ``_front_pool``. The controller drives
the front through admin routes on that same port, under ``/ketch/admin/``, which take
the front's own admin credential (never the platform token; ``_front_admin``):
``PUT /ketch/admin/config`` pushes the routing table, ``GET /ketch/admin/stats`` reads
the measurements for the autoscaler. ``GET /metrics`` on the service port answers the
front's Prometheus metrics.

A replica that refuses connections (killed) is taken out of rotation at once and the
request is retried on another replica of the same revision, or held until one is up;
a request that was sent on a kept-alive connection and got no byte back is retried
too (the replica may have closed the idle connection as it was sent), at most
``_ATTEMPTS`` times. Requests in flight on a replica that dies answer 502.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import importlib
import os
import signal
import socket
import sys
import time
from http import HTTPStatus
from typing import Any

import httptools

from ketch.serving._front_admin import (
    METRICS_TYPE,
    admin_answer,
    open_stream,
    routes_to,
    service_metrics,
)
from ketch.serving._front_http import ADMIN_PREFIX, ClientConnection, Exchange
from ketch.serving._front_pool import Backend, Revision, Router

__all__ = ["Front", "main"]

_ATTEMPTS = 3
_TICK = 1.0
_PROBE_PATH = b"/v2/health/ready"


class Upstream(asyncio.Protocol):
    """A connection to one replica, reused for request after request."""

    def __init__(self, front: Front, backend: Backend) -> None:
        self.front = front
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.reused = False  # sent a request before: it may have gone stale while idle
        self.got = False  # some response bytes arrived for the current exchange
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.backend.conns.add(self)

    def send(self, ex: Exchange) -> None:
        self.exchange = ex
        ex.conn = self
        self.got = False
        self.sent_at = time.monotonic()
        assert self.transport is not None
        self.transport.write(ex.request)

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:  # nothing asked: a confused peer; drop the connection
            if self.transport is not None:
                self.transport.abort()
            return
        if not self.got:
            self.got = True
            end = data.find(b"\r\n")
            if end > 0:
                data = data[:end + 2] + ex.revision.header + data[end + 2:]  # type: ignore[union-attr]
        if not ex.gone:
            ex.sent = True
            ex.client.transport.write(data)  # type: ignore[union-attr]
        if ex.head:
            self._head_response(ex, data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.exchange = None
            self.front.upstream_broken(ex, self, "sent a malformed response")

    def _head_response(self, ex: Exchange, data: bytes) -> None:
        # The parser cannot be told a response has no body, so a HEAD's response ends
        # at its blank line and the connection is not reused.
        if b"\r\n\r\n" in data:
            self.exchange = None
            code = int(data[9:12]) if data[9:12].isdigit() else 0
            self.front.finish(ex, self, code, True)

    def on_message_complete(self) -> None:
        ex = self.exchange
        if ex is None:
            return
        self.exchange = None
        self.reused = True
        self.front.finish(ex, self, self.parser.get_status_code(),
                          self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        backend = self.backend
        backend.conns.discard(self)
        with contextlib.suppress(ValueError):
            backend.idle.remove(self)
        ex = self.exchange
        if ex is not None:
            self.exchange = None
            if not self.got and self.reused and ex.attempts < _ATTEMPTS:
                # Sent on a kept-alive connection the replica closed (or died with):
                # nothing came back, so it is safe to send again.
                self.front.requeue(ex)
            else:
                self.front.upstream_broken(ex, self, "closed the connection")


class Front:
    """The service's router: admission, replica choice, relaying, measurements."""

    def __init__(self, *, namespace: str, service: str, max_body_mb: float = 256.0) -> None:
        self.router = Router()
        # The whole request is held before it is sent on (so it can be retried): bound
        # it, as the model server bounds its own.
        self.max_body = int(max_body_mb * 2**20)
        self.namespace = namespace
        self.service = service
        self.loop = asyncio.get_running_loop()
        self.rejected = 0
        self._probing: set[str] = set()
        # The platform's bearer token as its SHA-256 (None: the platform needs none).
        # Set from the environment at start, so no request is let through before the
        # controller's first config push, and kept current by each push.
        digest = os.environ.get("KETCH_FRONT_TOKEN_SHA256")
        self.token_sha256: bytes | None = bytes.fromhex(digest) if digest else None
        # The admin routes' credential, the controller's own for this front (its SHA-256,
        # from the environment: never argv). Without one the admin API refuses everyone.
        admin = os.environ.get("KETCH_FRONT_ADMIN_SHA256")
        self.admin_sha256: bytes | None = bytes.fromhex(admin) if admin else None
        # The header line the front's own requests to replicas carry (readiness probes,
        # metrics scrapes): the service's replica credential, pushed by the controller
        # where there is a platform token (replicas then refuse requests without it or
        # the token); empty without one.
        self.replica_auth = b""

    def authorized(self, header: bytes | None, *, admin: bool = False) -> bool:
        """Whether an ``Authorization`` header value carries the platform's token, or
        for an admin route the front's admin credential (compared in constant time, on
        digests of equal length)."""
        want = self.admin_sha256 if admin else self.token_sha256
        if want is None:
            return not admin
        scheme, _, credential = (header or b"").partition(b" ")
        offered = hashlib.sha256(credential.strip()).digest()
        return scheme.lower() == b"bearer" and hmac.compare_digest(offered, want)

    # -- admission -----------------------------------------------------------------

    def admit(self, ex: Exchange) -> None:
        """A new request: local routes, else choose a revision and send or queue it."""
        request = ex.request
        if request.startswith(b"GET /metrics ") or request.startswith(b"GET /metrics?"):
            self.loop.create_task(self._metrics(ex))
            return
        if request.startswith(ADMIN_PREFIX, request.find(b" ") + 1):
            self._admin(ex)
            return
        router = self.router
        rev = router.choose()
        if rev is None:
            if router.configured:
                ex.client.reply(ex, 503, f"inference service {self.service} has no "
                                         "revision taking traffic")
                return
            if len(router.unrouted) >= router.queue_limit:
                ex.client.reply(ex, 503, f"inference service {self.service} is starting "
                                         f"and {len(router.unrouted)} requests wait already")
                return
            router.unrouted.append(ex)  # the controller has not pushed routes yet
            return
        ex.revision = rev
        rev.requests += 1
        now = time.monotonic()
        rev.last_request = now
        rev.add_concurrency(1, now)
        self._route(ex, rev, fresh=True)

    def _admin(self, ex: Exchange) -> None:
        code, body, ctype = admin_answer(self, ex.request)
        if not ex.gone and ex.client.transport is not None:
            ex.client.transport.write(
                f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\ncontent-type: {ctype}\r\n"
                f"content-length: {len(body)}\r\n\r\n".encode() + body)
        ex.client.finished(ex, ex.keep_alive)

    async def _metrics(self, ex: Exchange) -> None:
        body = await service_metrics(self)
        if not ex.gone and ex.client.transport is not None:
            ex.client.transport.write(
                f"HTTP/1.1 200 OK\r\ncontent-type: {METRICS_TYPE}\r\ncontent-length: "
                f"{len(body)}\r\n\r\n".encode() + body)
        ex.client.finished(ex, ex.keep_alive)

    def _route(self, ex: Exchange, rev: Revision, *, fresh: bool) -> None:
        backend = rev.pick(self.router.container_concurrency)
        if backend is not None:
            self._send(ex, backend)
        elif fresh and len(rev.waiters) >= self.router.queue_limit:
            self.rejected += 1
            rev.add_concurrency(-1, time.monotonic())
            rev.observe(503, time.monotonic() - ex.started)
            ex.client.reply(ex, 503, f"inference service {self.service} is overloaded: "
                                     f"{rev.in_flight} requests in flight and "
                                     f"{len(rev.waiters)} queued (queue limit "
                                     f"{self.router.queue_limit})")
        else:
            rev.waiters.append(ex)

    def _send(self, ex: Exchange, backend: Backend) -> None:
        ex.backend = backend
        ex.attempts += 1
        backend.outstanding += 1
        rev = backend.revision
        rev.in_flight += 1
        if backend.idle:
            backend.idle.pop().send(ex)
        else:
            self.loop.create_task(self._connect(ex, backend))

    async def _connect(self, ex: Exchange, backend: Backend) -> None:
        try:
            conn = await _open(self.loop, lambda: Upstream(self, backend), backend.address)
        except OSError as err:
            # Refused or gone: the replica is dead or not listening. Out of rotation at
            # once; the request was never sent, so it goes to another replica.
            backend.down = True
            self._release(ex, backend)
            ex.attempts -= 1
            if ex.gone:
                self._done(ex)
                return
            self._log(f"replica {backend.id} refused a connection ({err}); out of rotation")
            self._route(ex, ex.revision, fresh=False)  # type: ignore[arg-type]
            return
        if ex.gone:  # the client left while we connected: keep the connection for later
            self._release(ex, backend)
            backend.idle.append(conn)
            self._done(ex)
            return
        conn.send(ex)

    # -- completion ----------------------------------------------------------------

    def finish(self, ex: Exchange, conn: Upstream, code: int, keep_alive: bool) -> None:
        ex.conn = None
        backend = conn.backend
        backend.served += 1
        self._release(ex, backend)
        rev = backend.revision
        now = time.monotonic()
        rev.add_concurrency(-1, now)
        rev.observe(code, now - ex.started)
        if keep_alive and not ex.head and not backend.down and conn.transport is not None \
                and backend in backend.revision.backends:
            backend.idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()
        ex.client.finished(ex, keep_alive and ex.keep_alive)
        self._drain(backend)

    def requeue(self, ex: Exchange) -> None:
        backend = ex.backend
        assert backend is not None
        self._release(ex, backend)
        if ex.gone:
            self._done(ex)
        else:
            self._route(ex, ex.revision, fresh=False)  # type: ignore[arg-type]

    def upstream_broken(self, ex: Exchange, conn: Upstream, why: str) -> None:
        backend = conn.backend
        self._release(ex, backend)
        if conn.transport is not None:
            conn.transport.abort()
        self._log(f"replica {backend.id} {why} during a request")
        rev = backend.revision
        now = time.monotonic()
        rev.add_concurrency(-1, now)
        rev.observe(502, now - ex.started)
        if ex.sent:  # half a response is out: the client's connection cannot be reused
            if ex.client.transport is not None:
                ex.client.transport.abort()
            ex.client.finished(ex, False)
        else:
            ex.client.reply(ex, 502, f"replica {backend.id} of {rev.name} {why} before "
                                     "answering")
        self._drain(backend)

    def _release(self, ex: Exchange, backend: Backend) -> None:
        backend.outstanding -= 1
        backend.revision.in_flight -= 1
        ex.backend = None

    def _done(self, ex: Exchange) -> None:
        rev = ex.revision
        if rev is not None:
            rev.add_concurrency(-1, time.monotonic())
        ex.client.finished(ex, False)

    def _drain(self, backend: Backend | None = None) -> None:
        """Hand queued requests to replicas that have room."""
        revs = [backend.revision] if backend is not None else list(self.router.revisions.values())
        limit = self.router.container_concurrency
        for rev in revs:
            waiters = rev.waiters
            while waiters:
                if waiters[0].gone:
                    self._done(waiters.popleft())
                    continue
                target = rev.pick(limit)
                if target is None:
                    break
                self._send(waiters.popleft(), target)

    # -- the controller's side -------------------------------------------------------

    def configure(self, config: dict[str, Any]) -> None:
        if "tokenSha256" in config:
            digest = config["tokenSha256"]
            self.token_sha256 = bytes.fromhex(digest) if digest else None
        if "replicaCredential" in config:
            credential = config["replicaCredential"]
            self.replica_auth = (b"authorization: Bearer " + credential.encode() + b"\r\n"
                                 if credential else b"")
        removed, requeue = self.router.configure(config)
        for backend in removed:
            backend.down = True  # no new requests; those in flight finish
            for conn in list(backend.idle):
                if conn.transport is not None:
                    conn.transport.close()
            backend.idle.clear()
        for ex in requeue:
            if ex.revision is not None:
                ex.revision.add_concurrency(-1, time.monotonic())
            ex.revision = None
            self.admit(ex)
        waiting = list(self.router.unrouted)
        self.router.unrouted.clear()
        for ex in waiting:
            self.admit(ex)
        self._drain()

    async def tick(self) -> None:
        """Once a second: close measurement buckets, expire waits, probe down replicas."""
        while True:
            await asyncio.sleep(_TICK)
            now = time.monotonic()
            timeout = self.router.timeout
            for rev in self.router.revisions.values():
                rev.close_bucket(now)
                while rev.waiters and now - rev.waiters[0].started > timeout:
                    ex = rev.waiters.popleft()
                    rev.add_concurrency(-1, now)
                    rev.observe(503, now - ex.started)
                    ex.client.reply(ex, 503, f"no replica of {rev.name} became ready in "
                                             f"{timeout:.0f}s")
                for backend in rev.backends:
                    for conn in list(backend.conns):
                        if conn.exchange is not None and now - conn.sent_at > timeout:
                            self._expire(conn, timeout)
                    if backend.down and backend.id not in self._probing:
                        self._probing.add(backend.id)
                        self.loop.create_task(self._probe(backend))
            while self.router.unrouted and now - self.router.unrouted[0].started > timeout:
                ex = self.router.unrouted.popleft()
                ex.client.reply(ex, 503, "no route pushed by the controller in "
                                         f"{timeout:.0f}s")

    def _expire(self, conn: Upstream, timeout: float) -> None:
        ex = conn.exchange
        conn.exchange = None
        assert ex is not None
        backend = conn.backend
        self._release(ex, backend)
        if conn.transport is not None:
            conn.transport.abort()
        rev = backend.revision
        now = time.monotonic()
        rev.add_concurrency(-1, now)
        rev.observe(504, now - ex.started)
        if ex.sent:
            if ex.client.transport is not None:
                ex.client.transport.abort()
            ex.client.finished(ex, False)
        else:
            ex.client.reply(ex, 504, f"replica {backend.id} did not answer in {timeout:.0f}s")

    async def _probe(self, backend: Backend) -> None:
        """Readiness of a replica taken out of rotation: back in when ready again."""
        try:
            reader, writer = await asyncio.wait_for(open_stream(backend.address), 1.0)
            writer.write(b"GET " + _PROBE_PATH + b" HTTP/1.1\r\nhost: replica\r\n"
                         + self.replica_auth + b"connection: close\r\n\r\n")
            line = await asyncio.wait_for(reader.readline(), 2.0)
            writer.close()
            if line.split(b" ")[1:2] == [b"200"] and backend in backend.revision.backends:
                backend.down = False
                self._log(f"replica {backend.id} is ready again; back in rotation")
                self._drain(backend)
        except (OSError, TimeoutError, IndexError):
            pass
        finally:
            self._probing.discard(backend.id)

    def _log(self, message: str) -> None:
        print(f"front {self.service}: {message}", file=sys.stderr, flush=True)


async def _open(loop: asyncio.AbstractEventLoop, factory: Any, address: str) -> Upstream:
    path, tcp = routes_to(address)
    if path is not None:
        try:
            _, conn = await loop.create_unix_connection(factory, path)
            return conn  # type: ignore[no-any-return]
        except OSError:
            if tcp is None:
                raise
    assert tcp is not None
    _, conn = await loop.create_connection(factory, *tcp)
    return conn  # type: ignore[no-any-return]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ketch.serving._front",
                                description="The router in front of an InferenceService's "
                                            "replicas.")
    p.add_argument("--service", required=True, help="NAMESPACE/NAME, for logs and metrics")
    p.add_argument("--port", type=int, default=None,
                   help="the service port (default: KETCH_UNIT_PORT, the one the executor "
                        "chose)")
    p.add_argument("--host", default=os.environ.get("KETCH_UNIT_HOST") or "127.0.0.1",
                   help="address to bind (default: KETCH_UNIT_HOST, else 127.0.0.1)")
    p.add_argument("--max-body-mb", type=float, default=256.0, metavar="MB",
                   help="largest request body accepted (413 beyond)")
    return p


async def _serve(args: argparse.Namespace) -> int:
    if args.port is None:
        value = os.environ.get("KETCH_UNIT_PORT", "")
        if not value.isdigit():
            print(f"front: no --port and KETCH_UNIT_PORT is {value!r}, not a port number",
                  file=sys.stderr, flush=True)
            return 2
        args.port = int(value)
    namespace = args.service.partition("/")[0]
    front = Front(namespace=namespace, service=args.service, max_body_mb=args.max_body_mb)
    loop = front.loop
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as err:
        print(f"front: cannot listen on {args.host}:{args.port}: {err.strerror or err}",
              file=sys.stderr, flush=True)
        return 2
    server = await loop.create_server(lambda: ClientConnection(front), sock=sock,
                                      backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ticker = loop.create_task(front.tick())
    print(f"KETCH_FRONT_PORT={sock.getsockname()[1]}", flush=True)
    await stop.wait()
    ticker.cancel()
    server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the front until SIGTERM; returns the exit status (2: cannot listen)."""
    args = _parser().parse_args(argv)
    try:  # optional: a faster event loop where installed
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.run(_serve(args))
    return int(uvloop.run(_serve(args)))


if __name__ == "__main__":
    sys.exit(main())
