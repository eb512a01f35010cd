"""The processes behind an InferenceService, as executor work units, and the
controller's side of the front's admin channel.

Every process is claimed in the resource's status (its ``unitId``) before it is
submitted and its handle is written after, so a control plane that restarts finds
it again with ``executor.lookup`` and adopts it instead of starting a twin.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from ketch.core.errors import KetchError
from ketch.core.executors import Handle, ResourceRequest, UnitState, WorkUnit
from ketch.core.runtime import Runtime

__all__ = ["FrontClient", "free_port", "front_unit", "handle_of", "log_tail", "replica_ready",
           "replica_unit", "socket_dir", "stop_unit", "token_digest", "unit_state"]

log = logging.getLogger("ketch.serving")

# A unix socket path must fit in sun_path (108 bytes on Linux) with room for names.
_MAX_SOCKET_DIR = 80


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def socket_dir(home: Path, uid: str) -> Path:
    """Where one service's unix sockets live: under ``KETCH_HOME`` when the path is
    short enough for a socket name, else a private directory in the temp dir."""
    path = home / "run" / "serving" / uid[:13]
    if len(str(path)) > _MAX_SOCKET_DIR:
        digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"ketch-{digest}" / uid[:13]
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    return path


def token_digest(token: str | None) -> str | None:
    """What a front checks bearer tokens against: the token's SHA-256, so the front's
    environment and config never hold the token itself."""
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def front_unit(*, unit_id: str, service: str, port: int, admin: str, log_key: str,
               token: str | None) -> WorkUnit:
    """The front process; it holds no CPU slot (it would starve Jobs otherwise). With
    ``token`` it requires that bearer token from its first request on (the controller's
    config pushes keep it current)."""
    digest = token_digest(token)
    return WorkUnit(unit_id=unit_id, command=[
        sys.executable, "-m", "ketch.serving._front", "--service", service,
        "--port", str(port), "--admin", admin],
        env={"KETCH_FRONT_TOKEN_SHA256": digest} if digest else {},
        resources=ResourceRequest(cpu=0.0), log_key=log_key)


def replica_unit(*, unit_id: str, name: str, model_dir: str, fmt: str, uds: str,
                 args: list[str], resources: ResourceRequest, log_key: str) -> WorkUnit:
    """One model server replica listening on a unix socket; ``args`` are its options
    from the spec (batcher, logger, transformer)."""
    return WorkUnit(unit_id=unit_id, command=[
        sys.executable, "-m", "ketch.serving.modelserver", "--name", name,
        "--model-dir", model_dir, "--format", fmt, "--uds", uds, *args],
        resources=resources, log_key=log_key)


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


def unit_state(runtime: Runtime, unit: dict[str, Any]) -> UnitState | None:
    """Running, Succeeded, Failed, Lost; None when the claimed unit never started."""
    handle = handle_of(runtime, unit)
    if handle is None:
        return None
    return runtime.executor.poll(handle).state


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


def _unix_client(path: str, timeout: float) -> httpx.Client:
    # A unix socket carries no TLS and no proxy: without verify and trust_env httpx
    # builds no SSL context and reads no proxy settings, which cost tens of
    # milliseconds of CPU per client (most of an idle service's cost when the stats
    # poll made a client every second).
    return httpx.Client(transport=httpx.HTTPTransport(uds=path, verify=False),
                        timeout=timeout, trust_env=False)


def replica_ready(uds: str) -> bool:
    """Whether the model server on ``uds`` answers ``/v2/health/ready`` with 200."""
    try:
        with _unix_client(uds, 1.0) as client:
            return client.get("http://replica/v2/health/ready").is_success
    except httpx.HTTPError:
        return False


class FrontClient:
    """The controller's end of a front's admin socket: one kept-alive connection,
    reused by every poll (reopened after an error, say a restarted front)."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = _unix_client(self.admin, 2.0)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def stats(self, seconds: int) -> dict[str, Any] | None:
        """The front's measurements, or None when it does not answer."""
        try:
            reply = self._client().get("http://front/stats", params={"seconds": seconds})
        except httpx.HTTPError:
            self.close()
            return None
        return reply.json() if reply.is_success else None

    def configure(self, config: dict[str, Any]) -> bool:
        """Push the routing table; False when the front does not take it."""
        try:
            reply = self._client().put("http://front/config", content=json.dumps(config))
        except httpx.HTTPError:
            self.close()
            return False
        return reply.is_success
