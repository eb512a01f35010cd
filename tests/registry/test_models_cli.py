"""``ketch models ...`` against a real ``ketch up`` (SQLite): register, list, get,
archive and delete, and the error paths (exit 1, one line on stderr)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import ServerProcess, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("models-cli"), command="up")
    yield srv
    srv.kill(15)


def models(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", "models", *args],
                          env=server.env, capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def failed(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_models_lifecycle(server: ServerProcess) -> None:
    out = ok(models(server, "register", "iris", "--version", "v1", "--uri",
                    "file:///tmp/iris.joblib", "--format", "sklearn", "-p", "accuracy=0.97",
                    "-p", "team=vision"))
    assert "iris" in out and "v1" in out and "registered" in out

    rows = table(ok(models(server, "list")))
    assert rows[0][:3] == ["NAME", "ID", "STATE"]
    assert any(r[0] == "iris" and "LIVE" in r for r in rows[1:]), rows

    # An archived model shows under --state ARCHIVED, iris does not.
    ok(models(server, "register", "iris-old", "--version", "v1", "--uri", "file:///tmp/old",
              "--format", "sklearn"))
    assert "archived" in ok(models(server, "archive", "iris-old"))
    archived = models(server, "list", "--state", "ARCHIVED")
    names = [r[0] for r in table(ok(archived))[1:]]
    assert names == ["iris-old"], archived.stdout
    live = [r[0] for r in table(ok(models(server, "list", "--state", "live")))[1:]]
    assert "iris" in live and "iris-old" not in live
    assert [r[0] for r in table(ok(models(server, "list", "--search", "OLD")))[1:]] == [
        "iris-old"]

    shown = ok(models(server, "get", "iris"))
    assert "iris" in shown.splitlines()[0]
    versions = [line.split() for line in shown.splitlines() if line.startswith(("VERSION", "v"))]
    assert versions[0][:2] == ["VERSION", "ID"]
    assert versions[1][0] == "v1" and "LIVE" in versions[1]

    one = ok(models(server, "get", "iris", "--version", "v1"))
    assert "file:///tmp/iris.joblib" in one
    assert "sklearn" in one
    assert "accuracy=0.97" in one and "team=vision" in one
    assert "ketch serve model-registry://iris/v1" in one

    data = json.loads(ok(models(server, "get", "iris", "--version", "v1", "-o", "json")))
    assert data["name"] == "v1" and data["state"] == "LIVE"
    assert data["artifact"]["uri"] == "file:///tmp/iris.joblib"
    assert data["artifact"]["modelFormatName"] == "sklearn"
    assert data["customProperties"]["accuracy"] == {
        "double_value": 0.97, "metadataType": "MetadataDoubleValue"}
    assert data["customProperties"]["team"] == {
        "string_value": "vision", "metadataType": "MetadataStringValue"}
    model = json.loads(ok(models(server, "get", "iris", "-o", "json")))
    assert [v["name"] for v in model["versions"]] == ["v1"]

    # Errors: one line on stderr, exit 1.
    failed(models(server, "register", "iris", "--version", "v1", "--uri", "file:///x",
                  "--format", "sklearn"), "already exists")
    failed(models(server, "get", "nope"), "nope")
    failed(models(server, "get", "iris", "--version", "v9"), "v9")
    failed(models(server, "archive", "nope"), "nope")
    failed(models(server, "delete", "nope"), "nope")

    assert "archived" in ok(models(server, "archive", "iris", "--version", "v1"))
    data = json.loads(ok(models(server, "get", "iris", "--version", "v1", "-o", "json")))
    assert data["state"] == "ARCHIVED"

    ok(models(server, "register", "iris", "--version", "v2", "--uri", "file:///tmp/v2",
              "--format", "sklearn"))
    assert "deleted" in ok(models(server, "delete", "iris", "--version", "v1"))
    failed(models(server, "get", "iris", "--version", "v1"), "v1")
    model = json.loads(ok(models(server, "get", "iris", "-o", "json")))
    assert [v["name"] for v in model["versions"]] == ["v2"]
    assert "deleted" in ok(models(server, "delete", "iris"))
    failed(models(server, "get", "iris"), "iris")
    names = [r[0] for r in table(ok(models(server, "list")))[1:]]
    assert "iris" not in names and "iris-old" in names


def test_models_namespace(server: ServerProcess) -> None:
    ok(models(server, "register", "ns-model", "--version", "v1", "--uri", "file:///m",
              "--format", "onnx", "-n", "team-b"))
    assert "ns-model" in ok(models(server, "list", "-n", "team-b"))
    failed(models(server, "get", "ns-model"), "ns-model")
    assert "ns-model" in ok(models(server, "get", "ns-model", "-n", "team-b"))
