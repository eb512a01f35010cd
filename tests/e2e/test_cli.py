"""The ``ketch`` CLI as a user runs it: real processes, real servers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ServerProcess, ketch_env, start_server, wait_for

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-job.yaml"

pytestmark = pytest.mark.slow


def ketch(env: dict[str, str], *args: str, stdin: str | None = None,
          timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], check=False, env=env,
                          input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def run_hello(env: dict[str, str]) -> None:
    applied = ketch(env, "apply", "-f", str(HELLO))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "job.ketch.dev/hello created"
    waited = ketch(env, "wait", "job", "hello", "--for=condition=Succeeded", "--timeout", "60s")
    assert waited.returncode == 0, waited.stderr
    logs = ketch(env, "logs", "job", "hello")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.startswith("hello from ketch on ")
    got = ketch(env, "get", "jobs")
    assert got.returncode == 0
    header, row = got.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "PHASE", "ATTEMPTS", "EXIT"]
    assert row.split()[:4] == ["hello", "Succeeded", "1", "0"]


def test_hello_job_with_no_server_running(tmp_path: Path) -> None:
    """With no server, the CLI starts a background control plane for KETCH_HOME
    that outlives it; `ketch stop` ends it."""
    env = ketch_env(tmp_path / "home")
    try:
        run_hello(env)
        info = (tmp_path / "home" / "server.json").read_text()
        assert '"mode": "background"' in info
        # Work goes on after the CLI exits: a job applied now still completes.
        slow = tmp_path / "slow.yaml"
        slow.write_text("apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: later}\n"
                        "spec: {command: [python3, -c, 'import time; time.sleep(1); "
                        "print(42)']}\n")
        assert ketch(env, "apply", "-f", str(slow)).returncode == 0
        assert ketch(env, "wait", "kj", "later", "--for=condition=Succeeded").returncode == 0
        assert ketch(env, "logs", "jobs", "later").stdout == "42\n"
    finally:
        stopped = ketch(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "home" / "server.json").exists()


def test_hello_job_against_ketch_up(ketch_server: ServerProcess) -> None:
    run_hello(ketch_server.env)
    # The CLI used the running `ketch up`, not a background server of its own.
    assert '"mode": "up"' in (ketch_server.home / "server.json").read_text()


def test_outputs_describe_selector_and_delete(ketch_server: ServerProcess) -> None:
    env = ketch_server.env
    docs = "\n---\n".join(
        f"apiVersion: ketch.dev/v1\nkind: Job\nmetadata:\n  name: j{i}\n  labels: {{tier: "
        f"{'a' if i % 2 else 'b'}}}\nspec:\n  command: [python3, -c, 'print({i})']"
        for i in range(3))
    applied = ketch(env, "apply", "-f", "-", stdin=docs)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("created") == 3
    again = ketch(env, "apply", "-f", "-", stdin=docs)
    assert again.stdout.count("unchanged") == 3
    for i in range(3):
        assert ketch(env, "wait", "job", f"j{i}", "--for=condition=Succeeded").returncode == 0
    as_yaml = ketch(env, "get", "job", "j1", "-o", "yaml")
    assert "phase: Succeeded" in as_yaml.stdout
    as_json = ketch(env, "get", "Jobs", "-l", "tier=b", "-o", "json")
    import json

    names = [i["metadata"]["name"] for i in json.loads(as_json.stdout)["items"]]
    assert names == ["j0", "j2"]
    described = ketch(env, "describe", "job", "j0")
    assert "Conditions:" in described.stdout and "Succeeded  True" in described.stdout
    deleted = ketch(env, "delete", "job", "j0")
    assert deleted.returncode == 0 and 'deleted' in deleted.stdout
    missing = ketch(env, "get", "job", "j0")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'error: jobs.ketch.dev "j0" not found in namespace \'default\''


def test_bad_input_is_one_line_naming_file_and_field(ketch_server: ServerProcess,
                                                     tmp_path: Path) -> None:
    env = ketch_server.env
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("apiVersion: ketch.dev/v1\nkind: Job\nmetadata:\n  name: [oops\n")
    out = ketch(env, "apply", "-f", str(bad_yaml))
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1
    assert str(bad_yaml) in out.stderr and "line" in out.stderr

    wrong_type = tmp_path / "wrong.yaml"
    wrong_type.write_text(
        "apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: fine}\nspec: {command: [echo]}\n"
        "---\napiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: bad}\n"
        "spec: {command: [echo], backoffLimit: lots}\n")
    out = ketch(env, "apply", "-f", str(wrong_type))
    assert out.returncode == 1
    line = out.stderr.strip()
    assert len(line.splitlines()) == 1
    assert str(wrong_type) in line and "document 2" in line and "spec.backoffLimit" in line
    # Nothing was written, not even the valid first document.
    assert ketch(env, "get", "job", "fine").returncode == 1

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("apiVersion: ketch.dev/v1\nkind: Gizmo\nmetadata: {name: g}\n")
    out = ketch(env, "apply", "-f", str(unknown))
    assert out.returncode == 1 and "unknown kind 'Gizmo'" in out.stderr

    missing = tmp_path / "missing.yaml"
    missing.write_text("apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: m}\nspec: {}\n")
    out = ketch(env, "apply", "-f", str(missing))
    assert out.returncode == 1 and "spec" in out.stderr and "command" in out.stderr

    out = ketch(env, "get", "gizmos")
    assert out.returncode == 1 and "unknown kind 'gizmos'" in out.stderr


def test_wait_fails_fast_when_the_job_fails(ketch_server: ServerProcess) -> None:
    env = ketch_server.env
    doc = ("apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: bad}\n"
           "spec: {command: [python3, -c, 'raise SystemExit(4)']}\n")
    assert ketch(env, "apply", "-f", "-", stdin=doc).returncode == 0
    start = time.monotonic()
    out = ketch(env, "wait", "job", "bad", "--for=condition=Succeeded", "--timeout", "60s")
    assert out.returncode == 1
    assert "ended Failed" in out.stderr and "code 4" in out.stderr
    assert time.monotonic() - start < 30
    ok = ketch(env, "wait", "job", "bad", "--for=condition=Failed", "--timeout", "10s")
    assert ok.returncode == 0


def test_logs_follow_streams_until_the_job_ends(ketch_server: ServerProcess) -> None:
    env = ketch_server.env
    doc = ("apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: ticker}\nspec:\n"
           "  command: [python3, -c, 'import time\n\n    for i in range(5):\n"
           "      print(i, flush=True); time.sleep(0.2)']\n")
    doc = ("apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: ticker}\nspec:\n"
           "  command: [python3, -c, \"import time\\nfor i in range(5): print(i, flush=True);"
           " time.sleep(0.2)\"]\n")
    assert ketch(env, "apply", "-f", "-", stdin=doc).returncode == 0
    out = ketch(env, "logs", "job", "ticker", "-f")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1", "2", "3", "4"]


def test_second_up_on_a_busy_port_exits_nonzero(ketch_server: ServerProcess,
                                                tmp_path: Path) -> None:
    port = ketch_server.url.rsplit(":", 1)[1]
    out = ketch(ketch_env(tmp_path / "other"), "up", "--port", port, timeout=60)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr


def test_ketch_up_binds_loopback_and_serves_dashboard(ketch_server: ServerProcess) -> None:
    import httpx

    assert ketch_server.url.startswith("http://127.0.0.1:")
    index = httpx.get(ketch_server.url + "/")
    assert index.status_code == 200
    assert httpx.get(ketch_server.url + "/readyz").text == "ok"


def test_non_loopback_bind_requires_a_token(server_factory: object, tmp_path: Path) -> None:
    import httpx

    server = server_factory(tmp_path / "open", command="server",  # type: ignore[operator]
                            KETCH_TOKEN="s3cret-token")
    url = server.url
    assert httpx.get(url + "/healthz").status_code == 200
    # A loopback server with a configured token enforces it too.
    assert httpx.get(url + "/api/ketch/kinds").status_code == 401
    ok = httpx.get(url + "/api/ketch/kinds", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    env = dict(server.env)
    env["KETCH_HOST"] = url
    assert ketch(env, "get", "jobs").returncode == 0
    env["KETCH_TOKEN"] = "wrong"
    out = ketch(env, "get", "jobs")
    assert out.returncode == 1 and "bearer token" in out.stderr


def test_sigterm_stops_up_cleanly(ketch_server: ServerProcess) -> None:
    ketch_server.kill(signal.SIGTERM)
    assert ketch_server.proc.returncode == 0
    assert not (ketch_server.home / "server.json").exists()
    assert wait_for(lambda: True)
    _ = start_server
