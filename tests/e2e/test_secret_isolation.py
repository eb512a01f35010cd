"""What a Job can and cannot reach of its control plane's secrets, against a real
``ketch up``: env, file modes, /proc of the server, and (as root) KETCH_RUN_AS_USER."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import start_server
from ketch import Client

pytestmark = pytest.mark.slow


def _job(name: str, command: list[str]) -> dict[str, object]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"command": command}}


def _run(client: Client, name: str, command: list[str]) -> tuple[str, str]:
    client.apply(_job(name, command))
    done = client.wait("job", name, timeout=60)
    return str(done.status["phase"]), b"".join(client.logs("job", name)).decode()


@pytest.fixture
def home() -> Iterator[Path]:
    # Traversable by every user (pytest's tmp_path sits under a 0700 directory), so the
    # KETCH_RUN_AS_USER case can run; the files inside must protect themselves.
    path = Path(tempfile.mkdtemp(prefix="ketch-secrets-", dir="/tmp"))
    path.chmod(0o711)
    yield path / "home"
    shutil.rmtree(path, ignore_errors=True)


def test_a_job_gets_no_secret_and_no_path_to_them(home: Path) -> None:
    server = start_server(home, command="up", KETCH_TOKEN="s3cret-token")
    try:
        with Client(server.url, token="s3cret-token") as client:
            phase, log = _run(client, "peek", [sys.executable, "-c", (
                "import os; print(sorted(k for k in os.environ if k.startswith('KETCH_')));"
                "print(os.environ.get('KETCH_HOST'))")])
        assert phase == "Succeeded", log
        keys, host = log.splitlines()
        assert "KETCH_HOME" not in keys and "KETCH_TOKEN" not in keys
        assert "KETCH_DATABASE_URL" not in keys and "s3cret" not in log
        assert host == server.url  # how a Job reaches the API (with a token it is given)
        # Job specs (secrets in spec.env) and the token are this user's files only.
        for name in ("server.json", "ketch.db", "ketch.db-wal", "ketch.db-shm",
                     "control-plane.pid"):
            mode = stat.S_IMODE((home / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {mode:o}"
    finally:
        server.kill()


def test_the_server_process_is_not_dumpable_and_drops_its_secrets_from_environ() -> None:
    code = ("import ctypes, os\n"
            "from ketch.server.run import _harden_process\n"
            "_harden_process()\n"
            "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),"
            " 'KETCH_DATABASE_URL' in os.environ, 'KETCH_TOKEN' in os.environ)\n")
    env = {**os.environ, "KETCH_DATABASE_URL": "postgresql://u:pw@db/x", "KETCH_TOKEN": "t"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["0", "False", "False"]


@pytest.mark.skipif(os.geteuid() != 0, reason="KETCH_RUN_AS_USER needs ketch to run as root")
def test_as_root_with_run_as_user_a_job_reads_no_secret_file(home: Path) -> None:
    server = start_server(home, command="up", KETCH_RUN_AS_USER="nobody",
                          KETCH_TOKEN="s3cret-token")
    try:
        targets = [home / "server.json", home / "ketch.db", home / "control-plane.pid",
                   Path(f"/proc/{server.proc.pid}/environ"), Path(f"/proc/{server.proc.pid}/mem")]
        script = "id -u; " + "; ".join(f"cat {t} >/dev/null 2>&1 && echo READ {t} || echo denied"
                                       for t in targets)
        with Client(server.url, token="s3cret-token") as client:
            phase, log = _run(client, "snoop", ["/bin/sh", "-c", script])
        assert phase == "Succeeded", log
        lines = log.splitlines()
        assert lines[0] == "65534", lines
        assert lines[1:] == ["denied"] * len(targets), lines
    finally:
        server.kill()


@pytest.mark.parametrize(("setting", "value", "says"), [
    ("KETCH_RUN_AS_USER", "no-such-user-x", "KETCH_RUN_AS_USER='no-such-user-x': no such user"),
    ("KETCH_LOG_MAX_BYTES", "lots", "KETCH_LOG_MAX_BYTES must be an integer"),
])
def test_a_bad_executor_setting_is_one_line_at_start(home: Path, setting: str, value: str,
                                                     says: str) -> None:
    from conftest import ketch_env

    out = subprocess.run([sys.executable, "-m", "ketch.cli", "up", "--port", "0"],
                         env=ketch_env(home, **{setting: value}), capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and says in out.stderr, out.stderr
