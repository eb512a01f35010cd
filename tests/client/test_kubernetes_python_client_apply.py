"""The real Kubernetes Python client (``kubernetes`` 35.0.0, the venv of
test_kubernetes_python_client) against a real ``ketch up``: server-side apply with
``field_manager`` and ``force``, JSON patch, and the merge patch
``CustomObjectsApi.patch_namespaced_custom_object`` sends.

In 35.0.0 ``patch_namespaced_custom_object`` always sends
``application/merge-patch+json`` (its ``rest.py`` rewrites only a json-patch content type
with a non-list body), so JSON patch and apply go through ``ApiClient.call_api`` with
their content type, as the client's users do.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from _venvs import cached_venv
from conftest import ServerProcess

pytestmark = pytest.mark.slow

_SCRIPT = r'''
import json, sys
from kubernetes import client
from kubernetes.client.rest import ApiException

url = sys.argv[1]
api = client.CustomObjectsApi(client.ApiClient(client.Configuration(host=url)))
G, V, NS, P = "pipelines.ketch.dev", "v1", "py", "experiments"
path = f"/apis/{G}/{V}/namespaces/{NS}/{P}/e"
out = {}

def exp(**spec):
    return {"apiVersion": f"{G}/{V}", "kind": "Experiment", "metadata": {"name": "e"},
            "spec": spec}

def call(content_type, body, **query):
    data, status, _ = api.api_client.call_api(
        path, "PATCH", query_params=list(query.items()), body=body,
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        response_type="object", _return_http_data_only=False)
    return {"status": status, "body": data}

def failure(fn):
    try:
        fn()
    except ApiException as err:
        return {"status": err.status, "body": json.loads(err.body)}
    return None

APPLY = "application/apply-patch+yaml"
out["created"] = call(APPLY, exp(description="one"), fieldManager="py-ssa")
out["conflict"] = failure(lambda: call(APPLY, exp(description="two"), fieldManager="other"))
out["forced"] = call(APPLY, exp(description="two"), fieldManager="other", force="true")
out["merged"] = api.patch_namespaced_custom_object(G, V, NS, P, "e",
                                                   {"spec": {"archived": True}})
out["merged_named"] = api.patch_namespaced_custom_object(
    G, V, NS, P, "e", {"metadata": {"labels": {"a": "b"}}}, field_manager="labeller")
out["json_patch"] = call("application/json-patch+json", [
    {"op": "test", "path": "/spec/description", "value": "two"},
    {"op": "replace", "path": "/spec/description", "value": "three"}])
out["json_patch_failed"] = failure(lambda: call("application/json-patch+json", [
    {"op": "test", "path": "/spec/description", "value": "nope"}]))
out["list_as_merge"] = failure(lambda: api.patch_namespaced_custom_object(
    G, V, NS, P, "e", [{"op": "remove", "path": "/spec/archived"}]))
out["final"] = api.get_namespaced_custom_object(G, V, NS, P, "e")
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def k8s_python() -> Path:
    return cached_venv("kubernetes", "35.0.0", "import kubernetes")


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(e["manager"], e["operation"]): e["fieldsV1"]
            for e in obj["metadata"]["managedFields"]}


def test_kubernetes_python_client_applies_and_json_patches(
        k8s_python: Path, ketch_server: ServerProcess) -> None:
    done = subprocess.run([str(k8s_python), "-c", _SCRIPT, ketch_server.url],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    created = out["created"]
    assert created["status"] == 201
    assert managers(created["body"]) == {("py-ssa", "Apply"): {
        "f:spec": {"f:description": {}}}}
    conflict = out["conflict"]
    assert conflict["status"] == 409, conflict
    assert conflict["body"]["details"]["causes"] == [{
        "type": "FieldManagerConflict", "message": 'conflict with "py-ssa"',
        "field": ".spec.description"}]
    forced = out["forced"]
    assert forced["status"] == 200 and forced["body"]["spec"]["description"] == "two"
    assert set(managers(forced["body"])) == {("other", "Apply")}

    # Without field_manager the client's User-Agent program names the manager.
    assert ("OpenAPI-Generator", "Update") in managers(out["merged"])
    assert managers(out["merged_named"])[("labeller", "Update")] == {
        "f:metadata": {"f:labels": {"f:a": {}}}}
    assert out["json_patch"]["status"] == 200
    assert out["json_patch"]["body"]["spec"]["description"] == "three"
    failed = out["json_patch_failed"]
    assert failed["status"] == 422 and "/spec/description" in failed["body"]["message"]
    assert out["list_as_merge"]["status"] == 422  # a list is no merge patch
    final = out["final"]
    assert final["spec"] == {"description": "three", "archived": True}
    assert final["metadata"]["labels"] == {"a": "b"}
    # "other" applied description; the JSON patch (an update) changed it, so owns it now.
    assert ("other", "Apply") not in managers(final)
