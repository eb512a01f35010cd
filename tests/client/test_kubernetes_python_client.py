"""The real Kubernetes Python client (``kubernetes`` 35.0.0, in its own venv) against a real
``ketch up``: ``CustomObjectsApi`` create, get, list by label, merge patch, delete of a
ketch Job, ``watch.Watch().stream`` of the kind (ADDED, MODIFIED until Succeeded, DELETED),
a resume from a resourceVersion, 410 for a compacted one, ``field_validation``, field
selectors, delete preconditions and ``limit``/``continue`` paging.
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
