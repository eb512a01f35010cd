"""Server-side apply, JSON patch and the refused patch types, against a real ``ketch up``.

Experiments (pipelines.ketch.dev/v1, whose spec has defaults the server fills) and ConfigMaps
(core v1, whose ``data`` sits at the top level); neither has a controller writing its
spec, so every change seen here is the test's own.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from conftest import ServerProcess

pytestmark = pytest.mark.slow

EXPERIMENTS = "/apis/pipelines.ketch.dev/v1/namespaces/default/experiments"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def experiment(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pipelines.ketch.dev/v1", "kind": "Experiment",
            "metadata": {"name": name}, "spec": spec}


def apply(http: httpx.Client, url: str, body: dict[str, Any], manager: str | None,
          **params: str) -> httpx.Response:
    query = {**({"fieldManager": manager} if manager else {}), **params}
    return http.patch(url, params=query, headers=APPLY, content=json.dumps(body))


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


@pytest.fixture
def http(ketch_server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=ketch_server.url, timeout=30)


def test_apply_owns_conflicts_forces_and_removes(http: httpx.Client) -> None:
    url = f"{EXPERIMENTS}/e1"
    created = apply(http, url, experiment("e1", description="one"), "alice")
    assert created.status_code == 201, created.text
    body = created.json()
    entry = body["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["apiVersion"],
            entry["fieldsType"]) == ("alice", "Apply", "pipelines.ketch.dev/v1", "FieldsV1")
    assert entry["time"].endswith("Z")
    # The applier owns what it sent, not the defaults the server filled in.
    assert entry["fieldsV1"] == {"f:spec": {"f:description": {}}}
    assert body["spec"]["archived"] is False

    again = apply(http, url, experiment("e1", description="one"), "alice")
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]
    assert again.json()["metadata"]["managedFields"] == body["metadata"]["managedFields"]

    # Another manager setting the same value shares the field; another value conflicts.
    shared = apply(http, url, experiment("e1", description="one"), "bob")
    assert shared.status_code == 200, shared.text
    assert set(owners(shared.json())) == {("alice", "Apply"), ("bob", "Apply")}
    carol_first = apply(http, url, experiment("e1", archived=True), "carol")
    assert carol_first.status_code == 200, carol_first.text
    conflict = apply(http, url, experiment("e1", description="two", archived=False), "dave")
    assert conflict.status_code == 409, conflict.text
    status = conflict.json()
    assert status["reason"] == "Conflict"
    assert status["message"].startswith("Apply failed with 3 conflicts: ")
    causes = {(c["field"], c["message"]) for c in status["details"]["causes"]}
    assert causes == {(".spec.description", 'conflict with "alice"'),
                      (".spec.description", 'conflict with "bob"'),
                      (".spec.archived", 'conflict with "carol"')}
    assert {c["type"] for c in status["details"]["causes"]} == {"FieldManagerConflict"}
    unchanged = http.get(url).json()
    assert unchanged["metadata"]["resourceVersion"] == carol_first.json()["metadata"][
        "resourceVersion"]

    forced = apply(http, url, experiment("e1", description="two", archived=False), "dave",
                   force="true")
    assert forced.status_code == 200, forced.text
    after = forced.json()
    assert after["spec"]["description"] == "two" and after["spec"]["archived"] is False
    assert owners(after) == {("dave", "Apply"): {"f:spec": {"f:archived": {},
                                                            "f:description": {}}}}

    # dave leaves archived out: his field goes (back to the default) ...
    dropped = apply(http, url, experiment("e1", description="two"), "dave")
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["spec"]["archived"] is False  # the default, refilled
    assert owners(dropped.json()) == {("dave", "Apply"): {"f:spec": {"f:description": {}}}}
    # ... and a label he applied and then omits is removed, one another manager owns stays.
    apply(http, url, {**experiment("e1", description="two"),
                      "metadata": {"name": "e1", "labels": {"mine": "1", "ours": "1"}}}, "dave")
    apply(http, url, {**experiment("e1"), "metadata": {"name": "e1", "labels": {"ours": "1"}}},
          "erin")
    final = apply(http, url, experiment("e1", description="two"), "dave")
    assert final.json()["metadata"]["labels"] == {"ours": "1"}


def test_updates_json_patch_and_refused_types(http: httpx.Client) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"},
          "data": {"a": "1"}}
    created = http.post(CONFIGMAPS, json=cm, params={"fieldManager": "maker"})
    assert created.status_code == 201, created.text
    assert owners(created.json()) == {("maker", "Update"): {"f:data": {"f:a": {}}}}
    url = f"{CONFIGMAPS}/c1"

    # A merge patch records an Update entry for its manager (the User-Agent's program
    # without fieldManager) and takes the field it changed from the creator.
    merged = http.patch(url, headers={**MERGE, "User-Agent": "kubectl/v1.32.0 (linux)"},
                        content=json.dumps({"data": {"a": "2", "b": "2"}}))
    assert merged.status_code == 200, merged.text
    assert owners(merged.json()) == {("kubectl", "Update"): {"f:data": {"f:a": {}, "f:b": {}}}}
    rv = merged.json()["metadata"]["resourceVersion"]

    ops = [{"op": "test", "path": "/data/a", "value": "2"},
           {"op": "add", "path": "/data/c~1d", "value": "3"},
           {"op": "copy", "from": "/data/a", "path": "/data/e"},
           {"op": "move", "from": "/data/b", "path": "/data/f"},
           {"op": "replace", "path": "/data/a", "value": "9"},
           {"op": "remove", "path": "/data/e"},
           {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}]
    patched = http.patch(url, headers=JSON_PATCH, content=json.dumps(ops),
                         params={"fieldManager": "jp"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"] == {"a": "9", "c/d": "3", "f": "2"}
    assert patched.json()["metadata"]["labels"] == {"x": "y"}
    assert ("jp", "Update") in owners(patched.json())
    rv = patched.json()["metadata"]["resourceVersion"]

    failed = http.patch(url, headers=JSON_PATCH, content=json.dumps(
        [{"op": "replace", "path": "/data/a", "value": "0"},
         {"op": "test", "path": "/data/a", "value": "nope"}]))
    assert failed.status_code == 422, failed.text
    assert failed.json()["details"]["causes"][0]["field"] == "[1]"
    assert "/data/a" in failed.json()["message"]
    missing = http.patch(url, headers=JSON_PATCH, content=json.dumps(
        [{"op": "remove", "path": "/data/zzz"}]))
    assert missing.status_code == 422 and "/data/zzz" in missing.json()["message"]
    not_ops = http.patch(url, headers=JSON_PATCH, content=json.dumps({"data": {}}))
    assert not_ops.status_code == 400
    assert http.get(url).json()["metadata"]["resourceVersion"] == rv  # nothing written

    strategic = http.patch(url, headers={"Content-Type": "application/strategic-merge-patch+json"},
                           content=json.dumps({"data": {"a": "1"}}))
    assert strategic.status_code == 415
    assert strategic.json()["reason"] == "UnsupportedMediaType"
    assert "strategic merge patch is not supported" in strategic.json()["message"]
    other = http.patch(url, headers={"Content-Type": "text/plain"}, content="x")
    assert other.status_code == 415
    assert "application/json-patch+json, application/merge-patch+json, " \
           "application/apply-patch+yaml" in other.json()["message"]

    no_manager = apply(http, url, cm, None)
    assert no_manager.status_code == 422, no_manager.text
    assert no_manager.json()["details"]["causes"][0]["field"] == "fieldManager"
    assert "fieldManager: Required value" in no_manager.json()["message"]
    forced_merge = http.patch(url, headers=MERGE, params={"force": "true"}, content="{}")
    assert forced_merge.status_code == 422
    assert forced_merge.json()["details"]["causes"][0]["field"] == "force"

    # managedFields cannot be set to garbage; [] clears them.
    garbage = http.patch(url, headers=MERGE, content=json.dumps(
        {"metadata": {"managedFields": [{"manager": "x", "operation": "Steal"}]}}))
    assert garbage.status_code == 422
    assert garbage.json()["details"]["causes"][0]["field"].startswith(
        "metadata.managedFields")
    bad_tree = http.patch(url, headers=MERGE, content=json.dumps({"metadata": {
        "managedFields": [{"manager": "x", "operation": "Update",
                           "fieldsV1": {"spec": {}}}]}}))
    assert bad_tree.status_code == 422
    cleared = http.patch(url, headers=MERGE, content=json.dumps(
        {"metadata": {"managedFields": []}}))
    assert cleared.status_code == 200, cleared.text
    assert "managedFields" not in cleared.json()["metadata"]
    in_apply = apply(http, url, {**cm, "metadata": {"name": "c1", "managedFields": []}}, "m")
    assert in_apply.status_code == 400
    assert "managedFields" in in_apply.json()["message"]


def test_apply_dry_run_and_top_level_fields(http: httpx.Client) -> None:
    url = f"{CONFIGMAPS}/c2"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"},
          "data": {"k": "v"}}
    dry = apply(http, url, cm, "ops", dryRun="All")
    assert dry.status_code == 201, dry.text
    assert owners(dry.json()) == {("ops", "Apply"): {"f:data": {"f:k": {}}}}
    assert http.get(url).status_code == 404
    made = apply(http, url, cm, "ops")
    assert made.status_code == 201
    changed = apply(http, url, {**cm, "data": {"k2": "v2"}}, "ops")
    assert changed.status_code == 200
    assert changed.json()["data"] == {"k2": "v2"}
    assert changed.headers["x-ketch-apply"] == "configured"


def test_a_put_records_an_update_and_applies_race_without_losing_a_field(
        http: httpx.Client, ketch_server: ServerProcess) -> None:
    url = f"{CONFIGMAPS}/c3"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c3"},
          "data": {"a": "1"}}
    assert apply(http, url, cm, "base").status_code == 201
    current = http.get(url).json()
    put = http.put(url, params={"fieldManager": "putter"},
                   json={**current, "data": {"a": "1", "b": "2"}})
    assert put.status_code == 200, put.text
    assert owners(put.json()) == {("base", "Apply"): {"f:data": {"f:a": {}}},
                                  ("putter", "Update"): {"f:data": {"f:b": {}}}}

    # Unknown fields: Strict refuses the apply, Ignore drops them and owns only the rest.
    odd = {**cm, "metadata": {"name": "c3", "bogus": 1}}
    strict = apply(http, url, odd, "base", fieldValidation="Strict")
    assert strict.status_code == 400
    assert strict.json()["details"]["causes"][0]["field"] == "metadata.bogus"
    ignored = apply(http, url, {**odd, "data": {"a": "1", "z": "9"}}, "base",
                    fieldValidation="Ignore")
    assert ignored.status_code == 200, ignored.text
    assert owners(ignored.json())[("base", "Apply")] == {"f:data": {"f:a": {}, "f:z": {}}}

    # Sixteen managers apply a key each at once: every write re-reads and retries on a
    # stale resourceVersion, so none is lost.
    def one(i: int) -> int:
        with httpx.Client(base_url=ketch_server.url, timeout=60) as own:
            body = {**cm, "data": {f"k{i}": str(i)}}
            return apply(own, url, body, f"m{i}").status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(16)))
    assert codes == [200] * 16
    final = http.get(url).json()
    assert {f"k{i}" for i in range(16)} <= set(final["data"])
    assert {("m" + str(i), "Apply") for i in range(16)} <= set(owners(final))
