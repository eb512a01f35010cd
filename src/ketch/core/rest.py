"""The one REST-client setup: discovery, auth and the httpx client, for every face.

``ketch.Client``, the CLI (through it) and every component's SDK (the registry's
``ModelRegistry``, ...) connect with ``connect()``: one place decides which server to
talk to, which bearer token to send and how the HTTP client is built.

Discovery order: ``KETCH_HOST`` if set; else the server recorded in ``server.json`` if it
answers; else start ``ketch server --background`` for this home (detached, so
work outlives the caller, as ``ray.init()`` does) and wait until it is ready.
A file lock keeps two concurrent callers from starting two servers, and no
caller starts one while a control plane holds the home's lock (``ketch up``
starting or restarting, say): it waits for that one's ``server.json`` instead.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ketch.core.config import Settings
from ketch.core.errors import UnavailableError
from ketch.core.home import HomeLock, ServerInfo

__all__ = ["WITHOUT_SPEC_HEADER", "Endpoint", "RestSession", "connect", "find_server",
           "start_background_server"]

# A watch request with this header set to "true" gets each object without its ``spec``
# (ketch's own projection, as Kubernetes' PartialObjectMetadata is asked for in a
# header): a client following a pipeline run's status would otherwise decode the run's
# whole IR on every one of its status writes.
WITHOUT_SPEC_HEADER = "X-Ketch-Without-Spec"

_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str | None = None


@dataclass(frozen=True)
class RestSession:
    """Where a client talks to and with which credentials; ``client()`` builds the
    httpx client for a path prefix (``""`` for the resource API,
    ``/api/model_registry/v1`` for the registry's), so every SDK sends the same token
    the same way. The token never goes into a URL or a log line."""

    url: str
    token: str | None
    timeout: float = 30.0

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": "ketch-client"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def client(self, prefix: str = "", *,
               params: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url + prefix, headers=self.headers(),
                            timeout=self.timeout, params=params)


def connect(host: str | None = None, *, token: str | None = None, timeout: float = 30.0,
            autostart: bool = True, settings: Settings | None = None) -> RestSession:
    """The session of ``host`` (a URL or ``host:port``), else of ``KETCH_HOST``, else of
    this ``KETCH_HOME``'s server (started in the background unless ``autostart`` is off).

    Token: ``token``, else the one recorded for that server (``KETCH_TOKEN`` with
    ``KETCH_HOST``; the local server's own), else ``KETCH_TOKEN``."""
    settings = settings or Settings.from_env()
    if host:
        endpoint = Endpoint(host if "://" in host else f"http://{host}", None)
    else:
        endpoint = find_server(settings, autostart=autostart)
    return RestSession(endpoint.url.rstrip("/"), token or endpoint.token or settings.token,
                       timeout)


def _answers(url: str, token: str | None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(f"{url}/readyz", timeout=2.0, headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


def _recorded(home: Path) -> Endpoint | None:
    data = ServerInfo(home).read()
    if not data or not data.get("url"):
        return None
    pid = int(data.get("pid") or 0)
    if pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    endpoint = Endpoint(str(data["url"]), data.get("token") or None)
    return endpoint if _answers(endpoint.url, endpoint.token) else None


def find_server(settings: Settings, *, autostart: bool = True) -> Endpoint:
    """The endpoint to talk to; see the module docstring."""
    if settings.host:
        url = settings.host if "://" in settings.host else f"http://{settings.host}"
        return Endpoint(url.rstrip("/"), settings.token)
    found = _recorded(settings.home)
    if found is not None:
        return found
    if not autostart:
        raise UnavailableError(f"no ketch server runs for KETCH_HOME={settings.home}; "
                               "start one with `ketch up` or `ketch server`")
    return start_background_server(settings)


def _spawn(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ketch.cli", "server", "--port", "0", "--background"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "KETCH_HOME": str(settings.home)}, close_fds=True)


def start_background_server(settings: Settings) -> Endpoint:
    settings.home.mkdir(parents=True, exist_ok=True)
    lock_path = settings.home / "server.lock"
    home_lock = HomeLock(settings.home)
    log_path = settings.home / "server.log"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc: subprocess.Popen[bytes] | None = None
        waiting_for: object = None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            found = _recorded(settings.home)
            if found is not None:
                return found
            holder = home_lock.holder()
            if holder is not None and (proc is None or holder.get("pid") != proc.pid):
                # Another control plane owns this home (maybe still starting): use it.
                if waiting_for != holder.get("pid"):
                    waiting_for = holder.get("pid")
                    print(f"ketch: waiting for the control plane (pid {waiting_for}) "
                          f"that holds KETCH_HOME={settings.home}", file=sys.stderr)
                    deadline = time.monotonic() + _START_TIMEOUT
            elif proc is None:
                proc = _spawn(settings, log_path)
            elif proc.poll() is not None and home_lock.holder() is None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise UnavailableError(f"the background ketch server exited with code "
                                       f"{proc.returncode}; its log ({log_path}):\n{tail}")
            time.sleep(0.05)
        if waiting_for is not None:
            raise UnavailableError(f"the ketch control plane (pid {waiting_for}) holding "
                                   f"KETCH_HOME={settings.home} did not answer in "
                                   f"{_START_TIMEOUT:.0f}s; stop it with `ketch stop`")
        raise UnavailableError(f"the background ketch server did not become ready in "
                               f"{_START_TIMEOUT:.0f}s; see {log_path}")
