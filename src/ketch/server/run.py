"""Running the server: bind, write ``server.json`` for discovery, serve until stopped.

``server.json`` in ``KETCH_HOME`` tells CLIs and SDK clients of the same home
where the control plane listens (written once it is ready, removed on a clean
exit; a stale one is detected by its pid).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ketch.core.config import Settings
from ketch.core.errors import KetchError

__all__ = ["ServerInfo", "bind_socket", "is_loopback", "serve"]

log = logging.getLogger("ketch.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind now, so a busy port is one clear error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only
    # then, and without it Nagle plus delayed ACKs add ~40 ms to every reply on a
    # kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise KetchError(f"cannot listen on {host}:{port}: {err.strerror or err}; "
                         f"is another ketch running? (try --port)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class ServerInfo:
    """Reading and writing ``KETCH_HOME/server.json``."""

    def __init__(self, home: Path) -> None:
        self.path = home / "server.json"

    def read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)

    def remove_if_mine(self) -> None:
        data = self.read()
        if data is not None and data.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)


def _token_for(settings: Settings, host: str) -> str | None:
    """Loopback needs no token unless one is configured; any other address does."""
    if settings.token:
        return settings.token
    if is_loopback(host):
        return None
    path = settings.home / "token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080,
          mode: str = "server", announce: Any = None, dashboard: bool = True) -> None:
    """Serve the API (and dashboard) for ``settings`` until SIGINT/SIGTERM."""
    import uvicorn

    from ketch.core.runtime import Runtime
    from ketch.server.app import create_app
    from ketch.server.components import load_components

    started = time.time()
    settings.home.mkdir(parents=True, exist_ok=True)
    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    token = _token_for(settings, host)
    runtime = Runtime(settings, load_components())
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{actual_port}"
    info = ServerInfo(settings.home)

    def _announce() -> None:
        info.write({"url": url if not host.startswith("0.") else
                    f"http://127.0.0.1:{actual_port}", "pid": os.getpid(), "mode": mode,
                    "started": started, "token": token})
        if announce is not None:
            announce(url, token is not None and settings.token is None
                     and str(settings.home / "token"))

    app = create_app(runtime, token=token, on_ready=_announce, dashboard=dashboard)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=2)
    server = _server_class()(config)
    try:
        server.run(sockets=[sock])
    finally:
        info.remove_if_mine()
        sock.close()


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, which would
        kill the process before ``serve`` cleans up; a handled signal is a clean
        exit here (status 0), as for other daemons."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit)
                        for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server
