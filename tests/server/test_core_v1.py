"""Core v1 kinds at /api/v1 against a real ``ketch up``: ConfigMaps, Secrets,
Namespaces, and pods as a view of a Job's executor units (labels, phase, exit code,
owner, log, delete, no create)."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, wait_for

pytestmark = pytest.mark.slow

JOBS = "/apis/ketch.dev/v1/namespaces/{ns}/jobs"


@pytest.fixture
def http(ketch_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ketch_server.url, timeout=30) as client:
        yield client


def _job(name: str, code: str, backoff: int = 0) -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"command": [sys.executable, "-c", code], "backoffLimit": backoff}}


def _job_phase(http: httpx.Client, ns: str, name: str) -> str:
    return str(http.get(f"{JOBS.format(ns=ns)}/{name}").json()["status"].get("phase"))


def test_configmap_and_secret_crud(http: httpx.Client) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
          "data": {"lr": "0.1"}, "binaryData": {"blob": base64.b64encode(b"\0\1").decode()}}
    made = http.post("/api/v1/namespaces/core/configmaps", json=cm)
    assert made.status_code == 201, made.text
    assert made.json()["data"] == {"lr": "0.1"} and "spec" not in made.json()
    got = http.get("/api/v1/namespaces/core/configmaps/settings").json()
    assert got["data"] == {"lr": "0.1"} and got["binaryData"]["blob"] == "AAE="
    got["data"]["epochs"] = "3"
    assert http.put("/api/v1/namespaces/core/configmaps/settings",
                    json=got).json()["data"] == {"lr": "0.1", "epochs": "3"}
    listed = http.get("/api/v1/namespaces/core/configmaps").json()
    assert listed["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["settings"]
    bad = http.post("/api/v1/namespaces/core/configmaps", json={
        **cm, "metadata": {"name": "bad"}, "binaryData": {"x": "not base64!"}})
    assert bad.status_code == 422 and bad.json()["kind"] == "Status"
    assert "binaryData" in bad.text

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
              "data": {"user": base64.b64encode(b"ada").decode()},
              "stringData": {"password": "s3cret"}}
    made = http.post("/api/v1/namespaces/core/secrets", json=secret)
    assert made.status_code == 201, made.text
    body = http.get("/api/v1/namespaces/core/secrets/creds").json()
    assert body["type"] == "Opaque" and "stringData" not in body
    assert base64.b64decode(body["data"]["password"]) == b"s3cret"
    assert base64.b64decode(body["data"]["user"]) == b"ada"
    assert http.delete("/api/v1/namespaces/core/secrets/creds").status_code == 200
    assert http.get("/api/v1/namespaces/core/secrets/creds").status_code == 404


def test_namespace_create_get_list_delete(http: httpx.Client) -> None:
    made = http.post("/api/v1/namespaces", json={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert made.status_code == 201, made.text
    assert made.json()["status"]["phase"] == "Active"
    assert "namespace" not in made.json()["metadata"]
    # A namespace that only holds objects is listed too, as is default.
    http.post("/api/v1/namespaces/holds-objects/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    names = [n["metadata"]["name"] for n in http.get("/api/v1/namespaces").json()["items"]]
    assert {"team-a", "holds-objects", "default"} <= set(names)
    assert http.get("/api/v1/namespaces/team-a").json()["metadata"]["name"] == "team-a"
    assert http.get("/api/v1/namespaces/nowhere").status_code == 404
    assert http.delete("/api/v1/namespaces/team-a").status_code == 200
    assert http.get("/api/v1/namespaces/team-a").status_code == 404


def test_pods_of_a_finished_job(http: httpx.Client) -> None:
    code = "print('\\n'.join(f'line {i}' for i in range(10))); raise SystemExit(3)"
    assert http.post(JOBS.format(ns="pods"), json=_job("fails", code)).status_code == 201
    wait_for(lambda: _job_phase(http, "pods", "fails") == "Failed", message="job failed")
    job = http.get(f"{JOBS.format(ns='pods')}/fails").json()
    pods = http.get("/api/v1/namespaces/pods/pods", params={
        "labelSelector": "job-name=fails"}).json()
    assert pods["kind"] == "PodList" and len(pods["items"]) == 1
    pod = pods["items"][0]
    assert pod["metadata"]["labels"]["job-name"] == "fails"
    assert pod["metadata"]["ownerReferences"] == [{
        "apiVersion": "ketch.dev/v1", "kind": "Job", "name": "fails",
        "uid": job["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    name = pod["metadata"]["name"]
    assert http.get(f"/api/v1/namespaces/pods/pods/{name}").json() == pod
    log = http.get(f"/api/v1/namespaces/pods/pods/{name}/log", params={"tailLines": 2})
    assert log.headers["content-type"].startswith("text/plain")
    assert log.text == "line 8\nline 9\n"
    assert http.get(f"/api/v1/namespaces/pods/pods/{name}/log",
                    params={"container": "other"}).status_code == 400
    assert http.get("/api/v1/namespaces/pods/pods", params={
        "fieldSelector": "status.phase=Running", "labelSelector": "job-name=fails"},
    ).json()["items"] == []
    assert http.get("/api/v1/namespaces/pods/pods/nope").status_code == 404


def test_delete_the_pod_of_a_running_job_retries_it(http: httpx.Client) -> None:
    code = "import time; print('up', flush=True); time.sleep(60)"
    assert http.post(JOBS.format(ns="running"),
                     json=_job("sleeper", code, backoff=1)).status_code == 201

    def running_pod() -> dict[str, Any] | None:
        items = http.get("/api/v1/namespaces/running/pods").json()["items"]
        return next((p for p in items if p["status"]["phase"] == "Running"), None)

    pod = wait_for(running_pod, message="a running pod")
    assert isinstance(pod, dict)
    assert "running" in pod["status"]["containerStatuses"][0]["state"]
    assert pod["status"]["startTime"]
    first = pod["metadata"]["name"]
    wait_for(lambda: http.get(f"/api/v1/namespaces/running/pods/{first}/log").text == "up\n",
             message="the pod's log")
    assert http.delete(f"/api/v1/namespaces/running/pods/{first}").status_code == 200
    # The Job reacts as Kubernetes' Job controller: the attempt failed, one retry left.
    wait_for(lambda: http.get(f"{JOBS.format(ns='running')}/sleeper").json()["status"].get(
        "attempts") == 2, message="a second attempt")
    names = wait_for(lambda: [p["metadata"]["name"] for p in http.get(
        "/api/v1/namespaces/running/pods").json()["items"]
        if p["status"]["phase"] == "Running"], message="the second pod running")
    assert isinstance(names, list) and first not in names
    # A deleted pod is gone, as in Kubernetes (kubectl delete waits for that).
    assert http.get(f"/api/v1/namespaces/running/pods/{first}").status_code == 404
    http.delete(f"{JOBS.format(ns='running')}/sleeper")


def test_pods_cannot_be_created(http: httpx.Client) -> None:
    answer = http.post("/api/v1/namespaces/default/pods", json={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})
    assert answer.status_code == 405
    body = answer.json()
    assert body["kind"] == "Status" and body["reason"] == "MethodNotAllowed"
    assert "controllers" in body["message"]


def test_events_follow_a_jobs_conditions(http: httpx.Client) -> None:
    for name in ("quick", "other"):
        assert http.post(JOBS.format(ns="events"),
                         json=_job(name, "print('done')")).status_code == 201
    wait_for(lambda: _job_phase(http, "events", "quick") == "Succeeded", message="success")
    wait_for(lambda: _job_phase(http, "events", "other") == "Succeeded", message="success")
    job = http.get(f"{JOBS.format(ns='events')}/quick").json()

    def events(selector: str) -> list[dict[str, Any]]:
        answer = http.get("/api/v1/namespaces/events/events",
                          params={"fieldSelector": selector})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    mine = events("involvedObject.kind=Job,involvedObject.name=quick,"
                  "involvedObject.namespace=events")
    assert mine and all(e["involvedObject"]["uid"] == job["metadata"]["uid"] for e in mine)
    assert mine == events(f"involvedObject.uid={job['metadata']['uid']}")
    reasons = {e["reason"] for e in mine}
    assert {"Started", "Completed"} <= reasons, reasons
    started = next(e for e in mine if e["reason"] == "Started")
    assert started["type"] == "Normal" and started["count"] == 1
    assert started["firstTimestamp"] and started["lastTimestamp"]
    assert started["source"]["component"] == "jobs-controller"
    assert "attempt 1 started" in started["message"]
    # One event per transition, not per status write.
    assert len(mine) == len({(e["reason"], e["message"]) for e in mine})
    assert {e["involvedObject"]["name"] for e in events("involvedObject.name=other")} == {
        "other"}
    bad = http.get("/api/v1/namespaces/events/events", params={"fieldSelector": "spec.x=1"})
    assert bad.status_code == 400 and bad.json()["details"]["causes"][0]["field"] == (
        "fieldSelector")


def test_a_failed_attempt_gives_a_warning_and_repeats_aggregate(http: httpx.Client) -> None:
    assert http.post(JOBS.format(ns="warn"), json=_job(
        "flaky", "raise SystemExit(2)", backoff=1)).status_code == 201
    wait_for(lambda: _job_phase(http, "warn", "flaky") == "Failed", message="failure")
    items = http.get("/api/v1/namespaces/warn/events", params={
        "fieldSelector": "involvedObject.name=flaky"}).json()["items"]
    started = next(e for e in items if e["reason"] == "Started")
    assert started["count"] == 2 and "attempt 2 started" in started["message"]
    warnings = [e for e in items if e["type"] == "Warning"]
    assert any(e["reason"] == "BackoffLimitExceeded" for e in warnings), items


def test_a_protobuf_body_is_415(http: httpx.Client) -> None:
    answer = http.post("/api/v1/namespaces/core/configmaps", content=b"k8s\x00\n\x0f",
                       headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    assert answer.status_code == 415
    assert answer.json()["reason"] == "UnsupportedMediaType"
    assert "kubectl create -f" in answer.json()["message"]


def test_a_pod_watch_sees_the_unit_finish(http: httpx.Client) -> None:
    assert http.post(JOBS.format(ns="watch"), json=_job(
        "brief", "import time; time.sleep(1.5)")).status_code == 201
    seen: list[tuple[str, str]] = []
    with http.stream("GET", "/api/v1/namespaces/watch/pods", params={
            "watch": "True", "timeoutSeconds": 30}) as stream:
        assert stream.headers["content-type"].startswith("application/json")
        for line in stream.iter_lines():
            event = json.loads(line)
            seen.append((event["type"], event["object"]["status"]["phase"]))
            if event["object"]["status"]["phase"] == "Succeeded":
                break
    assert seen[-1] == ("MODIFIED", "Succeeded") or seen == [("ADDED", "Succeeded")], seen
    assert seen[0][0] == "ADDED"


def test_a_namespace_from_yaml(http: httpx.Client) -> None:
    made = http.post("/api/v1/namespaces", content=b"apiVersion: v1\nkind: Namespace\n"
                     b"metadata: {name: from-yaml}\n",
                     headers={"Content-Type": "application/yaml"})
    assert made.status_code == 201, made.text
    assert http.post("/api/v1/namespaces", content=b"k8s\x00", headers={
        "Content-Type": "application/vnd.kubernetes.protobuf"}).status_code == 415
