"""The REST API over HTTP, against a real ``ketch server`` on SQLite and PostgreSQL.

One server per backend serves the whole module; every test works in a namespace
of its own, so tests do not see each other's objects.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

import ketch
from conftest import ServerProcess, new_postgres_database, start_server, wait_for

pytestmark = pytest.mark.slow

API = "/apis/ketch.dev/v1"
MERGE = {"Content-Type": "application/merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
AS_TEST = {"fieldManager": "test"}  # an apply must name its field manager
TERMINAL = ("Succeeded", "Failed", "Cancelled")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``ketch server`` per backend for the whole module."""
    home = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'ketch.db'}"
    else:
        url = new_postgres_database(request.getfixturevalue("postgres_server"))
    srv = start_server(home / "home", database_url=url)
    yield srv
    srv.kill(signal.SIGTERM)




def coll(ns: str) -> str:
    return f"{API}/namespaces/{ns}/jobs"


def job(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": meta,
            "spec": spec or {"command": ["true"]}}


def py(code: str) -> list[str]:
    return [sys.executable, "-u", "-c", code]


def create(http: httpx.Client, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = http.post(coll(ns), json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def names(http: httpx.Client, ns: str, **params: Any) -> list[str]:
    resp = http.get(coll(ns), params=params)
    assert resp.status_code == 200, resp.text
    return [item["metadata"]["name"] for item in resp.json()["items"]]


def finished(http: httpx.Client, ns: str, name: str, timeout: float = 30) -> dict[str, Any]:
    """The job once its phase is terminal (the controller writes no more then)."""
    def done() -> dict[str, Any] | None:
        obj: dict[str, Any] = http.get(f"{coll(ns)}/{name}").json()
        return obj if obj.get("status", {}).get("phase") in TERMINAL else None
    return wait_for(done, timeout=timeout, message=f"job {name} to finish")  # type: ignore[return-value]


def assert_status(resp: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert resp.status_code == code, resp.text
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status" and body["status"] == "Failure", body
    assert body["reason"] == reason and body["code"] == code, body
    return body


def causes(resp: httpx.Response) -> dict[str, str]:
    body = assert_status(resp, 422, "Invalid")
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


def watch_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """A watch's events: one JSON object a line (as Kubernetes streams them), or the
    dashboard's server-sent events (``data: {...}``)."""
    for line in lines:
        if line.startswith("{"):
            yield json.loads(line)
        elif line.startswith("data: "):
            yield json.loads(line[len("data: "):])


# --- create, validation, dry run ------------------------------------------------------


def test_create_sets_identity_and_finalizer_and_duplicate_is_409(
        http: httpx.Client, ns: str) -> None:
    resp = http.post(coll(ns), json=job("a", labels={"team": "a"}))
    assert resp.status_code == 201, resp.text
    assert resp.headers["content-type"] == "application/json"
    obj = resp.json()
    meta = obj["metadata"]
    assert obj["apiVersion"] == "ketch.dev/v1" and obj["kind"] == "Job"
    assert meta["name"] == "a" and meta["namespace"] == ns  # namespace from the URL
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1
    assert meta["finalizers"] == ["ketch.dev/job-cleanup"]
    assert meta["labels"] == {"team": "a"}
    # Defaults are filled in and sent back in camelCase.
    assert obj["spec"]["command"] == ["true"] and obj["spec"]["backoffLimit"] == 0

    again = http.post(coll(ns), json=job("a"))
    body = assert_status(again, 409, "AlreadyExists")
    assert '"a" already exists' in body["message"]
    # The first object is untouched by the failed create.
    got = http.get(f"{coll(ns)}/a").json()
    assert got["metadata"]["uid"] == meta["uid"] and got["metadata"]["labels"] == {"team": "a"}


def test_invalid_requests_are_422_naming_the_field_and_write_nothing(
        http: httpx.Client, ns: str) -> None:
    fields = causes(http.post(coll(ns), json=job("a", command=["x"], backoffLimit="many")))
    assert list(fields) == ["spec.backoffLimit"]
    assert "integer" in fields["spec.backoffLimit"]

    no_name = {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {},
               "spec": {"command": ["x"]}}
    assert causes(http.post(coll(ns), json=no_name)) == {"metadata.name": "required"}

    assert causes(http.post(coll(ns), json=job("a", command=["x"], bogus=1))) == {
        "spec.bogus": "unknown field"}

    both = causes(http.post(coll(ns), json=job("a", command=["x"], python="m:f")))
    assert "exactly one of 'command'" in both["spec"]

    # A body that does not decode is a 400, as kube-apiserver answers; one that decodes
    # to something other than an object is invalid (422).
    for raw in (b"{not json", b"[1, 2"):
        resp = http.post(coll(ns), content=raw, headers={"Content-Type": "application/json"})
        assert_status(resp, 400, "BadRequest")
    for raw in (b'"a string"', b"   "):
        resp = http.post(coll(ns), content=raw, headers={"Content-Type": "application/json"})
        assert_status(resp, 422, "Invalid")

    other = causes(http.post(coll(ns), json={**job("a"), "kind": "Other"}))
    assert "cannot be sent to jobs.ketch.dev" in other["kind"]
    other_group = causes(http.post(coll(ns), json={**job("a"), "apiVersion": "other.dev/v1"}))
    assert "cannot be sent to jobs.ketch.dev" in other_group["apiVersion"]

    elsewhere = job("a")
    elsewhere["metadata"]["namespace"] = "somewhere-else"
    mismatch = causes(http.post(coll(ns), json=elsewhere))
    assert "does not match the request's namespace" in mismatch["metadata.namespace"]

    assert "metadata.name" in causes(http.post(coll(ns), json=job("Not Valid!")))
    assert "dryRun" in causes(http.post(coll(ns), params={"dryRun": "Some"}, json=job("a")))

    assert names(http, ns) == []
    assert names(http, "somewhere-else") == []


def test_dry_run_validates_and_returns_the_object_but_writes_nothing(
        http: httpx.Client, ns: str) -> None:
    resp = http.post(coll(ns), params={"dryRun": "All"}, json=job("dry"))
    assert resp.status_code == 201, resp.text
    obj = resp.json()
    assert obj["metadata"]["name"] == "dry" and obj["metadata"]["namespace"] == ns
    assert obj["metadata"]["finalizers"] == ["ketch.dev/job-cleanup"]
    assert "uid" not in obj["metadata"]
    assert "spec.bogus" in causes(http.post(coll(ns), params={"dryRun": "All"},
                                            json=job("dry", command=["x"], bogus=1)))
    # Apply with dryRun creates nothing either.
    applied = http.patch(f"{coll(ns)}/dry", params={"dryRun": "All", **AS_TEST}, headers=APPLY,
                         content=json.dumps(job("dry")))
    assert applied.status_code == 201 and applied.headers["X-Ketch-Apply"] == "created"
    assert names(http, ns) == []
    assert_status(http.get(f"{coll(ns)}/dry"), 404, "NotFound")
    assert names(http, ns) == []


# --- read ---------------------------------------------------------------------------


def test_get_and_not_found(http: httpx.Client, ns: str) -> None:
    created = create(http, ns, job("present"))
    got = http.get(f"{coll(ns)}/present")
    assert got.status_code == 200
    assert got.json()["metadata"]["uid"] == created["metadata"]["uid"]
    # /status reads the same object.
    assert http.get(f"{coll(ns)}/present/status").json()["metadata"]["uid"] == \
        created["metadata"]["uid"]

    missing = assert_status(http.get(f"{coll(ns)}/absent"), 404, "NotFound")
    assert '"absent"' in missing["message"] and ns in missing["message"]
    # The same name in another namespace is not found.
    assert_status(http.get(f"{coll('other-ns')}/present"), 404, "NotFound")
    assert_status(http.get(f"{API}/namespaces/{ns}/gizmos"), 404, "NotFound")
    assert_status(http.get(f"{API}/namespaces/{ns}/gizmos/x"), 404, "NotFound")
    assert_status(http.get("/apis/other.dev/v1/namespaces/default/jobs"), 404, "NotFound")
    assert_status(http.delete(f"{coll(ns)}/absent"), 404, "NotFound")
    absent = job("absent")
    absent["metadata"]["resourceVersion"] = "1"
    assert_status(http.put(f"{coll(ns)}/absent", json=absent), 404, "NotFound")
    assert_status(http.patch(f"{coll(ns)}/absent", headers=MERGE,
                             content=b'{"metadata": {"labels": {"a": "b"}}}'), 404, "NotFound")


def test_list_label_selectors_all_namespaces_and_resource_version(
        http: httpx.Client, ns: str) -> None:
    create(http, ns, job("ja", labels={"team": "a"}))
    create(http, ns, job("jb", labels={"team": "b"}))
    create(http, ns, job("jc", labels={"team": "c", "tier": "x"}))
    create(http, ns, job("jn"))
    other = f"{ns}-2"
    create(http, other, job("elsewhere", labels={"team": "a"}))

    assert sorted(names(http, ns)) == ["ja", "jb", "jc", "jn"]
    assert names(http, ns, labelSelector="team=a") == ["ja"]
    assert names(http, ns, labelSelector="team==a") == ["ja"]
    assert sorted(names(http, ns, labelSelector="team!=a")) == ["jb", "jc", "jn"]
    assert sorted(names(http, ns, labelSelector="team in (a,b)")) == ["ja", "jb"]
    assert sorted(names(http, ns, labelSelector="team notin (a, b)")) == ["jc", "jn"]
    assert sorted(names(http, ns, labelSelector="team")) == ["ja", "jb", "jc"]
    assert names(http, ns, labelSelector="!team") == ["jn"]
    assert names(http, ns, labelSelector="team,tier=x") == ["jc"]
    assert names(http, ns, fieldSelector="metadata.name=jb") == ["jb"]
    # Selectors that do not parse are 400s, as kube-apiserver answers them.
    for bad in ("team in (a", "team in a", "==", "a=b=c", "team=(a)", "x@y", "team in ()"):
        resp = http.get(coll(ns), params={"labelSelector": bad})
        body = assert_status(resp, 400, "BadRequest")
        assert body["details"]["causes"][0]["field"] == "labelSelector", bad
    resp = http.get(coll(ns), params={"fieldSelector": "spec.x=1"})
    assert assert_status(resp, 400, "BadRequest")["details"]["causes"][0]["field"] == (
        "fieldSelector")

    everywhere = http.get(f"{API}/jobs", params={"labelSelector": "team=a"})
    assert everywhere.status_code == 200
    found = {(i["metadata"]["namespace"], i["metadata"]["name"])
             for i in everywhere.json()["items"]}
    assert {(ns, "ja"), (other, "elsewhere")} <= found
    assert all(i["metadata"]["labels"]["team"] == "a" for i in everywhere.json()["items"])

    listed = http.get(coll(ns)).json()
    assert listed["kind"] == "JobList" and listed["apiVersion"] == "ketch.dev/v1"
    rv = int(listed["metadata"]["resourceVersion"])
    assert rv >= max(int(i["metadata"]["resourceVersion"]) for i in listed["items"])
    assert "continue" not in listed["metadata"]


def test_list_pagination_returns_every_item_exactly_once(http: httpx.Client, ns: str) -> None:
    made = {f"p{i}" for i in range(7)}
    for name in sorted(made):
        create(http, ns, job(name, labels={"page": "yes"}))
    create(http, ns, job("skipped"))
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "labelSelector": "page=yes"}
        if token:
            params["continue"] = token
        resp = http.get(coll(ns), params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["items"]) <= 3
        seen += [i["metadata"]["name"] for i in body["items"]]
        pages += 1
        token = body["metadata"].get("continue")
        if not token:
            break
        assert pages < 10
    assert sorted(seen) == sorted(made) and len(seen) == len(made)
    assert pages == 3
    assert "continue" in causes(http.get(coll(ns), params={"continue": "not-a-token"}))
    assert "query.limit" in causes(http.get(coll(ns), params={"limit": -1}))


# --- write --------------------------------------------------------------------------


def test_replace_with_stale_version_is_conflict_and_spec_change_bumps_generation(
        http: httpx.Client, ns: str) -> None:
    # Running, not finished: a finished Job's spec is immutable (as a Kubernetes Job's
    # template). The controller has written status since, and writes none until it ends.
    created = create(http, ns, job("r", command=["sleep", "120"]))
    current: dict[str, Any] = wait_for(  # type: ignore[assignment]
        lambda: (o := http.get(f"{coll(ns)}/r").json()).get("status", {}).get("phase")
        == "Running" and o, timeout=30, message="job r running")
    assert current["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]

    stale = {**current, "metadata": {**current["metadata"],
                                     "resourceVersion": created["metadata"]["resourceVersion"]}}
    body = assert_status(http.put(f"{coll(ns)}/r", json=stale), 409, "Conflict")
    assert "has been modified" in body["message"]

    changed = {**current, "spec": {**current["spec"], "command": ["echo", "2"]}}
    resp = http.put(f"{coll(ns)}/r", json=changed)
    assert resp.status_code == 200, resp.text
    replaced = resp.json()
    assert replaced["spec"]["command"] == ["echo", "2"]
    assert replaced["metadata"]["generation"] == current["metadata"]["generation"] + 1
    assert int(replaced["metadata"]["resourceVersion"]) > int(
        current["metadata"]["resourceVersion"])
    # Admission's finalizer stays even though the body omitted it... and a
    # replace that leaves the spec alone does not bump the generation.
    bare = job("r", command=["echo", "2"])
    bare["metadata"]["resourceVersion"] = replaced["metadata"]["resourceVersion"]
    again = http.put(f"{coll(ns)}/r", json=bare)
    assert again.status_code == 200, again.text
    assert again.json()["metadata"]["generation"] == replaced["metadata"]["generation"]
    assert again.json()["metadata"]["finalizers"] == ["ketch.dev/job-cleanup"]

    renamed = {**changed, "metadata": {**changed["metadata"], "name": "other"}}
    assert "metadata.name" in causes(http.put(f"{coll(ns)}/r", json=renamed))
    assert http.get(f"{coll(ns)}/r").json()["spec"]["command"] == ["echo", "2"]
    assert http.delete(f"{coll(ns)}/r").status_code == 200


def test_merge_patch_and_server_side_apply(http: httpx.Client, ns: str) -> None:
    create(http, ns, job("m", labels={"keep": "1", "drop": "1"}))
    resp = http.patch(f"{coll(ns)}/m", headers=MERGE,
                      content=json.dumps({"metadata": {"labels": {"new": "2", "drop": None}}}))
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"]["labels"] == {"keep": "1", "new": "2"}
    assert resp.json()["metadata"]["generation"] == 1  # metadata only
    assert names(http, ns, labelSelector="new=2") == ["m"]
    # A patch pinned to a stale resourceVersion is a conflict, not retried.
    pinned = {"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}}
    assert_status(http.patch(f"{coll(ns)}/m", headers=MERGE, content=json.dumps(pinned)),
                  409, "Conflict")
    assert "spec.bogus" in causes(http.patch(f"{coll(ns)}/m", headers=MERGE,
                                             content=b'{"spec": {"bogus": 1}}'))
    for bad in (b"[1, 2]", b'{"metadata": null}', b'{"metadata": 5}'):
        assert_status(http.patch(f"{coll(ns)}/m", headers=MERGE, content=bad), 422, "Invalid")

    # The applied Job sleeps: a finished Job's spec is immutable, and an `echo` could
    # finish between the applies (it did, on a loaded CI machine).
    doc = ("apiVersion: ketch.dev/v1\nkind: Job\nmetadata:\n  name: ap\n"
           "  labels: {via: apply}\nspec:\n  command: [sleep, '120']\n")
    first = http.patch(f"{coll(ns)}/ap", headers=APPLY, params=AS_TEST, content=doc)
    assert first.status_code == 201, first.text
    assert first.headers["X-Ketch-Apply"] == "created"
    assert first.json()["metadata"]["finalizers"] == ["ketch.dev/job-cleanup"]
    second = http.patch(f"{coll(ns)}/ap", headers=APPLY, params=AS_TEST, content=doc)
    assert second.status_code == 200 and second.headers["X-Ketch-Apply"] == "unchanged"
    assert second.json()["metadata"]["generation"] == 1
    # JSON is YAML too.
    changed = job("ap", labels={"via": "apply"}, command=["sleep", "121"])
    third = http.patch(f"{coll(ns)}/ap", headers=APPLY, params=AS_TEST, content=json.dumps(changed))
    assert third.status_code == 200 and third.headers["X-Ketch-Apply"] == "configured"
    assert third.json()["spec"]["command"] == ["sleep", "121"]
    assert third.json()["metadata"]["generation"] == 2
    assert third.json()["metadata"]["uid"] == first.json()["metadata"]["uid"]
    mismatch = http.patch(f"{coll(ns)}/ap", headers=APPLY, params=AS_TEST,
                          content=json.dumps(job("zz")))
    assert "metadata.name" in causes(mismatch)
    assert sorted(names(http, ns)) == ["ap", "m"]


def test_status_subresource_changes_status_only(http: httpx.Client, ns: str) -> None:
    create(http, ns, job("s"))
    current = finished(http, ns, "s")
    assert current["status"]["phase"] == "Succeeded"

    patch = {"status": {"exitCode": 7}, "spec": {"command": ["changed"]},
             "metadata": {"labels": {"sneaky": "yes"}}}
    resp = http.patch(f"{coll(ns)}/s/status", headers=MERGE, content=json.dumps(patch))
    assert resp.status_code == 200, resp.text
    patched = resp.json()
    assert patched["status"]["exitCode"] == 7 and patched["status"]["phase"] == "Succeeded"
    assert patched["spec"] == current["spec"]
    assert patched["metadata"]["generation"] == current["metadata"]["generation"]

    full = {**patched, "spec": {"command": ["changed"]},
            "status": {**patched["status"], "phase": "Failed", "exitCode": 3}}
    resp = http.put(f"{coll(ns)}/s/status", json=full)
    assert resp.status_code == 200, resp.text
    stored = http.get(f"{coll(ns)}/s").json()
    assert stored["status"]["phase"] == "Failed" and stored["status"]["exitCode"] == 3
    assert stored["spec"] == current["spec"]
    assert stored["metadata"]["generation"] == current["metadata"]["generation"]
    assert "sneaky" not in stored["metadata"].get("labels", {})

    bad = causes(http.patch(f"{coll(ns)}/s/status", headers=MERGE,
                            content=b'{"status": {"phase": "Bogus"}}'))
    assert "status.phase" in bad
    stale = {**stored, "metadata": {**stored["metadata"], "resourceVersion": "1"}}
    assert_status(http.put(f"{coll(ns)}/s/status", json=stale), 409, "Conflict")


def test_delete_removes_the_object_once_finalized(http: httpx.Client, ns: str) -> None:
    create(http, ns, job("d", command=py("import time; time.sleep(30)")))
    create(http, ns, job("keep"))
    resp = http.delete(f"{coll(ns)}/d")
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"]["name"] == "d"

    def gone() -> bool:
        return http.get(f"{coll(ns)}/d").status_code == 404
    wait_for(gone, timeout=30, message="the deleted job to go")
    assert_status(http.get(f"{coll(ns)}/d"), 404, "NotFound")
    assert names(http, ns) == ["keep"]
    assert_status(http.delete(f"{coll(ns)}/d"), 404, "NotFound")
    # A delete pinned to a stale resourceVersion is refused; a bad one is invalid.
    assert_status(http.delete(f"{coll(ns)}/keep", params={"resourceVersion": "1"}),
                  409, "Conflict")
    assert_status(http.delete(f"{coll(ns)}/keep", params={"resourceVersion": "abc"}),
                  422, "Invalid")
    assert names(http, ns) == ["keep"]


# --- watch --------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Reads one watch stream into ``events`` until the server ends it."""

    def __init__(self, base: str, path: str, **params: Any) -> None:
        super().__init__(daemon=True)
        self.base, self.path = base, path
        self.params = {"watch": "true", **params}
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self.content_type = ""
        self.opened = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c, \
                c.stream("GET", self.path, params=self.params) as resp:
            self.status = resp.status_code
            self.content_type = resp.headers.get("content-type", "")
            self.opened.set()
            for event in watch_events(resp.iter_lines()):
                self.events.append(event)

    def seen(self, name: str) -> list[str]:
        return [e["type"] for e in self.events if e["object"]["metadata"]["name"] == name]


def test_watch_streams_added_modified_deleted_in_order(
        server: ServerProcess, http: httpx.Client, ns: str) -> None:
    create(http, ns, job("old"))
    finished(http, ns, "old")
    listed = http.get(coll(ns)).json()
    list_rv = listed["metadata"]["resourceVersion"]

    fresh = Watcher(server.url, coll(ns), timeoutSeconds=4)
    since = Watcher(server.url, coll(ns), timeoutSeconds=4, resourceVersion=list_rv)
    only_new = Watcher(server.url, coll(ns), timeoutSeconds=4,
                       fieldSelector="metadata.name=new")
    labelled = Watcher(server.url, f"{API}/jobs", timeoutSeconds=4, labelSelector="w=yes",
                       resourceVersion=list_rv)
    watchers = (fresh, since, only_new, labelled)
    for w in watchers:
        w.start()
    for w in watchers:
        assert w.opened.wait(10)
    # Headers come before the initial list; once "old" arrived, the list is done.
    wait_for(lambda: fresh.events, timeout=10, message="the initial ADDED")
    started = time.monotonic()
    create(http, ns, job("new"))
    resp = http.patch(f"{coll(ns)}/new", headers=MERGE,
                      content=json.dumps({"metadata": {"labels": {"w": "yes"}}}))
    assert resp.status_code == 200
    assert http.delete(f"{coll(ns)}/new").status_code == 200
    wait_for(lambda: http.get(f"{coll(ns)}/new").status_code == 404, timeout=10)
    for w in watchers:
        w.join(15)
        assert not w.is_alive()
        # JSON lines, as kube-apiserver streams a watch to a client that did not ask
        # for server-sent events.
        assert w.status == 200 and w.content_type.startswith("application/json")
    assert time.monotonic() - started < 10  # timeoutSeconds ended the streams

    # Without resourceVersion: ADDED for what exists, then the changes.
    assert fresh.seen("old") == ["ADDED"]
    for w in (fresh, since, only_new):
        types = w.seen("new")
        assert types[0] == "ADDED" and types[-1] == "DELETED", types
        assert set(types[1:-1]) <= {"MODIFIED"}, types
    # Followed from a known point, every change arrives: the label patch, and the
    # controller's status writes, then the finalizer's removal.
    for w in (fresh, since):
        assert "MODIFIED" in w.seen("new"), w.seen("new")
        versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in w.events
                    if e["object"]["metadata"]["name"] == "new"]
        assert versions == sorted(versions)
        assert any(e["object"]["metadata"].get("labels") == {"w": "yes"} for e in w.events)
    # From the list's resourceVersion: only what happened after it.
    assert since.seen("old") == []
    assert {e["object"]["metadata"]["name"] for e in only_new.events} == {"new"}
    # The label selector sees the object only once it carries the label.
    assert labelled.seen("new") and labelled.seen("new")[0] == "MODIFIED"
    assert all(e["object"]["metadata"]["labels"] == {"w": "yes"} for e in labelled.events)
    assert labelled.seen("old") == []

    for params in ({"resourceVersion": "abc"}, {"labelSelector": "(("}):
        bad = http.get(coll(ns), params={"watch": "true", "timeoutSeconds": 1, **params})
        body = assert_status(bad, 400, "BadRequest")  # as kube-apiserver answers
        assert [c["field"] for c in body["details"]["causes"]] == list(params)


# --- logs ---------------------------------------------------------------------------


def test_log_of_finished_job_and_bad_attempt(http: httpx.Client, ns: str) -> None:
    create(http, ns, job("hello", command=py("print('hello'); print('world')")))
    assert finished(http, ns, "hello")["status"]["phase"] == "Succeeded"
    resp = http.get(f"{coll(ns)}/hello/log")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text == "hello\nworld\n"
    assert http.get(f"{coll(ns)}/hello/log", params={"attempt": 1}).text == "hello\nworld\n"
    body = assert_status(http.get(f"{coll(ns)}/hello/log", params={"attempt": 5}),
                         422, "Invalid")
    assert "not 5" in body["message"]
    assert "query.attempt" in causes(http.get(f"{coll(ns)}/hello/log", params={"attempt": 0}))
    assert_status(http.get(f"{coll(ns)}/absent/log"), 404, "NotFound")


def test_follow_log_streams_lines_as_they_are_printed(http: httpx.Client, ns: str) -> None:
    code = "import time\nprint('first')\ntime.sleep(2)\nprint('second')\n"
    create(http, ns, job("tail", command=py(code)))
    lines: list[tuple[str, str]] = []
    with http.stream("GET", f"{coll(ns)}/tail/log", params={"follow": "true"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        for line in resp.iter_lines():
            phase = http.get(f"{coll(ns)}/tail").json().get("status", {}).get("phase", "")
            lines.append((line, phase))
    assert [line for line, _ in lines] == ["first", "second"]
    # The first line arrived while the job was still running.
    assert lines[0][1] == "Running"
    assert finished(http, ns, "tail")["status"]["phase"] == "Succeeded"


# --- discovery, health, metrics, OpenAPI --------------------------------------------


def test_discovery(http: httpx.Client, ns: str) -> None:
    groups = http.get("/apis").json()
    assert groups["kind"] == "APIGroupList"
    group = next(g for g in groups["groups"] if g["name"] == "ketch.dev")
    assert group["preferredVersion"] == {"groupVersion": "ketch.dev/v1", "version": "v1"}

    resources = http.get(API).json()
    assert resources["kind"] == "APIResourceList"
    assert resources["groupVersion"] == "ketch.dev/v1"
    jobs = next(r for r in resources["resources"] if r["name"] == "jobs")
    assert jobs["kind"] == "Job" and jobs["namespaced"] is True
    assert jobs["singularName"] == "job" and jobs["shortNames"] == ["kj"]
    assert {"create", "delete", "get", "list", "patch", "update", "watch"} <= set(jobs["verbs"])

    kinds = http.get("/api/ketch/kinds").json()["items"]
    job_kind = next(k for k in kinds if k["kind"] == "Job")
    assert job_kind["plural"] == "jobs" and job_kind["hasLogs"] is True
    assert "Succeeded" in job_kind["conditions"]
    assert any(c["name"] == "PHASE" for c in job_kind["columns"])
    components = http.get("/api/ketch/components").json()["items"]
    jobs_component = next(c for c in components if c["name"] == "jobs")
    assert [k["kind"] for k in jobs_component["kinds"]] == ["Job"]

    create(http, ns, job("here"))
    spaces = http.get("/api/v1/namespaces").json()
    assert spaces["kind"] == "NamespaceList"
    listed = [i["metadata"]["name"] for i in spaces["items"]]
    assert {"default", ns} <= set(listed) and listed == sorted(listed)

    version = http.get("/version").json()
    # Kubernetes' version.Info, ketch's own version in gitVersion's build metadata.
    assert version["gitVersion"] == f"v1.32.0+ketch.{ketch.__version__}"
    assert (version["major"], version["minor"]) == ("1", "32")


def test_health_metrics_and_openapi(http: httpx.Client, ns: str) -> None:
    for path in ("/healthz", "/readyz"):
        resp = http.get(path)
        assert resp.status_code == 200 and resp.text == "ok"
    names(http, ns)  # one request on a kind route to count
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert "# TYPE ketch_http_requests_total counter" in text
    assert "# TYPE ketch_workqueue_depth gauge" in text
    assert 'ketch_workqueue_depth{kind="jobs.ketch.dev"}' in text
    assert "ketch_up 1.0" in text
    # Requests are labelled by route template, not by raw path.
    assert ('ketch_http_requests_total{code="200",method="GET",'
            'route="/apis/ketch.dev/v1/namespaces/{namespace}/jobs"}') in text
    assert 'route="/healthz"' in text

    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    item = f"{API}/namespaces/{{namespace}}/jobs/{{name}}"
    assert {"get", "post"} <= set(paths[f"{API}/namespaces/{{namespace}}/jobs"])
    assert {"get", "put", "patch", "delete"} <= set(paths[item])
    assert {"get", "put", "patch"} <= set(paths[f"{item}/status"])
    assert "get" in paths[f"{item}/log"] and "get" in paths[f"{API}/jobs"]
    body = paths[f"{API}/namespaces/{{namespace}}/jobs"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["properties"]["kind"]["enum"] == ["Job"]
    # Every $ref resolves.
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs <= set(spec["components"]["schemas"]), refs - set(spec["components"]["schemas"])


def test_server_binds_loopback_only_and_serves_no_dashboard(
        server: ServerProcess, http: httpx.Client) -> None:
    host = urlsplit(server.url).hostname
    port = urlsplit(server.url).port
    assert host == "127.0.0.1"
    listening = [c.laddr for c in psutil.Process(server.proc.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert {addr.port for addr in listening} == {port}
    # `ketch server` is the API only: no dashboard at /.
    root = http.get("/")
    assert root.status_code == 404
    assert root.json()["kind"] == "Status" and root.json()["reason"] == "NotFound"
    assert "<html" not in http.get("/jobs").text.lower()
    assert http.get("/jobs").status_code == 404
    assert_status(http.delete(API), 405, "MethodNotAllowed")


def test_home_is_the_servers_own(server: ServerProcess) -> None:
    info = json.loads((Path(server.home) / "server.json").read_text())
    assert info["url"] == server.url and info["mode"] == "server"
    assert info["token"] is None  # loopback needs no token


def test_one_stream_watches_several_kinds(server: ServerProcess, http: httpx.Client,
                                          ns: str) -> None:
    """/api/ketch/watch: what a dashboard page watching every kind uses (a browser allows
    six connections per host, so one stream per kind does not scale)."""
    create(http, ns, job("before"))
    both = Watcher(server.url, "/api/ketch/watch", kinds="jobs,pipelineruns.pipelines.ketch.dev",
                   namespace=ns, timeoutSeconds=4)
    other_ns = Watcher(server.url, "/api/ketch/watch", kinds="jobs", namespace=f"{ns}-x",
                       timeoutSeconds=4)
    for w in (both, other_ns):
        w.start()
        assert w.opened.wait(10)
    wait_for(lambda: both.events, timeout=10, message="the initial ADDED")
    create(http, ns, job("after"))
    run = {"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
           "metadata": {"name": "a-run"}, "spec": {"pipelineSpec": {
               "pipelineInfo": {"name": "empty"}, "root": {"dag": {"tasks": {}}}}}}
    resp = http.post(f"/apis/pipelines.ketch.dev/v1/namespaces/{ns}/pipelineruns", json=run)
    assert resp.status_code == 201, resp.text
    for w in (both, other_ns):
        w.join(15)
        assert w.status == 200 and w.content_type.startswith("text/event-stream")
    kinds = {(e["object"]["kind"], e["object"]["metadata"]["name"]) for e in both.events}
    assert {("Job", "before"), ("Job", "after"), ("PipelineRun", "a-run")} <= kinds
    assert other_ns.events == []
    bad = http.get("/api/ketch/watch", params={"kinds": "nosuchkind"})
    assert bad.status_code == 404 and "nosuchkind" in bad.text
