"""The read-only artifact route (``/api/ketch/artifacts``) against a real ``ketch server``:
files under the artifact store's root are served (size-limited), anything else is
refused with the ``uri`` field named, symbolic links out of the root included."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess, start_server, wait_for

pytestmark = pytest.mark.slow

ROUTE = "/api/ketch/artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("artifacts") / "home")
    yield srv
    srv.kill(signal.SIGTERM)



@pytest.fixture
def root(server: ServerProcess) -> Path:
    return server.home / "artifacts"


def _field_error(resp: httpx.Response) -> str:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert [f["field"] for f in body["details"]["causes"]] == ["uri"], body
    return str(body["details"]["causes"][0]["message"])


def test_serves_a_file_under_the_root(http: httpx.Client, root: Path) -> None:
    target = root / "pipelines" / "default" / "run-1" / "train" / "dataset"
    target.parent.mkdir(parents=True)
    target.write_text("a,b\n1,2\n3,4\n")

    resp = http.get(f"{ROUTE}/content", params={"uri": str(target)})
    assert resp.status_code == 200
    assert resp.text == "a,b\n1,2\n3,4\n"
    assert resp.headers["x-ketch-truncated"] == "false"
    # Never rendered as a page of the dashboard's origin.
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in resp.headers["content-security-policy"]

    # file:// URIs name the same file.
    assert http.get(f"{ROUTE}/content", params={"uri": f"file://{target}"}).text.startswith("a,b")

    meta = http.get(ROUTE, params={"uri": str(target)}).json()
    assert meta == {"uri": str(target), "key": "pipelines/default/run-1/train/dataset",
                    "type": "file", "size": 12}


def test_size_limit_truncates_and_says_so(http: httpx.Client, root: Path) -> None:
    big = root / "big.bin"
    big.write_bytes(b"x" * 300_000)
    resp = http.get(f"{ROUTE}/content", params={"uri": str(big), "maxBytes": 1000})
    assert resp.status_code == 200
    assert resp.content == b"x" * 1000
    assert resp.headers["x-ketch-truncated"] == "true"

    too_big = http.get(f"{ROUTE}/content", params={"uri": str(big), "maxBytes": 1 << 30})
    assert too_big.status_code == 422
    assert "maxBytes" in too_big.text


def test_directory_is_listed_not_read(http: httpx.Client, root: Path) -> None:
    model = root / "model-dir"
    (model / "sub").mkdir(parents=True)
    (model / "model.joblib").write_bytes(b"12345")
    listing = http.get(ROUTE, params={"uri": str(model)}).json()
    assert listing["type"] == "directory"
    assert listing["entries"] == [{"name": "model.joblib", "type": "file", "size": 5},
                                  {"name": "sub", "type": "directory", "size": None}]
    assert "directory" in _field_error(http.get(f"{ROUTE}/content", params={"uri": str(model)}))


@pytest.mark.parametrize("escape", ["dotdot", "sibling", "relative", "symlink", "etc", "scheme"])
def test_paths_outside_the_root_are_refused(http: httpx.Client, root: Path,
                                            server: ServerProcess, escape: str) -> None:
    secret = server.home / "secret.txt"
    secret.write_text("not yours")
    # A directory whose name starts like the root's: a prefix check would let it by.
    sibling = server.home / "artifacts-evil" / "x.txt"
    sibling.parent.mkdir(exist_ok=True)
    sibling.write_text("not yours")
    link = root / "link-out"
    if not link.exists():
        link.symlink_to(secret)
    uri = {
        "dotdot": f"{root}/../secret.txt",
        "sibling": str(sibling),
        "relative": "secret.txt",
        "symlink": str(link),
        "etc": "/etc/passwd",
        "scheme": "s3://bucket/secret.txt",
    }[escape]
    for path in (ROUTE, f"{ROUTE}/content"):
        resp = http.get(path, params={"uri": uri})
        message = _field_error(resp)
        assert "not yours" not in resp.text
        assert uri in message or repr(uri) in message


def test_missing_file_is_404(http: httpx.Client, root: Path) -> None:
    resp = http.get(f"{ROUTE}/content", params={"uri": str(root / "nope")})
    assert resp.status_code == 404
    assert "does not exist" in resp.json()["message"]


def test_remote_store_serves_keys_under_its_root(tmp_path: Path) -> None:
    """A non-local store (fsspec's memory://, standing in for s3:// or gs://, which
    cannot run here): a finished Job's log, which the executor uploads to the store,
    is readable by its URI; URIs outside the store's root are refused."""
    root = "memory://ketch-artifacts-route"
    srv = start_server(tmp_path / "home", KETCH_ARTIFACTS_URI=root)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            coll = "/apis/ketch.dev/v1/namespaces/default/jobs"
            resp = http.post(coll, json={
                "apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "hello"},
                "spec": {"command": [sys.executable, "-c", "print('stored log line')"]}})
            assert resp.status_code == 201, resp.text

            def log_uri() -> str | None:
                status = http.get(f"{coll}/hello").json().get("status", {})
                done = status.get("phase") == "Succeeded" and status.get("logUri")
                return str(status["logUri"]) if done else None

            uri = wait_for(log_uri, timeout=60, message="the job's log in the store")
            assert uri.startswith(f"{root}/logs/default/jobs/hello/")
            assert http.get(ROUTE, params={"uri": uri}).json()["type"] == "file"
            content = http.get(f"{ROUTE}/content", params={"uri": uri})
            assert content.status_code == 200, content.text
            assert content.text == "stored log line\n"
            short = http.get(f"{ROUTE}/content", params={"uri": uri, "maxBytes": 6})
            assert (short.text, short.headers["x-ketch-truncated"]) == ("stored", "true")

            for outside in (f"{root}/../elsewhere/x", "memory://other-root/x",
                            f"{root}-evil/x", "/etc/passwd"):
                assert http.get(ROUTE, params={"uri": outside}).status_code == 422, outside
            assert http.get(ROUTE, params={"uri": f"{uri}.nope"}).status_code == 404
    finally:
        srv.kill(signal.SIGTERM)
