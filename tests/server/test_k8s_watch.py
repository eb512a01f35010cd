"""Watch, field selectors, fieldValidation and DeleteOptions at the HTTP level, against a
real ``ketch server``: the Kubernetes wire format (JSON lines) beside the dashboard's
server-sent events, chosen by ``Accept``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, start_server, wait_for

API = "/apis/ketch.dev/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(Path(tmp_path_factory.mktemp("k8s-watch")))
    yield proc
    proc.kill()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def coll(ns: str) -> str:
    return f"{API}/namespaces/{ns}/jobs"


def job(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name, **meta},
            "spec": {"command": [sys.executable, "-c", "pass"]}}


def stream(http: httpx.Client, path: str, headers: dict[str, str] | None = None,
           **params: Any) -> tuple[str, list[str]]:
    with http.stream("GET", path, params=params, headers=headers) as resp:
        assert resp.status_code == 200, resp.read()
        return resp.headers["content-type"], list(resp.iter_lines())


def test_watch_is_json_lines_unless_the_request_accepts_event_streams(
        http: httpx.Client) -> None:
    http.post(coll("fmt"), json=job("a")).raise_for_status()
    # The Python client's spelling of the boolean, and its Accept.
    ctype, lines = stream(http, coll("fmt"), {"Accept": "application/json"},
                          watch="True", timeoutSeconds=1)
    assert ctype == "application/json"
    events = [json.loads(line) for line in lines if line]
    assert events and events[0]["type"] == "ADDED"
    assert events[0]["object"]["metadata"]["name"] == "a"
    assert all(line.startswith("{") for line in lines if line), lines
    # The dashboard's EventSource: server-sent events, as before.
    ctype, lines = stream(http, coll("fmt"), {"Accept": "text/event-stream"},
                          watch="1", timeoutSeconds=1)
    assert ctype.startswith("text/event-stream")
    data = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]
    assert data[0]["type"] == "ADDED" and data[0]["object"]["metadata"]["name"] == "a"


def test_bookmarks_close_a_timed_watch_with_the_version_to_resume_from(
        http: httpx.Client) -> None:
    made = http.post(coll("bm"), json=job("b")).json()
    _, lines = stream(http, coll("bm"), watch="true", allowWatchBookmarks="true",
                      timeoutSeconds=1)
    events = [json.loads(line) for line in lines if line]
    last = events[-1]
    assert last["type"] == "BOOKMARK", events
    assert set(last["object"]) == {"apiVersion", "kind", "metadata"}
    assert set(last["object"]["metadata"]) == {"resourceVersion"}
    assert int(last["object"]["metadata"]["resourceVersion"]) >= int(
        made["metadata"]["resourceVersion"])
    # Without the parameter, no bookmark.
    _, lines = stream(http, coll("bm"), watch="true", timeoutSeconds=1)
    assert all(json.loads(line)["type"] != "BOOKMARK" for line in lines if line)


def test_field_selectors_on_phase_and_namespace(http: httpx.Client) -> None:
    http.post(coll("fs"), json=job("done")).raise_for_status()
    wait_for(lambda: http.get(f"{coll('fs')}/done").json().get("status", {}).get("phase")
             == "Succeeded", timeout=30, message="the job to succeed")
    http.post(coll("fs2"), json=job("elsewhere")).raise_for_status()
    listed = http.get(f"{API}/jobs", params={"fieldSelector": "metadata.namespace=fs"}).json()
    assert [i["metadata"]["name"] for i in listed["items"]] == ["done"]
    succeeded = http.get(coll("fs"), params={"fieldSelector": "status.phase=Succeeded"}).json()
    assert [i["metadata"]["name"] for i in succeeded["items"]] == ["done"]
    running = http.get(coll("fs"), params={"fieldSelector": "status.phase!=Succeeded"}).json()
    assert running["items"] == []
    _, lines = stream(http, coll("fs"), watch="true", timeoutSeconds=1,
                      fieldSelector="status.phase=Pending")
    assert [line for line in lines if line] == []
    for bad in ("spec.command=x", "status.phase"):
        resp = http.get(coll("fs"), params={"fieldSelector": bad, "watch": "true"})
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert body["reason"] == "BadRequest"
        assert body["details"]["causes"][0]["field"] == "fieldSelector"


def test_field_validation_ignore_warn_strict_and_the_default(http: httpx.Client) -> None:
    body = {**job("v"), "spec": {**job("v")["spec"], "nosuch": 1}}
    default = http.post(coll("fv"), json=body)
    assert default.status_code == 422 and default.json()["details"]["causes"][0][
        "field"] == "spec.nosuch"
    ignored = http.post(coll("fv"), params={"fieldValidation": "Ignore"}, json=body)
    assert ignored.status_code == 201 and "warning" not in ignored.headers
    assert "nosuch" not in ignored.json()["spec"]
    patched = http.patch(f"{coll('fv')}/v", params={"fieldValidation": "Warn"},
                         headers={"Content-Type": "application/merge-patch+json"},
                         content=json.dumps({"metadata": {"bogus": 1}}))
    assert patched.status_code == 200, patched.text
    assert patched.headers.get_list("warning") == ['299 - "unknown field \\"metadata.bogus\\""']
    strict = http.patch(f"{coll('fv')}/v", params={"fieldValidation": "Strict"},
                        headers={"Content-Type": "application/merge-patch+json"},
                        content=json.dumps({"spec": {"a": 1, "b": 2}}))
    assert strict.status_code == 400
    assert [c["field"] for c in strict.json()["details"]["causes"]] == ["spec.a", "spec.b"]
    bad = http.post(coll("fv"), params={"fieldValidation": "strict"}, json=job("w"))
    assert bad.status_code == 400 and bad.json()["details"]["causes"][0][
        "field"] == "fieldValidation"


def test_delete_cascades_to_owned_objects_unless_orphaned(http: httpx.Client) -> None:
    def owned(name: str, owner: dict[str, Any]) -> dict[str, Any]:
        ref = {"apiVersion": "ketch.dev/v1", "kind": "Job", "name": owner["metadata"]["name"],
               "uid": owner["metadata"]["uid"]}
        return job(name, ownerReferences=[ref])

    def gone(name: str) -> bool:
        return http.get(f"{coll('del')}/{name}").status_code == 404

    owner = http.post(coll("del"), json=job("owner")).json()
    http.post(coll("del"), json=owned("child", owner)).raise_for_status()
    grandchild_owner = http.get(f"{coll('del')}/child").json()
    http.post(coll("del"), json=owned("grandchild", grandchild_owner)).raise_for_status()
    keeper = http.post(coll("del"), json=job("keeper")).json()
    http.post(coll("del"), json=owned("orphan", keeper)).raise_for_status()

    resp = http.request("DELETE", f"{coll('del')}/owner",
                        json={"propagationPolicy": "Background"})
    assert resp.status_code == 200, resp.text
    for name in ("owner", "child", "grandchild"):
        wait_for(lambda n=name: gone(n), timeout=30, message=f"{name} to go")
    assert http.delete(f"{coll('del')}/keeper",
                       params={"propagationPolicy": "Orphan"}).status_code == 200
    wait_for(lambda: gone("keeper"), timeout=30, message="keeper to go")
    assert not gone("orphan")
    stale = http.request("DELETE", f"{coll('del')}/orphan",
                         json={"preconditions": {"resourceVersion": "1"}})
    assert stale.status_code == 409 and not gone("orphan")
    bad = http.delete(f"{coll('del')}/orphan", params={"propagationPolicy": "Sideways"})
    assert bad.status_code == 400 and not gone("orphan")


def test_a_phase_selected_watch_sees_objects_enter_and_leave(http: httpx.Client) -> None:
    """``status.phase=Running``: the job comes as ADDED when it starts running and as
    DELETED when it stops, as kube-apiserver turns moves across a field selector into
    events; the same from a resumed stream and from a fresh one."""
    start = http.get(coll("ph")).json()["metadata"]["resourceVersion"]
    body = {**job("runner"), "spec": {"command": [sys.executable, "-c",
                                                  "import time; time.sleep(1)"]}}
    fresh: list[str] = []
    with http.stream("GET", coll("ph"), params={
            "watch": "true", "fieldSelector": "status.phase=Running",
            "timeoutSeconds": 30}) as resp:
        http.post(coll("ph"), json=body).raise_for_status()
        for line in resp.iter_lines():
            if line:
                event = json.loads(line)
                assert event["object"]["metadata"]["name"] == "runner"
                fresh.append(event["type"])
                if event["type"] == "DELETED":
                    break
    assert fresh[0] == "ADDED" and fresh[-1] == "DELETED", fresh
    assert set(fresh[1:-1]) <= {"MODIFIED"}, fresh
    _, lines = stream(http, coll("ph"), watch="true", resourceVersion=start,
                      fieldSelector="status.phase=Running", timeoutSeconds=1)
    resumed = [json.loads(line) for line in lines if line]
    types = [e["type"] for e in resumed]
    assert types[0] == "ADDED" and types[-1] == "DELETED", types
    assert resumed[0]["object"]["status"]["phase"] == "Running"
    assert resumed[-1]["object"]["status"]["phase"] != "Running"
