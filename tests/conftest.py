"""Shared fixtures: databases (SQLite and a real PostgreSQL), servers, clients.

Servers run as real subprocesses (``python -m ketch.cli ...``) with their own
``KETCH_HOME``, as a user would start them; in-process runtimes are used where
a test needs to reach inside (controllers, two control planes on one DB).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))

from _postgres import start_postgres

if TYPE_CHECKING:
    from ketch.core.executors import Executor, Handle, UnitStatus

_db_counter = itertools.count()


# The kfp==2.16.1 venv and corpus fixtures (tests/_kfp.py) for the pipeline tests; the
# iris model and InferenceService clean-up fixtures (tests/_modelserver.py) for serving's;
# the http/ns fixtures of the server tests (tests/_server_http.py).
pytest_plugins = ["_kfp", "_modelserver", "_server_http", "_ray"]

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests parametrized over the postgres backend carry the marker too, so
    # `-m "not postgres"` deselects exactly what needs the server.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_postgres(tmp_path_factory.mktemp("pg")) as url:
        yield url


def new_postgres_database(server_url: str) -> str:
    """A fresh, empty database on the test server (cheaper than a new server)."""
    name = f"ketch_t{os.getpid()}_{next(_db_counter)}"
    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username,
                         dbname=url.database, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ketch.db'}"
    server = request.getfixturevalue("postgres_server")
    return new_postgres_database(server)


@dataclass
class ServerProcess:
    url: str
    home: Path
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def ketch_env(home: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["KETCH_HOME"] = str(home)
    if database_url:
        env["KETCH_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def start_server(home: Path, *, command: str = "server", database_url: str | None = None,
                 port: int = 0, timeout: float = 30.0, **extra: str) -> ServerProcess:
    """Start ``ketch server`` (or ``up``) and wait until its server.json answers."""
    from ketch.server.run import ServerInfo

    home.mkdir(parents=True, exist_ok=True)
    env = ketch_env(home, database_url, **extra)
    info = ServerInfo(home)
    info.path.unlink(missing_ok=True)
    log = open(home / f"{command}.out", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli", command, "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = info.read()
        if data and data.get("pid") == proc.pid:
            return ServerProcess(str(data["url"]), home, proc, env)
        if proc.poll() is not None:
            raise RuntimeError(f"ketch {command} exited {proc.returncode}: "
                               f"{(home / f'{command}.out').read_text()[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"ketch {command} did not become ready in {timeout}s")


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    started: list[ServerProcess] = []

    def factory(home: Path | None = None, **kwargs: object) -> ServerProcess:
        server = start_server(home or tmp_path / f"home{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory
    for server in started:
        server.kill(signal.SIGTERM)


@pytest.fixture
def ketch_server(server_factory: object, tmp_path: Path) -> ServerProcess:
    """A real ``ketch up`` (API + dashboard) on SQLite in a fresh KETCH_HOME."""
    return server_factory(tmp_path / "home", command="up")  # type: ignore[operator, no-any-return]


@pytest.fixture
def server_url(ketch_server: ServerProcess) -> str:
    return ketch_server.url


@pytest.fixture
def client(ketch_server: ServerProcess) -> Iterator[object]:
    from ketch import Client

    with Client(ketch_server.url) as c:
        yield c


def wait_for(predicate: object, timeout: float = 30.0, interval: float = 0.05,
             message: str = "condition") -> object:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


KubectlRun = Callable[..., "subprocess.CompletedProcess[str]"]


def kubectl_env(server: ServerProcess, home: Path, namespace: str) -> dict[str, str]:
    """The environment for the real ``kubectl`` against ``server``: the kubeconfig ``ketch
    kubeconfig`` writes (its context's namespace ``namespace``), and ``HOME`` the test's own
    directory, so kubectl's discovery and OpenAPI caches start empty and never leak."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    config = home / "kubeconfig"
    env = {**server.env, "HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "ketch.cli", "kubeconfig", "-o", str(config),
                           "-n", namespace], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"export KUBECONFIG={config}" in done.stdout
    assert config.stat().st_mode & 0o777 == 0o600
    return {**env, "KUBECONFIG": str(config)}


def kubectl_runner(env: dict[str, str]) -> KubectlRun:
    """``run(*args, ok=True)``: kubectl with ``env``; ``ok`` asserts it exited 0."""
    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    return run


def free_port() -> int:
    """A loopback port free a moment ago (for a server the test starts itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_listening(port: int) -> bool:
    """Whether something accepts connections on loopback ``port`` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_unit_done(executor: Executor, handle: Handle, timeout: float = 30.0) -> UnitStatus:
    """Poll an executor's unit until it ends; the status that said so."""
    seen: list[UnitStatus] = []

    def done() -> bool:
        seen.append(executor.poll(handle))
        return seen[-1].done

    wait_for(done, timeout, interval=0.01, message=f"unit {handle['unitId']} to end")
    return seen[-1]


def backend_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   name: str) -> ServerProcess:
    """A ``ketch up`` on the backend ``request.param`` names ("sqlite" or "postgres"),
    for module-scoped fixtures parametrized over both."""
    db_url = None
    if request.param == "postgres":
        db_url = new_postgres_database(request.getfixturevalue("postgres_server"))
    return start_server(tmp_path_factory.mktemp(name), command="up", database_url=db_url)
