"""A throwaway real PostgreSQL server for the test suite.

No pytest import here: conftest.py wraps these in fixtures, e.g.::

    @pytest.fixture(scope="session")
    def postgres_url(tmp_path_factory):
        with start_postgres(tmp_path_factory.mktemp("pg")) as url:
            yield url

- ``start_postgres(base_dir)`` yields a SQLAlchemy URL
  (``postgresql+psycopg://postgres@127.0.0.1:PORT/ketch_test``) to a fresh
  server it started, and stops it (``pg_ctl stop -m immediate``) and deletes
  its data directory afterwards. If ``KETCH_TEST_DATABASE_URL`` is set, that
  URL is yielded instead and nothing is started.
- ``reset_database(url)`` drops and recreates schema ``public``.

PostgreSQL refuses to run as root, so as root the cluster is created in a
fresh directory that the ``postgres`` user can reach (pytest's own tmp dirs
under /tmp/pytest-of-root are mode 0700) and ``initdb``/``pg_ctl`` run via
``runuser -u postgres --`` (or ``su postgres``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ENV_URL = "KETCH_TEST_DATABASE_URL"
DATABASE = "ketch_test"
SUPERUSER = "postgres"
READY_TIMEOUT_S = 30.0
# Unix socket paths are limited to ~107 bytes (including "/.s.PGSQL.NNNNN").
_MAX_SOCKET_DIR_LEN = 80


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin
    return tuple(int(p) for p in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def find_postgres_bin_dir() -> Path:
    """Directory holding ``initdb`` and ``pg_ctl`` (highest Debian version, else PATH)."""
    candidates = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (p.parent / "pg_ctl").exists()
    ]
    if candidates:
        return max(candidates, key=_version_key)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).parent
    missing = " and ".join(n for n, p in (("initdb", initdb), ("pg_ctl", pg_ctl)) if not p)
    raise RuntimeError(
        f"PostgreSQL server binaries not found: no {missing} in /usr/lib/postgresql/*/bin "
        "or on PATH. Install them (`make test-deps`, or `apt-get install postgresql`), "
        f"or point {ENV_URL} at an existing server."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(argv: list[str]) -> list[str]:
    """Command line running ``argv`` as the postgres user (only used as root)."""
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SUPERUSER, "--", *argv]
    su = shutil.which("su")
    if su:
        return [su, SUPERUSER, "-s", "/bin/sh", "-c", shlex.join(argv)]
    raise RuntimeError("running as root but neither `runuser` nor `su` is available")


class _Runner:
    def __init__(self, bin_dir: Path, cwd: Path) -> None:
        self.bin_dir = bin_dir
        self.cwd = cwd
        self.as_root = _is_root()

    def argv(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bin_dir / tool), *args]
        return _as_postgres(argv) if self.as_root else argv

    def run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        cmd = self.argv(tool, *args)
        proc = subprocess.run(
            cmd,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{tool} failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )


def _postgres_can_write(path: Path) -> bool:
    try:
        return (
            subprocess.run(
                _as_postgres(["test", "-w", str(path), "-a", "-x", str(path)]),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def _make_workdir(base_dir: Path) -> Path:
    """A fresh directory for data + socket + log that the server's user can use."""
    if not _is_root():
        base_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))
        if len(str(workdir)) > _MAX_SOCKET_DIR_LEN:
            shutil.rmtree(workdir, ignore_errors=True)
            workdir = Path(tempfile.mkdtemp(prefix="ketch-pg-"))
        return workdir

    try:
        pw = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RuntimeError(
            f"running as root but there is no {SUPERUSER!r} user to run PostgreSQL as "
            "(it is created by Debian's postgresql package: `make test-deps`)"
        ) from None
    parents: list[Path] = []
    for p in (base_dir, Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")):
        if p not in parents and len(str(p)) < _MAX_SOCKET_DIR_LEN - 20:
            parents.append(p)
    for parent in parents:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="ketch-pg-", dir=parent))
        except OSError:
            continue
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
        if _postgres_can_write(workdir):
            return workdir
        shutil.rmtree(workdir, ignore_errors=True)
    raise RuntimeError(
        f"no directory writable by the {SUPERUSER!r} user among " + ", ".join(map(str, parents))
    )


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _to_libpq(url: str) -> str:
    """SQLAlchemy URL (``postgresql+psycopg://...``) -> libpq URI for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _wait_ready(port: int, log: Path, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2
            ) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(
        f"PostgreSQL on 127.0.0.1:{port} not ready after {timeout:.0f}s: {last}\n"
        f"server log:\n{_tail(log)}"
    )


@contextlib.contextmanager
def start_postgres(base_dir: Path) -> Iterator[str]:
    """Start a fresh PostgreSQL server; yield a SQLAlchemy URL to its ``ketch_test`` db."""
    env_url = os.environ.get(ENV_URL)
    if env_url:
        yield env_url
        return

    bin_dir = find_postgres_bin_dir()

    workdir = _make_workdir(Path(base_dir))
    data, sock, log = workdir / "data", workdir / "sock", workdir / "server.log"
    pg = _Runner(bin_dir, cwd=workdir)
    try:
        # Created by the server's user itself, so ownership/permissions are right.
        pg.run(
            "initdb",
            "-D",
            str(data),
            "-A",
            "trust",
            f"--username={SUPERUSER}",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if pg.as_root:
            subprocess.run(
                _as_postgres(["mkdir", "-m", "0700", str(sock)]),
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )
        else:
            sock.mkdir(mode=0o700)

        for attempt in range(3):
            port = _free_port()
            settings = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(port),
                "unix_socket_directories": f"'{sock}'",
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": "200",
            }
            # Appended to postgresql.conf rather than passed via `pg_ctl -o`, so the
            # socket path needs no shell quoting. Later lines override earlier ones.
            with (data / "postgresql.conf").open("a") as f:
                f.write("\n# ketch test server\n")
                f.writelines(f"{k} = {v}\n" for k, v in settings.items())
            try:
                pg.run(
                    "pg_ctl",
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    str(int(READY_TIMEOUT_S)),
                    "start",
                    timeout=READY_TIMEOUT_S + 15,
                )
            except RuntimeError:
                # Most likely lost a race for the port; retry with another one.
                if attempt == 2 or "could not bind" not in _tail(log).lower():
                    raise RuntimeError(
                        f"PostgreSQL failed to start; server log:\n{_tail(log)}"
                    ) from None
                continue
            break

        _wait_ready(port, log)
        with psycopg.connect(
            host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')

        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
                pg.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)


def reset_database(url: str) -> None:
    """Drop and recreate schema ``public`` (all tables, types, alembic_version...)."""
    with psycopg.connect(_to_libpq(url), autocommit=True) as conn:
        # Fail loudly instead of hanging if a leaked connection still holds locks.
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
        conn.execute("GRANT ALL ON SCHEMA public TO public")
