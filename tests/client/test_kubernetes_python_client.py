"""The real Kubernetes Python client (``kubernetes`` 35.0.0, in its own venv) against a real
``ketch up``: ``CustomObjectsApi`` create, get, list by label, merge patch, delete of a
ketch Job, ``watch.Watch().stream`` of the kind (ADDED, MODIFIED until Succeeded, DELETED),
a resume from a resourceVersion, 410 for a compacted one, ``field_validation``, field
selectors, delete preconditions and ``limit``/``continue`` paging; and ``CoreV1Api``, whose
answers it deserializes into its typed models (``V1Pod``, ``V1EventList``...): a Job's pod
by ``job-name`` label, read, its log (and ``tail_lines``), the Job's Events by
``involvedObject.name``, a ConfigMap's round trip and a Namespace's create (bodies the
client sends without ``apiVersion``/``kind``), and 405 for a pod create.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _venvs import cached_venv
from conftest import ServerProcess

pytestmark = pytest.mark.slow

K8S_VERSION = "35.0.0"

_SCRIPT = r'''
import json, os, sys
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

url, phase, ns, python = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
cfg = client.Configuration(host=url)
if os.environ.get("K8S_TOKEN"):
    # What a kubeconfig's user token becomes.
    cfg.api_key = {"authorization": os.environ["K8S_TOKEN"]}
    cfg.api_key_prefix = {"authorization": "Bearer"}
api = client.CustomObjectsApi(client.ApiClient(cfg))
G, V, P = "ketch.dev", "v1", "jobs"
out = {}

def job(name, **extra):
    return {"apiVersion": "ketch.dev/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"team": "a"}},
            "spec": {"command": [python, "-c", "pass"], **extra}}

def failure(call):
    try:
        call()
    except ApiException as err:
        return {"status": err.status, "body": json.loads(err.body) if err.body else None,
                "headers": dict(err.headers or {})}
    return None

if phase == "main":
    start = api.list_namespaced_custom_object(G, V, ns, P)["metadata"]["resourceVersion"]
    created = api.create_namespaced_custom_object(G, V, ns, P, job("hello"))
    api.create_namespaced_custom_object(G, V, ns, P, {**job("other"),
                                        "metadata": {"name": "other"}})
    out["created_rv"] = created["metadata"]["resourceVersion"]
    out["get"] = api.get_namespaced_custom_object(G, V, ns, P, "hello")["metadata"]["name"]
    listed = api.list_namespaced_custom_object(G, V, ns, P, label_selector="team=a")
    out["listed"] = [i["metadata"]["name"] for i in listed["items"]]
    patched = api.patch_namespaced_custom_object(G, V, ns, P, "hello",
                                                 {"metadata": {"labels": {"seen": "yes"}}})
    out["patched_labels"] = patched["metadata"]["labels"]
    events = []
    w = watch.Watch()
    for event in w.stream(api.list_namespaced_custom_object, G, V, ns, P,
                          resource_version=start, field_selector="metadata.name=hello",
                          timeout_seconds=60):
        obj = event["object"]
        events.append([event["type"], (obj.get("status") or {}).get("phase")])
        if (obj.get("status") or {}).get("phase") == "Succeeded" and \
                not obj["metadata"].get("deletionTimestamp"):
            if not any(e[0] == "deleting" for e in events):
                events.append(["deleting", None])
                api.delete_namespaced_custom_object(
                    G, V, ns, P, "hello", body={"propagationPolicy": "Background"})
        if event["type"] == "DELETED":
            w.stop()
    out["events"] = events
    # Resumed from the create's version: what came after it, not the ADDED again.
    resumed = [e["type"] for e in watch.Watch().stream(
        api.list_namespaced_custom_object, G, V, ns, P, resource_version=out["created_rv"],
        field_selector="metadata.name=hello", timeout_seconds=2)]
    out["resumed"] = resumed
    out["bookmarks"] = [e["type"] for e in watch.Watch().stream(
        api.list_namespaced_custom_object, G, V, ns, P, allow_watch_bookmarks=True,
        timeout_seconds=1)]
    out["strict"] = failure(lambda: api.create_namespaced_custom_object(
        G, V, ns, P, job("strict", nosuch=1), field_validation="Strict"))
    out["unknown_selector"] = failure(lambda: api.list_namespaced_custom_object(
        G, V, ns, P, field_selector="spec.command=x"))
    warned = api.api_client.call_api(
        f"/apis/{G}/{V}/namespaces/{ns}/{P}", "POST", body=job("warned", nosuch=1),
        query_params=[("fieldValidation", "Warn")], header_params={
            "Content-Type": "application/json", "Accept": "application/json"},
        _preload_content=False, _return_http_data_only=False)
    out["warn_status"] = warned[1]
    out["warn_header"] = warned[2].get("Warning")
    out["warn_spec"] = api.get_namespaced_custom_object(G, V, ns, P, "warned")["spec"]
    out["precondition"] = failure(lambda: api.delete_namespaced_custom_object(
        G, V, ns, P, "other", body={"preconditions": {"uid": "not-its-uid"}}))
    out["still_there"] = api.get_namespaced_custom_object(G, V, ns, P, "other")["metadata"]["name"]
    pages, token = [], None
    while True:
        page = api.list_namespaced_custom_object(G, V, ns, P, limit=1, _continue=token)
        pages.append([i["metadata"]["name"] for i in page["items"]])
        token = page["metadata"].get("continue")
        if not token:
            break
    out["pages"] = pages
    out["all"] = [i["metadata"]["name"]
                  for i in api.list_namespaced_custom_object(G, V, ns, P)["items"]]
elif phase == "token":
    api.create_namespaced_custom_object(G, V, ns, P, job("t"))
    out["watched"] = [e["type"] for e in watch.Watch().stream(
        api.list_namespaced_custom_object, G, V, ns, P, timeout_seconds=1)]
    anonymous = client.CustomObjectsApi(client.ApiClient(client.Configuration(host=url)))
    out["anonymous"] = failure(lambda: anonymous.list_namespaced_custom_object(G, V, ns, P))
else:
    out["gone"] = failure(lambda: list(watch.Watch().stream(
        api.list_namespaced_custom_object, G, V, ns, P, resource_version=phase,
        timeout_seconds=2)))
print(json.dumps(out))
'''


_CORE_SCRIPT = r'''
import json, os, sys
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

url, ns, python, flag = sys.argv[1:5]
api_client = client.ApiClient(client.Configuration(host=url))
core = client.CoreV1Api(api_client)
jobs = client.CustomObjectsApi(api_client)
out = {}

# Five lines, then it waits for the test's flag file: a pod that is Running when read.
command = [python, "-c", "import os, time\n"
           "for i in range(5): print('line', i, flush=True)\n"
           f"while not os.path.exists({flag!r}): time.sleep(0.05)\n"]
jobs.create_namespaced_custom_object("ketch.dev", "v1", ns, "jobs", {
    "apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "logger"},
    "spec": {"command": command}})

def pod_when(test):
    # Pods have their own watch: the selector's pod, once it passes the test.
    for event in watch.Watch().stream(core.list_namespaced_pod, ns,
                                      label_selector="job-name=logger", timeout_seconds=60):
        if test(event["object"]):
            return event["object"]
    raise SystemExit("no pod passed the test in time")

def log_lines(name):
    return core.read_namespaced_pod_log(name, ns).splitlines()

pod_when(lambda p: p.status.phase == "Running")
listed = core.list_namespaced_pod(ns, label_selector="job-name=logger")
out["listed"] = [p.metadata.name for p in listed.items]
out["other_label"] = len(core.list_namespaced_pod(ns, label_selector="job-name=nope").items)
out["everywhere"] = [[p.metadata.namespace, p.metadata.name] for p in
                     core.list_pod_for_all_namespaces(label_selector="job-name=logger").items]
name = out["listed"][0]
pod = core.read_namespaced_pod(name, ns)
cs = pod.status.container_statuses[0]
out["pod"] = {"phase": pod.status.phase, "container": pod.spec.containers[0].name,
              "status_name": cs.name, "ready": cs.ready, "running": cs.state.running is not None,
              "owner": [pod.metadata.owner_references[0].kind,
                        pod.metadata.owner_references[0].name],
              "labels": pod.metadata.labels}
for _ in watch.Watch().stream(core.list_namespaced_pod, ns, timeout_seconds=1):
    pass  # the stream of models deserializes (and ends at its timeout)
# Followed, the log waits for the five lines the job prints before its flag.
followed = core.read_namespaced_pod_log(name, ns, follow=True, _preload_content=False)
out["followed"] = [next(followed).decode().rstrip("\n") for _ in range(5)]
followed.release_conn()
out["log"] = log_lines(name)
out["tail"] = core.read_namespaced_pod_log(name, ns, tail_lines=2).splitlines()
open(flag, "w").close()
done = pod_when(lambda p: p.status.phase == "Succeeded")
term = done.status.container_statuses[0].state.terminated
out["done"] = {"phase": done.status.phase, "exit_code": term.exit_code, "reason": term.reason}
out["log_after"] = log_lines(name)

events = core.list_namespaced_event(ns, field_selector="involvedObject.name=logger")
out["events"] = [[e.involved_object.kind, e.involved_object.name, e.reason, e.type]
                 for e in events.items]
out["no_events"] = len(core.list_namespaced_event(
    ns, field_selector="involvedObject.name=nothing").items)

cm = core.create_namespaced_config_map(ns, client.V1ConfigMap(
    metadata=client.V1ObjectMeta(name="settings", labels={"app": "x"}),
    data={"mode": "fast", "level": "3"}))
out["cm_created"] = [cm.metadata.name, cm.data, bool(cm.metadata.uid)]
read = core.read_namespaced_config_map("settings", ns)
out["cm_read"] = [read.data, read.metadata.labels]
out["cm_deleted"] = type(core.delete_namespaced_config_map("settings", ns)).__name__
try:
    core.read_namespaced_config_map("settings", ns)
    out["cm_after"] = None
except ApiException as err:
    out["cm_after"] = err.status

made = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="made")))
out["namespace"] = [made.metadata.name, core.read_namespace("made").status.phase]

try:
    core.create_namespaced_pod(ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name="hand-made"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])))
    out["pod_create"] = None
except ApiException as err:
    out["pod_create"] = {"status": err.status, "body": json.loads(err.body)}
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def k8s_python() -> Path:
    return cached_venv("kubernetes", K8S_VERSION, "import kubernetes")


def run_script(python: Path, server: ServerProcess, phase: str, ns: str,
               token: str = "") -> dict[str, Any]:
    done = subprocess.run([str(python), "-c", _SCRIPT, server.url, phase, ns, sys.executable],
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "K8S_TOKEN": token})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_kubernetes_python_client_drives_jobs_and_watches_them(
        k8s_python: Path, ketch_server: ServerProcess) -> None:
    from ketch.core.store import open_store

    out = run_script(k8s_python, ketch_server, "main", "k8s")
    assert out["get"] == "hello"
    assert sorted(out["listed"]) == ["hello"]  # "other" has no team label
    assert out["patched_labels"] == {"team": "a", "seen": "yes"}

    types = [t for t, _ in out["events"]]
    assert types[0] == "ADDED" and types[-1] == "DELETED", types
    phases = [p for t, p in out["events"] if t == "MODIFIED"]
    assert "Succeeded" in phases, out["events"]
    assert types.index("deleting") < types.index("DELETED")

    assert out["resumed"] and "ADDED" not in out["resumed"], out["resumed"]
    assert out["resumed"][-1] == "DELETED", out["resumed"]
    assert out["bookmarks"][-1] == "BOOKMARK", out["bookmarks"]

    strict = out["strict"]
    assert strict["status"] == 400 and strict["body"]["reason"] == "BadRequest", strict
    assert 'strict decoding error: unknown field "spec.nosuch"' in strict["body"]["message"]
    assert [c["field"] for c in strict["body"]["details"]["causes"]] == ["spec.nosuch"]

    bad = out["unknown_selector"]
    assert bad["status"] == 400 and "field label not supported: spec.command" in (
        bad["body"]["message"])

    assert out["warn_status"] == 201
    assert out["warn_header"] == '299 - "unknown field \\"spec.nosuch\\""'
    assert "nosuch" not in out["warn_spec"]

    assert out["precondition"]["status"] == 409, out["precondition"]
    assert out["still_there"] == "other"
    # limit/continue: one object a page, every object once, in the list's order.
    assert all(len(page) == 1 for page in out["pages"]), out["pages"]
    assert [p[0] for p in out["pages"]] == out["all"] and len(out["all"]) >= 2

    # Compact the change log (as another control plane would): the old version is gone.
    store = open_store(f"sqlite:///{ketch_server.home / 'ketch.db'}", migrate=False)
    try:
        store.prune_events(3600, keep_revisions=0)
    finally:
        store.close()
    gone = run_script(k8s_python, ketch_server, out["created_rv"], "k8s")["gone"]
    assert gone is not None and gone["status"] == 410, gone
    assert gone["body"]["reason"] == "Expired"


def test_kubernetes_python_client_with_a_bearer_token(k8s_python: Path, server_factory: Any,
                                                      tmp_path: Path) -> None:
    server = server_factory(tmp_path / "tokened", command="server", KETCH_TOKEN="k8s-token")
    out = run_script(k8s_python, server, "token", "auth", token="k8s-token")
    assert out["watched"][0] == "ADDED", out["watched"]  # then the job runs: MODIFIED
    assert out["anonymous"]["status"] == 401, out["anonymous"]
    assert out["anonymous"]["body"]["kind"] == "Status"


def test_core_v1_api_reads_a_jobs_pod_log_and_events(k8s_python: Path,
                                                     ketch_server: ServerProcess,
                                                     tmp_path: Path) -> None:
    flag = tmp_path / "finish"
    done = subprocess.run([str(k8s_python), "-c", _CORE_SCRIPT, ketch_server.url, "core",
                           sys.executable, str(flag)],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["listed"] == ["logger-1"] and out["other_label"] == 0
    assert out["everywhere"] == [["core", "logger-1"]]
    pod = out["pod"]
    assert pod["phase"] == "Running" and pod["running"] and pod["ready"], pod
    assert pod["container"] == pod["status_name"] == "main"
    assert pod["owner"] == ["Job", "logger"]
    assert pod["labels"]["job-name"] == "logger"
    assert out["followed"] == out["log"] == [f"line {i}" for i in range(5)]
    assert out["tail"] == ["line 3", "line 4"]
    assert out["done"] == {"phase": "Succeeded", "exit_code": 0, "reason": "Completed"}
    assert out["log_after"] == out["log"]

    assert all(e[:2] == ["Job", "logger"] for e in out["events"]), out["events"]
    assert {"Started", "Completed"} <= {e[2] for e in out["events"]}, out["events"]
    assert out["no_events"] == 0

    assert out["cm_created"] == ["settings", {"mode": "fast", "level": "3"}, True]
    assert out["cm_read"] == [{"mode": "fast", "level": "3"}, {"app": "x"}]
    assert out["cm_after"] == 404
    assert out["namespace"] == ["made", "Active"]  # a body without apiVersion/kind too
    refused = out["pod_create"]
    assert refused["status"] == 405, refused
    assert refused["body"]["kind"] == "Status" and refused["body"]["code"] == 405
