"""What kubectl reads to find and show things, over HTTP against a real ``ketch server``:
``/version``, discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/{g}``, ``/apis/{g}/{v}``,
aggregated discovery chosen by ``Accept`` and told by ``Content-Type``), ``/openapi/v3``,
and ``meta.k8s.io`` Tables for list, get and watch."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, start_server, wait_for

pytestmark = pytest.mark.slow

JOBS = "/apis/ketch.dev/v1/namespaces/{ns}/jobs"
AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
              "application/json")
TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
         "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(Path(tmp_path_factory.mktemp("k8s-discovery")))
    yield proc
    proc.kill()


def _media(content_type: str) -> tuple[str, dict[str, str]]:
    """The type and parameters, parsed as Go's mime.ParseMediaType (client-go) does."""
    msg = Message()
    msg["content-type"] = content_type
    params = dict(msg.get_params()[1:])  # type: ignore[index]
    return msg.get_content_type(), params


def test_version_is_kubernetes_shaped(http: httpx.Client) -> None:
    info = http.get("/version").json()
    assert (info["major"], info["minor"]) == ("1", "32")
    assert info["gitVersion"].startswith("v1.32.0+ketch.")
    assert {"gitCommit", "buildDate", "goVersion", "compiler", "platform"} <= info.keys()


def test_plain_discovery(http: httpx.Client) -> None:
    api = http.get("/api").json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]

    core = http.get("/api/v1").json()
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert {"pods", "pods/log", "configmaps", "secrets", "events", "namespaces"} <= set(by_name)
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["pods"]["shortNames"] == ["po"]
    assert set(by_name["pods"]["verbs"]) == {"delete", "get", "list", "watch"}
    assert by_name["pods/log"]["verbs"] == ["get"] and by_name["pods/log"]["kind"] == "Pod"
    assert "create" not in by_name["pods"]["verbs"]

    groups = http.get("/apis").json()
    assert groups["kind"] == "APIGroupList"
    names = [g["name"] for g in groups["groups"]]
    assert "ketch.dev" in names and "" not in names  # the core group is at /api only
    assert http.get("/apis/ketch.dev").json() == {
        "kind": "APIGroup", "apiVersion": "v1", "name": "ketch.dev",
        "versions": [{"groupVersion": "ketch.dev/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "ketch.dev/v1", "version": "v1"}}

    ketch = http.get("/apis/ketch.dev/v1").json()
    assert ketch["groupVersion"] == "ketch.dev/v1"
    entries = {r["name"]: r for r in ketch["resources"]}
    jobs = entries["jobs"]
    assert (jobs["kind"], jobs["singularName"], jobs["namespaced"]) == ("Job", "job", True)
    assert jobs["shortNames"] == ["kj"] and "ketch" in jobs["categories"]
    assert {"create", "delete", "get", "list", "patch", "update", "watch"} == set(jobs["verbs"])
    assert set(entries["jobs/status"]["verbs"]) == {"get", "patch", "update"}
    assert entries["jobs/log"]["verbs"] == ["get"]
    isvcs = http.get("/apis/serving.kserve.io/v1beta1").json()["resources"]
    assert any(r["name"] == "inferenceservices" and "isvc" in r["shortNames"] for r in isvcs)


@pytest.mark.parametrize("path", ["/apis/nope.example", "/apis/ketch.dev/v9",
                                  "/apis/nope.example/v1", "/api/v2"])
def test_unknown_group_or_version_is_a_404_status(http: httpx.Client, path: str) -> None:
    resp = http.get(path)
    assert resp.status_code == 404
    body = resp.json()
    assert body["kind"] == "Status" and body["code"] == 404 and body["reason"] == "NotFound"


def test_aggregated_discovery_by_accept(http: httpx.Client) -> None:
    for path, groups in (("/api", [""]), ("/apis", None)):
        resp = http.get(path, headers={"Accept": AGGREGATED})
        assert resp.status_code == 200
        base, params = _media(resp.headers["content-type"])
        # What client-go checks before it reads the body as aggregated discovery.
        assert base == "application/json"
        assert params == {"g": "apidiscovery.k8s.io", "v": "v2", "as": "APIGroupDiscoveryList"}
        body = resp.json()
        assert body["kind"] == "APIGroupDiscoveryList"
        assert body["apiVersion"] == "apidiscovery.k8s.io/v2"
        names = [g["metadata"]["name"] for g in body["items"]]
        if groups is not None:
            assert names == groups
        else:
            assert "ketch.dev" in names and "" not in names

    body = http.get("/apis", headers={"Accept": AGGREGATED}).json()
    ketch = next(g for g in body["items"] if g["metadata"]["name"] == "ketch.dev")
    version = ketch["versions"][0]
    assert version["version"] == "v1" and version["freshness"] == "Current"
    jobs = next(r for r in version["resources"] if r["resource"] == "jobs")
    assert jobs["responseKind"] == {"group": "ketch.dev", "version": "v1", "kind": "Job"}
    assert jobs["scope"] == "Namespaced" and jobs["singularResource"] == "job"
    assert {s["subresource"] for s in jobs["subresources"]} == {"status", "log"}
    core = http.get("/api", headers={"Accept": AGGREGATED}).json()["items"][0]["versions"][0]
    spaces = next(r for r in core["resources"] if r["resource"] == "namespaces")
    assert spaces["scope"] == "Cluster"

    beta = http.get("/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"})
    assert _media(beta.headers["content-type"])[1]["v"] == "v2beta1"
    assert beta.json()["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    # Plain JSON first (or only): the plain lists, with a plain Content-Type.
    for accept in ("application/json", "application/json," + AGGREGATED, ""):
        plain = http.get("/apis", headers={"Accept": accept} if accept else {})
        assert plain.json()["kind"] == "APIGroupList"
        assert plain.headers["content-type"] == "application/json"


def test_openapi_v3_index_and_documents(http: httpx.Client) -> None:
    index = http.get("/openapi/v3").json()["paths"]
    assert {"api/v1", "apis/ketch.dev/v1", "apis/serving.kserve.io/v1beta1"} <= set(index)
    url = index["apis/ketch.dev/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/ketch.dev/v1?hash=")
    doc = http.get(url).json()
    assert doc["openapi"].startswith("3.")
    patch = doc["paths"]["/apis/ketch.dev/v1/namespaces/{namespace}/jobs/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "ketch.dev", "version": "v1", "kind": "Job"}
    assert patch["x-kubernetes-action"] == "patch"
    # What kubectl looks for to leave --validate=strict to the server.
    assert any(p["name"] == "fieldValidation" and p["in"] == "query"
               for p in patch["parameters"])
    listing = doc["paths"]["/apis/ketch.dev/v1/namespaces/{namespace}/jobs"]["get"]
    assert listing["x-kubernetes-action"] == "list"
    job = doc["components"]["schemas"]["Job"]
    assert job["x-kubernetes-group-version-kind"] == [
        {"group": "ketch.dev", "version": "v1", "kind": "Job"}]
    # No path of another group version, and every $ref resolves in the document.
    assert all(p.startswith("/apis/ketch.dev/v1/") for p in doc["paths"])
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in doc["components"]["schemas"], ref
    # JSON Schema 2020 spellings that Kubernetes' OpenAPI 3.0 decoder refuses are gone.
    assert '"exclusiveMinimum": 0' not in text and '"const"' not in text

    core = http.get(index["api/v1"]["serverRelativeURL"]).json()
    configmap = core["components"]["schemas"]["ConfigMap"]
    # A ConfigMap's fields are at the top level on the wire, so in its schema too.
    assert "data" in configmap["properties"] and "spec" not in configmap["properties"]
    assert http.get("/openapi/v3/apis/nope.example/v1").status_code == 404


def _job(http: httpx.Client, ns: str, name: str) -> None:
    body = {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"command": [sys.executable, "-c", "print('hi')"]}}
    assert http.post(JOBS.format(ns=ns), json=body).status_code == 201


def _phase(http: httpx.Client, ns: str, name: str) -> Any:
    return http.get(f"{JOBS.format(ns=ns)}/{name}").json()["status"].get("phase")


def test_table_for_list_and_get(http: httpx.Client, ns: str) -> None:
    _job(http, ns, "t1")
    wait_for(lambda: _phase(http, ns, "t1") == "Succeeded", message="t1 Succeeded")
    table = http.get(JOBS.format(ns=ns), headers={"Accept": TABLE}).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    kinds = {k["kind"]: k for k in http.get("/api/ketch/kinds").json()["items"]}
    # The columns `ketch get jobs` prints, wide-only ones at priority 1.
    own = kinds["Job"]["columns"]
    assert names == ["Name", *(c["name"] for c in own), "Age"]
    assert [c["priority"] for c in table["columnDefinitions"][1:-1]] == [
        1 if c["wideOnly"] else 0 for c in own]
    assert table["metadata"]["resourceVersion"]
    (row,) = table["rows"]
    assert row["cells"][0] == "t1" and "Succeeded" in row["cells"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "t1" and "spec" not in row["object"]

    one = http.get(f"{JOBS.format(ns=ns)}/t1", params={"includeObject": "Object"},
                   headers={"Accept": TABLE}).json()
    assert one["kind"] == "Table" and one["rows"][0]["object"]["spec"]["command"]
    none = http.get(f"{JOBS.format(ns=ns)}/t1", params={"includeObject": "None"},
                    headers={"Accept": TABLE}).json()
    assert "object" not in none["rows"][0]
    bad = http.get(JOBS.format(ns=ns), params={"includeObject": "All"},
                   headers={"Accept": TABLE})
    assert bad.status_code == 422 and "includeObject" in bad.text
    # Without the Table media type: the plain list, as before.
    assert http.get(JOBS.format(ns=ns)).json()["kind"] == "JobList"

    pods = http.get(f"/api/v1/namespaces/{ns}/pods", headers={"Accept": TABLE}).json()
    assert [c["name"] for c in pods["columnDefinitions"] if c["priority"] == 0] == [
        "Name", "Ready", "Status", "Restarts", "Age"]
    assert pods["rows"][0]["cells"][:4] == ["t1-1", "0/1", "Completed", 0]
    spaces = http.get("/api/v1/namespaces", headers={"Accept": TABLE}).json()
    assert any(r["cells"][0] == ns for r in spaces["rows"])


def test_table_watch(http: httpx.Client, ns: str) -> None:
    _job(http, ns, "w1")
    seen: list[dict[str, Any]] = []
    with http.stream("GET", JOBS.format(ns=ns), headers={"Accept": TABLE},
                     params={"watch": "true", "timeoutSeconds": "30"}) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            event = json.loads(line)
            seen.append(event)
            if "Succeeded" in event["object"]["rows"][0]["cells"]:
                break
    assert seen[0]["type"] == "ADDED"
    for event in seen:
        obj = event["object"]
        assert obj["kind"] == "Table" and obj["columnDefinitions"][0]["name"] == "Name"
        assert obj["rows"][0]["cells"][0] == "w1"
