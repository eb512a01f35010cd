"""What the ``ketch`` command prints when it is used wrongly, before any server is asked.

``KETCH_HOST`` points at a port nothing listens on, so a check that happened only after
a request would show up as "cannot reach ketch" instead of the message asserted here.
The cases run ``ketch.cli``'s entry point in this process (``run_app``, all that
``main`` does besides ``sys.exit``) so that the matrix stays fast; the first test runs
the real ``ketch`` process for the cases that printed tracebacks and boxes.
"""

from __future__ import annotations

import codecs
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ketch_env

NOWHERE = "http://127.0.0.1:9"
Ketch = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def ketch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
          ) -> Callable[..., subprocess.CompletedProcess[str]]:
    from ketch.cli._app import app
    from ketch.cli._errors import run_app

    for key, value in ketch_env(tmp_path / "home", KETCH_HOST=NOWHERE).items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = run_app(app, args)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["ketch", *args], code, out.out, out.err)

    return run


def test_the_ketch_process_prints_one_line_and_plain_help(tmp_path: Path) -> None:
    env = ketch_env(tmp_path / "home", KETCH_HOST=NOWHERE)

    def ketch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=env,
                              check=False, capture_output=True, text=True, timeout=60)

    assert "invalid value for '--port'" in one_error_line(ketch("up", "--port", "99999"))
    assert "did you mean 'apply'?" in one_error_line(ketch("aplly"))
    assert "say what to describe" in one_error_line(ketch("describe"))
    helped = ketch("get", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: ketch get")
    assert "<bool>" not in helped.stdout and "╭" not in helped.stdout


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr and "╭" not in out.stderr
    return lines[0]


@pytest.mark.parametrize(("args", "expected"), [
    (["aplly", "-f", "x.yaml"], "unknown command 'aplly' for 'ketch'; did you mean 'apply'?"),
    (["desribe", "jobs"], "did you mean 'describe'?"),
    (["get", "jobs", "--outptu", "json"],
     "ketch get: unknown option --outptu; did you mean '--output'?"),
    (["get"], "say what to get, e.g. 'ketch get jobs'"),
    (["describe"], "say what to describe"),
    (["delete"], "say what to delete"),
    (["wait", "job", "x"], "ketch wait: missing option '--for'"),
    (["up", "--port", "99999"], "ketch up: invalid value for '--port'"),
    (["server", "--port", "-1"], "ketch server: invalid value for '--port'"),
    (["models", "lisst"], "unknown command 'lisst' for 'ketch models'; did you mean 'list'?"),
])
def test_usage_errors_are_one_line(ketch: Ketch, args: list[str], expected: str) -> None:
    assert expected in one_error_line(ketch(*args))


@pytest.mark.parametrize("args", [["--help"], ["get", "--help"], ["apply", "--help"],
                                  ["up", "--help"], ["delete", "--help"],
                                  ["models", "--help"], ["models", "list", "--help"],
                                  ["run", "--help"], ["serve", "--help"], []])
def test_help_is_plain_text(ketch: Ketch, args: list[str]) -> None:
    out = ketch(*args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: ketch")
    assert "<bool>" not in out.stdout
    assert not set("╭│╰─") & set(out.stdout)


@pytest.mark.parametrize("args", [
    ["delete", "job", "zzz/../withsecret"],
    ["get", "job", "../../../../version"],
    ["get", "job/../../version"],
    ["describe", "jobs", "a", "b/../c"],
    ["logs", "job", ".."],
    ["wait", "job/..", "--for=condition=Succeeded"],
    ["cancel", "job", "Caps"],
])
def test_names_are_checked_before_any_request(ketch: Ketch, args: list[str]) -> None:
    line = one_error_line(ketch(*args))
    assert "invalid name '" in line and "lowercase alphanumerics" in line
    assert "cannot reach" not in line


def test_a_namespace_is_checked_before_any_request(ketch: Ketch) -> None:
    line = one_error_line(ketch("get", "jobs", "-n", "../kube-system"))
    assert "invalid namespace '../kube-system'" in line


@pytest.mark.parametrize(("content", "expected"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff", "not UTF-8 text: byte 0x89 at offset 0"),
    ("apiVersion: v1\n".encode("utf-16-le"),
     "line 1, column 2: character U+0000 is not allowed in YAML or JSON (UTF-16 without a "
     "byte-order mark?)"),
    (b"kind: Job\nmetadata: {name: \"a\x01\"}\n", "line 2, column 20: character U+0001"),
])
def test_apply_of_an_undecodable_file_names_the_file(ketch: Ketch, tmp_path: Path,
                                                     content: bytes, expected: str) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_bytes(content)
    line = one_error_line(ketch("apply", "-f", str(path)))
    assert line.startswith(f"error: {path}: ")
    assert expected in line


def test_apply_reads_utf16_with_its_byte_order_mark(ketch: Ketch, tmp_path: Path) -> None:
    """Decoded, it goes on to the server, which is not there: that is the error."""
    path = tmp_path / "manifest.yaml"
    path.write_bytes(codecs.BOM_UTF16_LE + "apiVersion: ketch.dev/v1\nkind: Job\n"
                     "metadata: {name: a}\nspec: {command: [echo]}\n".encode("utf-16-le"))
    assert "cannot reach ketch at" in one_error_line(ketch("apply", "-f", str(path)))
