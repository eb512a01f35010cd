"""The front's admin channel and its Prometheus metrics.

The admin routes live on the service port under ``/ketch/admin/``, at the address the
executor published for the front, so a controller on another host reaches them as
well. They take the front's own admin credential as a bearer token (the service port's
parser checks it, against ``KETCH_FRONT_ADMIN_SHA256``); the platform token, or none,
is refused with 401:

* ``PUT /ketch/admin/config``: the routing table (see ``Router.configure``); answers
  ``{"version"}``.
* ``GET /ketch/admin/stats?seconds=N``: per revision, the last N one-second buckets of
  average concurrency and request counts, what is in flight and queued, and each
  replica's outstanding requests and whether the front took it out of rotation.

``/metrics`` is the front's own families (per revision: requests by code, latency,
queue depth, in flight, replicas ready) followed by every replica's own (predict time,
batch sizes, ...), each sample labelled with its ``revision`` and ``replica``: one
scrape per service sees the whole service.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ketch.serving._front_pool import LATENCY_BUCKETS, Backend

if TYPE_CHECKING:
    from ketch.serving._front import Front

__all__ = ["ADMIN_PATH", "METRICS_TYPE", "admin_answer", "merge_metrics", "open_stream",
           "render_metrics", "routes_to", "service_metrics"]

METRICS_TYPE = "text/plain; version=0.0.4"
ADMIN_PATH = "/ketch/admin/"
_SCRAPE_TIMEOUT = 2.0
# Where the local executor backend's server units listen (its own constant).
_UNIT_HOST = "127.0.0.1"


def admin_answer(front: Front, request: bytes) -> tuple[int, bytes, str]:
    """Answer one admin request (already authenticated by the service port's parser):
    ``(status, body, content type)``."""
    head, _, body = request.partition(b"\r\n\r\n")
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        for line in lines[1:]:
            if line.partition(":")[0].strip().lower() == "transfer-encoding":
                raise ValueError("send the admin request with a content-length, not chunked")
        return _answer(front, method, target[len(ADMIN_PATH) - 1:], body)
    except ValueError as err:  # a malformed body or query: the controller's bug, say so
        return 400, json.dumps({"error": str(err)}).encode(), "application/json"


def _answer(front: Front, method: str, target: str, body: bytes) -> tuple[int, bytes, str]:
    url = urlsplit(target)
    if method == "PUT" and url.path == "/config":
        config = json.loads(body)
        if not isinstance(config, dict):
            raise ValueError("the config must be a JSON object")
        front.configure(config)
        return 200, json.dumps({"version": front.router.version}).encode(), "application/json"
    if method == "GET" and url.path == "/stats":
        seconds = int(parse_qs(url.query).get("seconds", ["60"])[0])
        return 200, json.dumps(stats(front, seconds)).encode(), "application/json"
    return 404, json.dumps({"error": f"no admin route {method} {url.path}"}).encode(), \
        "application/json"


def stats(front: Front, seconds: int) -> dict[str, Any]:
    """What the autoscaler and the controller read."""
    router = front.router
    return {"version": router.version, "configured": router.configured,
            "rejected": front.rejected, "unrouted": len(router.unrouted),
            "revisions": {name: rev.stats(seconds) for name, rev in router.revisions.items()}}


def render_metrics(front: Front) -> bytes:
    """Prometheus text exposition of the front's per-service metrics."""
    base = f'namespace="{front.namespace}",inferenceservice="{front.service.split("/")[-1]}"'
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")

    revs = list(front.router.revisions.values())
    family("ketch_serving_requests_total", "counter", "Requests answered, by status code")
    for rev in revs:
        for code, count in sorted(rev.codes.items()):
            out.append(f'ketch_serving_requests_total{{{base},revision="{rev.name}",'
                       f'code="{code}"}} {count}\n')
    family("ketch_serving_request_duration_seconds", "histogram",
           "Time from a request's arrival at the front to the end of its response")
    for rev in revs:
        labels = f'{base},revision="{rev.name}"'
        running = 0
        for bound, count in zip(LATENCY_BUCKETS, rev.latency_counts, strict=False):
            running += count
            out.append(f'ketch_serving_request_duration_seconds_bucket{{{labels},'
                       f'le="{bound}"}} {running}\n')
        out.append(f'ketch_serving_request_duration_seconds_bucket{{{labels},le="+Inf"}} '
                   f'{rev.latency_count}\n')
        out.append(f"ketch_serving_request_duration_seconds_sum{{{labels}}} "
                   f"{rev.latency_sum}\n")
        out.append(f"ketch_serving_request_duration_seconds_count{{{labels}}} "
                   f"{rev.latency_count}\n")
    for name, help_text, value in (
            ("ketch_serving_queue_depth", "Requests waiting for a replica",
             lambda r: len(r.waiters)),
            ("ketch_serving_in_flight", "Requests sent to replicas and not yet answered",
             lambda r: r.in_flight),
            ("ketch_serving_replicas_ready", "Replicas in rotation", lambda r: r.up())):
        family(name, "gauge", help_text)
        for rev in revs:
            out.append(f'{name}{{{base},revision="{rev.name}"}} {value(rev)}\n')
    family("ketch_serving_rejected_total", "counter",
           "Requests refused with 503 because the queue was full")
    out.append(f"ketch_serving_rejected_total{{{base}}} {front.rejected}\n")
    return "".join(out).encode()


async def service_metrics(front: Front) -> bytes:
    """The front's metrics and its replicas', as one exposition page."""
    backends = [b for rev in front.router.revisions.values() for b in rev.backends
                if not b.down]
    pages = await asyncio.gather(*(_replica_metrics(b, front.replica_auth) for b in backends))
    return merge_metrics([render_metrics(front).decode(), *pages]).encode()


async def _replica_metrics(backend: Backend, auth: bytes) -> str:
    try:
        reader, writer = await asyncio.wait_for(open_stream(backend.address),
                                                _SCRAPE_TIMEOUT)
        writer.write(b"GET /metrics HTTP/1.1\r\nhost: replica\r\n" + auth
                     + b"connection: close\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), _SCRAPE_TIMEOUT)
        writer.close()
    except (OSError, TimeoutError):
        return ""  # a replica going away: missing from this scrape
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return ""
    return relabel(body.decode(errors="replace"),
                   f'revision="{backend.revision.name}",replica="{backend.id}"')


def relabel(page: str, labels: str) -> str:
    """Add ``labels`` (``a="x",b="y"``) to every sample of a Prometheus text page."""
    out = []
    for line in page.splitlines():
        if not line or line.startswith("#"):
            out.append(line)
            continue
        name, brace, rest = line.partition("{")
        if brace:
            out.append(f"{name}{{{labels},{rest}")
        else:
            metric, _, value = line.partition(" ")
            out.append(f"{metric}{{{labels}}} {value}")
    return "\n".join(out) + "\n"


def merge_metrics(pages: list[str]) -> str:
    """Prometheus text pages as one: each family's HELP and TYPE once, then the samples
    of every page (the exposition format wants a family's samples together)."""
    heads: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for page in pages:
        family = ""
        for line in page.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                family = line.split(" ", 3)[2]
                head = heads.setdefault(family, [])
                if len(head) < 2 and line not in head:
                    head.append(line)
                samples.setdefault(family, [])
            elif line and not line.startswith("#"):
                samples.setdefault(family, []).append(line)
    return "".join("\n".join([*heads.get(f, []), *lines]) + "\n" for f, lines in samples.items())


def routes_to(address: str) -> tuple[str | None, tuple[str, int] | None]:
    """How the front reaches a replica's ``unix:PATH`` or ``[tcp:]HOST:PORT`` address:
    (a unix socket to try first, the TCP host and port to use without one).

    The socket of a ``127.0.0.1:PORT`` address is the one the local executor backend gave
    that server unit besides its port: it gives every server unit, this front included,
    ``KETCH_UNIT_UDS=DIR/<its port>.sock``, so a replica's is ``DIR/PORT.sock``, there
    while its model server listens on it. Controllers pass addresses as the backend
    published them; the shortcut (loopback TCP costs the front about a tenth of its
    requests/s) is the backend's and the front's alone."""
    if address.startswith("unix:"):
        return address[5:], None
    host, _, port = address.removeprefix("tcp:").rpartition(":")
    own = os.environ.get("KETCH_UNIT_UDS")
    if own and host == _UNIT_HOST and port.isdigit():
        return os.path.join(os.path.dirname(own), f"{port}.sock"), (host, int(port))
    return None, (host, int(port))


async def open_stream(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream connection to a replica (see :func:`routes_to`)."""
    path, tcp = routes_to(address)
    if path is not None:
        try:
            return await asyncio.open_unix_connection(path)
        except OSError:
            if tcp is None:
                raise  # no socket (yet): the TCP port, as published
    assert tcp is not None
    return await asyncio.open_connection(*tcp)
