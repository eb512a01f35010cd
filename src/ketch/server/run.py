"""Running the server: lock the home, bind, write ``server.json``, serve until stopped.

One control plane per ``KETCH_HOME``: ``serve`` holds an exclusive ``flock`` on
``KETCH_HOME/control-plane.pid`` for the life of the process (the kernel drops it
when the process dies, however it dies), as PostgreSQL's postmaster holds
``postmaster.pid``. A second server for the same home fails at once naming the
one that runs; clients wait for the holder instead of starting another.
Several control planes on one database, each with its own home, stay supported.

``server.json`` in ``KETCH_HOME`` tells CLIs and SDK clients of the same home
where the control plane listens (written once it is ready, removed on a clean
exit; a stale one is detected by its pid).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ketch.core.config import Settings
from ketch.core.errors import KetchError

# Re-exported: the home's lock and server.json are core's, so the client and the CLI
# find a server without importing this module.
from ketch.core.home import HomeLock, ServerInfo

__all__ = ["HomeLock", "ServerInfo", "bind_socket", "is_loopback", "serve"]

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


_PR_SET_DUMPABLE = 4
# Read once into Settings; kept out of os.environ so nothing the server starts,
# and no later read of its environment, sees them.
_SECRET_ENV = ("KETCH_DATABASE_URL", "KETCH_TOKEN")


def _harden_process() -> None:
    """Keep the server's secrets from other processes of the same user.

    ``PR_SET_DUMPABLE`` 0 makes ``/proc/<pid>/environ`` and ``/proc/<pid>/mem``
    readable by root only and refuses ptrace from the same uid, so a Job running as
    the server's (non-root) user cannot read the database URL the server was started
    with: ``/proc/<pid>/environ`` shows the environment given at exec, which no
    change to ``os.environ`` removes. Children get the flag reset by their exec.
    """
    for name in _SECRET_ENV:
        os.environ.pop(name, None)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_DUMPABLE, 0) failed: %s",
                        os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError):
        log.warning("prctl is not available; /proc/%d/environ stays readable by this user",
                    os.getpid())


def _create_private_sqlite(database_url: str) -> None:
    """Create (or tighten) a SQLite database file as 0600 before the store opens it.

    SQLite gives its ``-wal`` and ``-shm`` files the main file's mode, so the three
    hold Job specs (secrets in ``spec.env``) for this user only.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url)
    except ArgumentError:
        return  # the store reports a bad URL
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, 0o600)


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
    """Serve the API (and dashboard) for ``settings`` until SIGINT/SIGTERM.

    Raises ``ConflictError`` at once when another control plane holds this home.
    """
    started = time.time()
    settings.home.mkdir(parents=True, exist_ok=True)
    # Before binding: with the home taken, a busy port is not the error to report.
    home_lock = HomeLock(settings.home)
    home_lock.acquire("background" if mode == "background" else mode)
    try:
        _serve_locked(settings, host=host, port=port, mode=mode, announce=announce,
                      dashboard=dashboard, started=started)
    finally:
        home_lock.release()


def _serve_locked(settings: Settings, *, host: str, port: int, mode: str, announce: Any,
                  dashboard: bool, started: float) -> None:
    import uvicorn

    from ketch.core.component import load_components
    from ketch.core.runtime import Runtime
    from ketch.server.app import create_app

    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    token = _token_for(settings, host)
    _harden_process()
    _create_private_sqlite(settings.database_url)
    # The effective token (also one made for a non-loopback bind), so what the control
    # plane opens itself (an InferenceService's front) requires this server's credentials.
    runtime = Runtime(dataclasses.replace(settings, token=token), load_components())
    # Built now, not in the app's start-up: a bad executor setting (KETCH_RUN_AS_USER,
    # KETCH_LOG_MAX_BYTES) is then one error line and a non-zero exit, not a traceback.
    _ = runtime.executor
    if settings.unit_index_dir is not None and \
            settings.artifacts_uri == str(settings.home / "artifacts"):
        # Another control plane on this database that adopts this one's work reads the
        # logs and outputs of ended units from the artifact store: it must be shared.
        log.warning("KETCH_DATABASE_URL is a shared database but KETCH_ARTIFACTS_URI is "
                    "this home's own directory (%s): another control plane on the database "
                    "cannot read the logs of work this one ran; set KETCH_ARTIFACTS_URI to "
                    "a store they share", settings.artifacts_uri)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{actual_port}"
    client_url = url if not host.startswith("0.") else f"http://127.0.0.1:{actual_port}"
    # Units do not inherit KETCH_HOME (it leads to the token and the database); a
    # unit that calls the API (ModelRegistry() in a Job) finds the server by this.
    os.environ.setdefault("KETCH_HOST", client_url)
    info = ServerInfo(settings.home)

    def _announce() -> None:
        info.write({"url": client_url, "pid": os.getpid(), "mode": mode,
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
