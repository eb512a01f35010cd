"""``ketch serve`` and ``ketch wait`` stop at a service's terminal failure (its
``Stalled`` condition) and print it, instead of waiting out the timeout; ``ketch logs
isvc`` shows what resolving and loading the model said."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _modelserver import trained_iris
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_services")]

# Far beyond what any of these takes when it stops at the failure: a command that
# waits out its own --timeout (10 minutes) hits this instead.
_HANG = 240


def _ketch(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=_HANG, check=False,
                          stdin=subprocess.DEVNULL)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    line, = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    return line


def test_a_missing_storage_uri_stops_serve_and_wait(ketch_server: ServerProcess,
                                                    tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    line = _one_error_line(_ketch(ketch_server, "serve", str(missing), "--format", "sklearn",
                                  "--name", "ghost", "--timeout", "600"))
    assert "isvc/ghost failed: StorageUriError" in line and "does not exist" in line, line
    assert "ketch logs isvc ghost" in line

    line = _one_error_line(_ketch(ketch_server, "wait", "isvc", "ghost",
                                  "--for", "condition=Ready", "--timeout", "10m"))
    assert "StorageUriError" in line and str(missing) in line, line

    logs = _ketch(ketch_server, "logs", "isvc", "ghost")
    assert logs.returncode == 0, logs.stderr
    assert f"resolving storageUri {missing}" in logs.stdout, logs.stdout
    assert "error: StorageUriError" in logs.stdout and "does not exist" in logs.stdout

    # The failed revision is retried with back-off: once the model is there, it serves
    # and the verdict is gone.
    trained_iris(missing)
    with Client(ketch_server.url) as client:
        ready = wait_for(lambda: (o := client.get("isvc", "ghost")).status["conditions"][0][
            "status"] == "True" and o, timeout=180, message="ghost ready after the retry")
    assert "Stalled" not in [c["type"] for c in ready.status["conditions"]]  # type: ignore[attr-defined]


def test_a_corrupt_model_stops_serve_and_logs_show_the_load(ketch_server: ServerProcess,
                                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.joblib").write_bytes(b"this is not a pickle")
    line = _one_error_line(_ketch(ketch_server, "serve", str(bad), "--format", "sklearn",
                                  "--name", "broken", "--timeout", "600"))
    assert "isvc/broken failed: ModelLoadFailed" in line and "cannot load" in line, line
    logs = _ketch(ketch_server, "logs", "isvc", "broken").stdout
    assert "modelserver: loading sklearn model 'broken'" in logs, logs
    assert "modelserver: cannot load" in logs, logs

    good = trained_iris(tmp_path / "good") and tmp_path / "good"
    assert _ketch(ketch_server, "serve", str(good), "--format", "sklearn",
                  "--name", "good").returncode == 0
    logs = _ketch(ketch_server, "logs", "isvc", "good").stdout
    assert f"storage-initializer: model files at {good}" in logs, logs
    assert "modelserver: loading sklearn model 'good'" in logs
    assert "modelserver: model 'good' loaded in" in logs
    assert "modelserver: serving 'good' (V1 and V2) on 127.0.0.1:" in logs
