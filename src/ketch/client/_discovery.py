"""Finding the control plane for this ``KETCH_HOME``, starting one if none runs.

Order: ``KETCH_HOST`` if set; else the server recorded in ``server.json`` if it
answers; else start ``ketch server --background`` for this home (detached, so
work outlives the caller, as ``ray.init()`` does) and wait until it is ready.
A file lock keeps two concurrent callers from starting two servers.
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

__all__ = ["Endpoint", "find_server", "start_background_server"]

_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str | None = None


def _answers(url: str, token: str | None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(f"{url}/readyz", timeout=2.0, headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


def _recorded(home: Path) -> Endpoint | None:
    from ketch.server.run import ServerInfo

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


def start_background_server(settings: Settings) -> Endpoint:
    settings.home.mkdir(parents=True, exist_ok=True)
    lock_path = settings.home / "server.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _recorded(settings.home)
        if found is not None:
            return found
        log_path = settings.home / "server.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ketch.cli", "server", "--port", "0", "--background"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, "KETCH_HOME": str(settings.home)}, close_fds=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            found = _recorded(settings.home)
            if found is not None:
                return found
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise UnavailableError(f"the background ketch server exited with code "
                                       f"{proc.returncode}; its log ({log_path}):\n{tail}")
            time.sleep(0.05)
        raise UnavailableError(f"the background ketch server did not become ready in "
                               f"{_START_TIMEOUT:.0f}s; see {log_path}")
