"""The processes behind an InferenceService, as executor server units (the backend
chooses their addresses; the controller reads them with ``executor.endpoint``), and the
controller's side of the front's admin routes.

Every process is claimed in the resource's status (its ``unitId``) before it is
submitted and its handle is written after, so a control plane that restarts finds
it again with ``executor.lookup`` and adopts it instead of starting a twin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sys
from typing import Any

import httpx

from ketch.core.errors import KetchError
from ketch.core.executors import Handle, ResourceRequest, UnitStatus, WorkUnit
from ketch.core.runtime import Runtime

__all__ = ["EXIT_STORAGE_FAILED", "FrontClient", "admin_secret", "endpoint_of", "front_unit",
           "handle_of", "log_tail", "new_front", "replica_ready", "replica_secret",
           "replica_unit", "stop_unit", "token_digest", "unit_status"]

log = logging.getLogger("ketch.serving")

# What the model server exits with when its storage initializer cannot fetch the model
# (modelserver.EXIT_STORAGE_FAILED; not imported, so the controller loads no numpy).
EXIT_STORAGE_FAILED = 3
_ADMIN_CONTEXT = b"ketch-front-admin:"
_REPLICA_CONTEXT = b"ketch-replica:"


def token_digest(token: str | None) -> str | None:
    """What a front checks bearer tokens against: the token's SHA-256, so the front's
    environment and config never hold the token itself."""
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def admin_secret(token: str | None, front: dict[str, Any]) -> str:
    """The credential of one front's admin routes. With a platform token it is derived
    from it (HMAC over the front's unit id), so every control plane holding the token
    knows it and it is stored nowhere; without one (the API itself is open, to this
    host only) it is the random secret kept in the front's record in status."""
    if token:
        return hmac.new(token.encode(), _ADMIN_CONTEXT + str(front["unitId"]).encode(),
                        hashlib.sha256).hexdigest()
    return str(front["secret"])


def replica_secret(token: str | None, service_uid: str) -> str | None:
    """The credential the front and the controller send to a service's replicas (their
    probes, health checks, metrics scrapes) when there is a platform token: an HMAC of
    it over the service's uid, so every control plane holding the token knows it and it
    is stored nowhere. None without a token: replicas then check nothing, as the API
    itself does on loopback without one."""
    if not token:
        return None
    return hmac.new(token.encode(), _REPLICA_CONTEXT + service_uid.encode(),
                    hashlib.sha256).hexdigest()


def new_front(unit_id: str, token: str | None) -> dict[str, Any]:
    """A front's record in status, before its unit is submitted."""
    front: dict[str, Any] = {"unitId": unit_id}
    if not token:
        front["secret"] = secrets.token_hex(32)
    return front


def front_unit(*, unit_id: str, service: str, log_key: str, token: str | None,
               admin: str) -> WorkUnit:
    """The front process, a server unit (the executor chooses its address); it holds
    no CPU slot (it would starve Jobs otherwise). With ``token`` it requires that
    bearer token from its first request on (the controller's config pushes keep it
    current); its admin routes require ``admin`` (both passed as SHA-256 digests in its
    environment, never in argv)."""
    env = {"KETCH_FRONT_ADMIN_SHA256": hashlib.sha256(admin.encode()).hexdigest()}
    digest = token_digest(token)
    if digest:
        env["KETCH_FRONT_TOKEN_SHA256"] = digest
    return WorkUnit(unit_id=unit_id, command=[
        sys.executable, "-m", "ketch.serving._front", "--service", service],
        env=env, resources=ResourceRequest(cpu=0.0), log_key=log_key, serves=True)


def replica_unit(*, unit_id: str, name: str, source: str, fmt: str, args: list[str],
                 resources: ResourceRequest, log_key: str, token: str | None,
                 credential: str | None) -> WorkUnit:
    """One model server replica, a server unit: it fetches the model at ``source`` (a
    storage URI) itself, then loads and serves it at the address the executor chose;
    ``args`` are its options from the spec (batcher, logger, transformer). With
    ``token`` it answers only that bearer token or ``credential`` (the service's
    ``replica_secret``), both given to it as SHA-256 digests in its environment."""
    env: dict[str, str] = {}
    digest = token_digest(token)
    if digest:
        env["KETCH_REPLICA_TOKEN_SHA256"] = digest
        if credential:
            env["KETCH_REPLICA_CREDENTIAL_SHA256"] = hashlib.sha256(
                credential.encode()).hexdigest()
    return WorkUnit(unit_id=unit_id, command=[
        sys.executable, "-m", "ketch.serving.modelserver", "--name", name,
        "--storage-uri", source, "--format", fmt, *args],
        env=env, resources=resources, log_key=log_key, serves=True)


def handle_of(runtime: Runtime, unit: dict[str, Any]) -> Handle | None:
    """The unit's handle: from status, else found by its claimed id (the crash window
    between submit and the status write), else None (claimed but never started)."""
    handle = unit.get("handle")
    if handle:
        return handle  # type: ignore[no-any-return]
    found = runtime.executor.lookup(str(unit["unitId"]))
    if found is not None:
        unit["handle"] = found
    return found


def unit_status(runtime: Runtime, unit: dict[str, Any]) -> UnitStatus | None:
    """What the unit's process is doing (its exit code once it ended); None when the
    claimed unit never started."""
    handle = handle_of(runtime, unit)
    if handle is None:
        return None
    return runtime.executor.poll(handle)


def endpoint_of(runtime: Runtime, unit: dict[str, Any]) -> str | None:
    """Where a server unit listens, as its executor published it."""
    handle = handle_of(runtime, unit)
    return runtime.executor.endpoint(handle) if handle is not None else None


def stop_unit(runtime: Runtime, unit: dict[str, Any], *, grace: float = 3.0) -> None:
    """Stop the unit (SIGTERM, then SIGKILL after ``grace``), keep its log, forget it."""
    handle = handle_of(runtime, unit)
    if handle is None:
        return
    executor = runtime.executor
    try:
        executor.cancel(handle, grace_seconds=grace)
        executor.finalize(handle)
        executor.forget(handle)
    except KetchError:
        log.warning("could not stop unit %s", unit.get("unitId"), exc_info=True)


def log_tail(runtime: Runtime, unit: dict[str, Any]) -> str:
    """The last non-empty line of the unit's log (a model server's load error)."""
    handle = handle_of(runtime, unit)
    if handle is None:
        return ""
    try:
        text = b"".join(runtime.executor.logs(handle)).decode(errors="replace")
    except KetchError:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _client(address: str, timeout: float) -> httpx.Client:
    """A client of a unit's published address: ``host:port`` or ``unix:PATH`` (a
    backend may choose a unix socket on one host)."""
    # No TLS on these hops and no proxy: without verify and trust_env httpx loads no CA
    # bundle and reads no proxy settings, which cost tens of milliseconds of CPU per
    # client (most of an idle service's cost when the stats poll made one every second).
    if address.startswith("unix:"):
        transport = httpx.HTTPTransport(uds=address[5:], verify=False)
        base = "http://unit"
    else:
        transport = httpx.HTTPTransport(verify=False)
        base = f"http://{address.removeprefix('tcp:')}"
    return httpx.Client(transport=transport, base_url=base, timeout=timeout,
                        trust_env=False)


def replica_ready(address: str, credential: str | None = None) -> bool:
    """Whether the model server at ``address`` answers ``/v2/health/ready`` with 200
    (asked with the service's replica ``credential`` where there is one)."""
    headers = {"authorization": f"Bearer {credential}"} if credential else None
    try:
        with _client(address, 1.0) as client:
            return client.get("/v2/health/ready", headers=headers).is_success
    except httpx.HTTPError:
        return False


class FrontClient:
    """The controller's end of a front's admin routes, at the front's published
    address with its admin credential: one kept-alive connection, reused by every poll
    (reopened after an error, say a restarted front)."""

    def __init__(self, address: str, secret: str) -> None:
        self.address = address
        self._auth = {"authorization": f"Bearer {secret}"}
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = _client(self.address, 2.0)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def stats(self, seconds: int) -> dict[str, Any] | None:
        """The front's measurements, or None when it does not answer."""
        try:
            reply = self._client().get("/ketch/admin/stats", params={"seconds": seconds},
                                       headers=self._auth)
        except httpx.HTTPError:
            self.close()
            return None
        if reply.status_code == 401:
            log.warning("the front at %s refused the admin credential", self.address)
        return reply.json() if reply.is_success else None

    def configure(self, config: dict[str, Any]) -> bool:
        """Push the routing table; False when the front does not take it."""
        try:
            reply = self._client().put("/ketch/admin/config", content=json.dumps(config),
                                       headers=self._auth)
        except httpx.HTTPError:
            self.close()
            return False
        return reply.is_success
