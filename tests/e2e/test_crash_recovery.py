"""kill -9 of the control plane at the worst times: nothing stays Running forever."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from conftest import start_server, wait_for
from ketch import Client

pytestmark = pytest.mark.slow


def _job(name: str, script: str, backoff: int = 0) -> dict[str, object]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"command": ["python3", "-c", script], "backoffLimit": backoff}}


def _running_pid(client: Client, name: str) -> int:
    def started() -> int | None:
        obj = client.get("job", name)
        active = obj.status.get("active") or {}
        return int(active["pid"]) if obj.status.get("phase") == "Running" and "pid" in active \
            else None

    return int(wait_for(started, message=f"{name} running"))  # type: ignore[arg-type]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_sigkill_server_mid_job_then_restart_adopts_it(database: str, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    db_url = None
    if database == "postgres":
        from conftest import new_postgres_database

        db_url = new_postgres_database(request.getfixturevalue("postgres_server"))
    home = tmp_path / "home"
    flag = tmp_path / "finish"
    server = start_server(home, database_url=db_url)
    try:
        with Client(server.url) as client:
            client.apply(_job("survivor", (
                "import os, time\nprint('started', flush=True)\n"
                f"while not os.path.exists({str(flag)!r}): time.sleep(0.05)\nprint('finished')")))
            pid = _running_pid(client, "survivor")
        server.kill(signal.SIGKILL)
        assert psutil.pid_exists(pid), "the job must outlive its control plane"
        flag.write_text("")  # the job ends while no control plane is up
        wait_for(lambda: not psutil.pid_exists(pid), message="job exit")
        server = start_server(home, database_url=db_url)
        with Client(server.url) as client:
            done = client.wait("job", "survivor", condition="Succeeded", timeout=60)
            assert done.status["attempts"] == 1 and done.status["exitCode"] == 0
            assert b"".join(client.logs("job", "survivor")) == b"started\nfinished\n"
    finally:
        server.kill(signal.SIGTERM)


def test_sigkill_server_and_job_then_restart_retries(tmp_path: Path) -> None:
    """When the work died with the control plane (no exit recorded), the restart
    counts the attempt as lost and retries it per backoffLimit."""
    home = tmp_path / "home"
    server = start_server(home)
    try:
        with Client(server.url) as client:
            client.apply(_job("phoenix", (
                "import os, time\n"
                f"marker = {str(tmp_path / 'second')!r}\n"
                "if os.path.exists(marker): print('second attempt'); raise SystemExit(0)\n"
                "open(marker, 'w').close(); time.sleep(120)"), backoff=1))
            pid = _running_pid(client, "phoenix")
            wait_for((tmp_path / "second").exists, message="first attempt under way")
        group = os.getpgid(pid)
        server.kill(signal.SIGKILL)
        os.killpg(group, signal.SIGKILL)  # the job's wrapper and process die too
        wait_for(lambda: not psutil.pid_exists(pid), message="job killed")
        server = start_server(home)
        with Client(server.url) as client:
            done = client.wait("job", "phoenix", condition="Succeeded", timeout=60)
            assert done.status["attempts"] == 2
            running = next(c for c in done.status["conditions"] if c["type"] == "Running")
            assert running["reason"] == "Completed"
            assert b"".join(client.logs("job", "phoenix")) == b"second attempt\n"
            first = b"".join(client.logs("job", "phoenix", attempt=1))
            assert first == b""
    finally:
        server.kill(signal.SIGTERM)


def test_sigkill_without_retries_fails_with_a_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    try:
        with Client(server.url) as client:
            client.apply(_job("lost", "import time; time.sleep(120)"))
            pid = _running_pid(client, "lost")
        server.kill(signal.SIGKILL)
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        server = start_server(home)
        with Client(server.url) as client:
            start = time.monotonic()
            wait_for(lambda: client.get("job", "lost").status.get("phase") == "Failed",
                     timeout=60, message="lost job failed")
            assert time.monotonic() - start < 30
            failed = next(c for c in client.get("job", "lost").status["conditions"]
                          if c["type"] == "Failed")
            assert failed["reason"] == "ProcessLost"
    finally:
        server.kill(signal.SIGTERM)
