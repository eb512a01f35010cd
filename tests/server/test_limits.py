"""Input and size limits of the API server, against a real ``ketch server``.

Each test reproduces a probe of issue 10 that took the server down or answered 500 or
200: now a 400, 410 or 413 with a Kubernetes Status body, and the server stays ready.
"""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, start_server, wait_for

pytestmark = pytest.mark.slow

JOBS = "/apis/ketch.dev/v1/namespaces/{ns}/jobs"
RUNS = "/apis/pipelines.ketch.dev/v1/namespaces/{ns}/pipelineruns"
MERGE = {"Content-Type": "application/merge-patch+json"}
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("limits") / "home")
    yield srv
    srv.kill(signal.SIGTERM)




def status(resp: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    """The Kubernetes Status body of a failed request."""
    assert resp.status_code == code, resp.text[:500]
    body: dict[str, Any] = resp.json()
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status", "Failure", reason, code), body
    return body


def job(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name, **meta},
            "spec": {"command": ["true"]}}


def names(http: httpx.Client, path: str) -> list[str]:
    resp = http.get(path)
    assert resp.status_code == 200, resp.text
    return [item["metadata"]["name"] for item in resp.json()["items"]]


def alias_bomb() -> str:
    """Issue 10.1's probe: 11 KB of YAML, 8 levels of 9-way aliases in a pipelineSpec
    (9^8 = 43 million nodes once expanded: 545 MB, a 201 after 27 s)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return ("apiVersion: pipelines.ketch.dev/v1\nkind: PipelineRun\nmetadata: {name: bomb}\n"
            "spec:\n  pipelineSpec:\n    pipelineInfo: {name: bomb}\n"
            "    root: {dag: {tasks: {}}}\n    components:\n"
            + "".join(f"      {line}\n" for line in lines))


def test_yaml_alias_bomb_is_refused_and_the_server_stays_ready(
        http: httpx.Client, ns: str) -> None:
    resp = http.post(RUNS.format(ns=ns), content=alias_bomb().encode(), headers=YAML)
    body = status(resp, 400, "BadRequest")
    assert "excessive aliasing" in body["message"]
    assert http.get("/readyz").status_code == 200
    assert names(http, RUNS.format(ns=ns)) == []


@pytest.mark.parametrize(("raw", "ctype"), [
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    (b"- " * 3000 + b"x", "application/yaml"),  # 3,000 block sequences on one line
], ids=["json-100k-deep-list", "yaml-3k-deep"])
def test_deep_nesting_is_a_400_not_a_500(http: httpx.Client, ns: str, raw: bytes,
                                         ctype: str) -> None:
    resp = http.post(JOBS.format(ns=ns), content=raw, headers={"Content-Type": ctype})
    assert "deeper than 128 levels" in status(resp, 400, "BadRequest")["message"]
    assert http.get("/readyz").status_code == 200


def test_request_bodies_over_3_mib_are_413(http: httpx.Client, ns: str) -> None:
    big = job("big")
    big["spec"]["command"] = ["echo", "x" * (3 * 1024 * 1024)]
    resp = http.post(JOBS.format(ns=ns), json=big)
    assert "limit is 3145728" in status(resp, 413, "RequestEntityTooLarge")["message"]

    # A chunked body announces no length: it is cut off at the limit all the same.
    def chunks() -> Iterator[bytes]:
        yield b'{"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "c"}, '
        yield b'"spec": {"command": ["echo", "'
        for _ in range(64):
            yield b"y" * 65536
        yield b'"]}}'

    resp = http.post(JOBS.format(ns=ns), content=chunks(),
                     headers={"Content-Type": "application/json"})
    status(resp, 413, "RequestEntityTooLarge")
    assert names(http, JOBS.format(ns=ns)) == []


def test_the_body_limit_is_a_setting(tmp_path: Path, ns: str) -> None:
    srv = start_server(tmp_path / "home", KETCH_MAX_REQUEST_BYTES="2000")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            ok = http.post(JOBS.format(ns=ns), json=job("small"))
            assert ok.status_code == 201, ok.text
            over = job("over", annotations={"note": "z" * 2000})
            body = status(http.post(JOBS.format(ns=ns), json=over), 413,
                          "RequestEntityTooLarge")
            assert "limit is 2000 (KETCH_MAX_REQUEST_BYTES)" in body["message"]
    finally:
        srv.kill(signal.SIGTERM)


def test_filter_query_with_5000_nested_parentheses_is_a_400(http: httpx.Client) -> None:
    query = "(" * 5000 + "name = 'a'" + ")" * 5000
    resp = http.get("/api/model_registry/v1alpha3/registered_models",
                    params={"filterQuery": query})
    assert resp.status_code == 400, resp.text
    assert "nested deeper than 64 levels" in resp.text
    assert http.get("/readyz").status_code == 200


def test_registry_bodies_nested_100k_deep_are_a_400(http: httpx.Client) -> None:
    raw = b'{"name": "m", "customProperties": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = http.post("/api/model_registry/v1alpha3/registered_models", content=raw,
                     headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text[:500]
    assert "nested deeper than 128 levels" in resp.text
    assert http.get("/readyz").status_code == 200


def test_nul_in_a_query_parameter_or_a_body_is_a_400(http: httpx.Client, ns: str) -> None:
    resp = http.get("/api/ketch/artifacts", params={"uri": "/tmp/x\x00y"})
    body = status(resp, 400, "BadRequest")
    assert body["details"]["causes"][0]["field"] == "uri"
    resp = http.get("/api/ketch/lineage/artifacts", params={"uri": "s3://b/\x00"})
    status(resp, 400, "BadRequest")
    bad = job("nul")
    bad["spec"]["command"] = ["echo", "a\x00b"]
    body = status(http.post(JOBS.format(ns=ns), json=bad), 400, "BadRequest")
    assert body["details"]["causes"][0]["field"] == "spec.command[1]"


def test_watch_resource_version_beyond_int64_is_a_400(http: httpx.Client, ns: str) -> None:
    for rv in (str(2**63), str(2**64 + 5), "9" * 40):
        resp = http.get(JOBS.format(ns=ns), params={"watch": "true", "resourceVersion": rv,
                                                    "timeoutSeconds": 1})
        body = status(resp, 400, "BadRequest")
        assert body["details"]["causes"][0]["field"] == "resourceVersion"
        resp = http.get("/api/ketch/watch", params={"kinds": "jobs", "resourceVersion": rv})
        status(resp, 400, "BadRequest")


def test_annotations_over_256_kib_are_refused_naming_the_field(
        http: httpx.Client, ns: str) -> None:
    over = job("notes", annotations={"a": "x" * (128 * 1024), "b": "y" * (128 * 1024)})
    body = status(http.post(JOBS.format(ns=ns), json=over), 422, "Invalid")
    assert body["details"]["causes"] == [{
        "field": "metadata.annotations",
        "message": "Too long: must have at most 262144 bytes (has 262146)"}]
    created = http.post(JOBS.format(ns=ns), json=job("notes", annotations={"a": "x" * 1000}))
    assert created.status_code == 201, created.text
    # Growing it past the limit later is refused the same way, and nothing changes.
    patch = {"metadata": {"annotations": {"b": "y" * (256 * 1024)}}}
    resp = http.patch(f"{JOBS.format(ns=ns)}/notes", headers=MERGE, content=json.dumps(patch))
    status(resp, 422, "Invalid")
    assert set(http.get(f"{JOBS.format(ns=ns)}/notes").json()["metadata"]["annotations"]) == {
        "a"}


def test_objects_over_1_5_mib_are_413_however_they_grow(http: httpx.Client, ns: str) -> None:
    big = job("big")
    big["spec"]["command"] = ["echo", "x" * (1600 * 1024)]  # under the body limit
    body = status(http.post(JOBS.format(ns=ns), json=big), 413, "RequestEntityTooLarge")
    assert "limit is 1572864" in body["message"]
    assert names(http, JOBS.format(ns=ns)) == []
    # An object that grows past it through its status is refused too.
    obj = http.post(JOBS.format(ns=ns), json=job("grows")).json()
    wait_for(lambda: http.get(f"{JOBS.format(ns=ns)}/grows").json().get("status", {}).get(
        "phase") == "Succeeded", message="the job to finish")
    before = http.get(f"{JOBS.format(ns=ns)}/grows").json()
    grown = {"status": {"conditions": [{"type": "Noted", "status": "True", "reason": "Big",
                                        "message": "m" * (1600 * 1024)}]}}
    resp = http.patch(f"{JOBS.format(ns=ns)}/grows/status", headers=MERGE,
                      content=json.dumps(grown))
    status(resp, 413, "RequestEntityTooLarge")
    assert http.get(f"{JOBS.format(ns=ns)}/grows").json() == before, obj


def test_unconditional_merge_patches_under_contention_all_succeed(
        http: httpx.Client, server: ServerProcess, ns: str) -> None:
    """Issue 10.10: 16 writers patching one object lost 5.8% of their patches with "gave
    up after 8 tries"; Kubernetes' GuaranteedUpdate retries until the request's deadline."""
    assert http.post(JOBS.format(ns=ns), json=job("hot")).status_code == 201
    failures: list[str] = []

    def writer(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as own:
            for n in range(15):
                patch = {"metadata": {"labels": {f"w{index}": str(n)}}}
                resp = own.patch(f"{JOBS.format(ns=ns)}/hot", headers=MERGE,
                                 content=json.dumps(patch))
                if resp.status_code != 200:
                    failures.append(resp.text)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    labels = http.get(f"{JOBS.format(ns=ns)}/hot").json()["metadata"]["labels"]
    assert labels == {f"w{i}": "14" for i in range(16)}


# -- watches ------------------------------------------------------------------------------


def db_url(server: ServerProcess) -> str:
    return f"sqlite:///{server.home / 'ketch.db'}"


def test_a_watch_from_a_compacted_resource_version_is_410(
        http: httpx.Client, server: ServerProcess, ns: str) -> None:
    from ketch.core.store import open_store

    first = http.post(JOBS.format(ns=ns), json=job("old")).json()
    since = first["metadata"]["resourceVersion"]
    http.post(JOBS.format(ns=ns), json=job("new")).raise_for_status()
    # Another control plane on the same database compacts the log (as etcd compacts).
    store = open_store(db_url(server), migrate=False)
    try:
        store.prune_events(3600, keep_revisions=0)
    finally:
        store.close()
    for path, params in ((JOBS.format(ns=ns), {"watch": "true"}),
                         ("/api/ketch/watch", {"kinds": "jobs"})):
        resp = http.get(path, params={**params, "resourceVersion": since, "timeoutSeconds": 1})
        assert "too old" in status(resp, 410, "Expired")["message"]


def watch_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """A watch's events: one JSON object a line, as Kubernetes streams them."""
    for line in lines:
        if line.strip():
            yield json.loads(line)


def test_many_watches_share_the_feed_and_each_sees_every_change(
        http: httpx.Client, server: ServerProcess, ns: str) -> None:
    """40 streams on one namespace and one on another: every stream of the namespace gets
    the same events in order, including a write by another control plane on the same
    database (which only the feed's poll of the change log can see)."""
    from ketch.core.store import open_store
    from ketch.jobs import JOB

    start = http.get(JOBS.format(ns=ns)).json()["metadata"]["resourceVersion"]
    seen: dict[int, list[tuple[str, str]]] = {}
    opened = threading.Barrier(42)

    def watch(index: int, namespace: str) -> None:
        got = seen.setdefault(index, [])
        params = {"watch": "true", "resourceVersion": start, "timeoutSeconds": 8}
        with httpx.Client(base_url=server.url, timeout=60) as own, own.stream(
                "GET", JOBS.format(ns=namespace), params=params) as resp:
            opened.wait(30)
            for event in watch_events(resp.iter_lines()):
                got.append((event["type"], event["object"]["metadata"]["name"]))
                if event["object"]["metadata"]["name"] == "elsewhere":
                    return

    threads = [threading.Thread(target=watch, args=(i, ns)) for i in range(40)]
    threads.append(threading.Thread(target=watch, args=(40, f"{ns}-other")))
    for thread in threads:
        thread.start()
    opened.wait(30)
    http.post(JOBS.format(ns=ns), json=job("here")).raise_for_status()
    other = open_store(db_url(server), migrate=False)
    try:
        from ketch.core.resources import Resource

        other.create(JOB, Resource.model_validate({**job("elsewhere"),
                                                   "metadata": {"name": "elsewhere",
                                                                "namespace": ns}}))
    finally:
        other.close()
    for thread in threads:
        thread.join(30)
    assert all(not thread.is_alive() for thread in threads)
    first = seen[0]
    assert ("ADDED", "here") in first and first[-1] == ("ADDED", "elsewhere"), first
    assert all(seen[i] == first for i in range(40))
    assert seen[40] == []


def watch_streams(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    match = re.search(r"^ketch_watch_streams (\S+)$", text, re.MULTILINE)
    assert match, text[-2000:]
    return float(match.group(1))


def test_watch_streams_are_released_when_their_clients_go(
        http: httpx.Client, server: ServerProcess, ns: str) -> None:
    """No stream polls for its client any more: the connection's own disconnect message
    ends it, and /metrics counts the streams the shared feed serves."""
    wait_for(lambda: watch_streams(http) == 0, message="no stream open")
    clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(20)]
    streams = [c.stream("GET", JOBS.format(ns=ns), params={"watch": "true"})
               for c in clients]
    try:
        for stream in streams:
            assert stream.__enter__().status_code == 200
        wait_for(lambda: watch_streams(http) == 20, message="20 streams")
    finally:
        for stream, client in zip(streams, clients, strict=True):
            stream.__exit__(None, None, None)
            client.close()
    wait_for(lambda: watch_streams(http) == 0, message="the streams to be released")
