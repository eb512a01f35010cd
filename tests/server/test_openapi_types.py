"""The dashboard's API types (ui/src/core/openapi.ts) are generated from the server's
/openapi.json, and that document describes what the routes really answer.

The first test regenerates the TypeScript in-process (ui/scripts/openapi_types.py)
and compares it with the committed file; the second validates a real server's
answers against the models the document is built from, so a route that grows a
field its model lacks (or loses one) fails here rather than in the dashboard.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, wait_for
from ketch.core.resources import Condition, ObjectMeta
from ketch.jobs._kind import JobSpec, JobStatus
from ketch.registry._api import _page_of
from ketch.registry._schemas import ENTITY_MODELS
from ketch.server._schemas import ArtifactInfo, ComponentList, KindList, ListMeta, NamespaceList

UI = Path(__file__).resolve().parents[2] / "ui"
JOBS = "/apis/ketch.dev/v1/namespaces/default/jobs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openapi_types", UI / "scripts" /
                                                  "openapi_types.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboard_types_match_the_servers_openapi() -> None:
    generator = _generator()
    if not generator.GENERATOR.exists():
        pytest.skip(f"{generator.GENERATOR} is not installed (make install-ui)")
    expected = generator.generate()
    committed = generator.OUTPUT.read_text()
    assert committed == expected, (
        "ui/src/core/openapi.ts is stale: the server's /openapi.json changed. "
        "Run `make ui-types` and commit ui/src/core/openapi.ts.")


def test_answers_match_the_documented_models(ketch_server: ServerProcess) -> None:
    http = httpx.Client(base_url=ketch_server.url, timeout=30)
    kinds = http.get("/api/ketch/kinds").json()
    KindList.model_validate(kinds)
    assert any(k["kind"] == "Job" for k in kinds["items"])
    components = http.get("/api/ketch/components").json()
    ComponentList.model_validate(components)
    assert {c["name"] for c in components["items"]} >= {"jobs", "pipelines"}
    NamespaceList.model_validate(http.get("/api/v1/namespaces").json())

    root = ketch_server.home / "artifacts"
    (root / "run").mkdir(parents=True)
    (root / "run" / "metrics.json").write_text("{}")
    directory = http.get("/api/ketch/artifacts", params={"uri": str(root / "run")}).json()
    ArtifactInfo.model_validate(directory)
    assert directory["type"] == "directory" and directory["entries"][0]["size"] == 2
    file = http.get("/api/ketch/artifacts",
                    params={"uri": str(root / "run" / "metrics.json")}).json()
    ArtifactInfo.model_validate(file)
    assert file["type"] == "file" and "entries" not in file

    job = {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "typed"},
           "spec": {"command": ["true"]}}
    assert http.post(JOBS, json=job).status_code == 201

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"{JOBS}/typed").json()
        return body if body.get("status", {}).get("phase") == "Succeeded" else None

    done = wait_for(finished, message="job typed succeeded")
    assert isinstance(done, dict)
    listed = http.get(JOBS).json()
    assert listed["kind"] == "JobList"
    ListMeta.model_validate(listed["metadata"])
    for obj in [done, *listed["items"]]:
        assert set(obj) <= {"apiVersion", "kind", "metadata", "spec", "status"}
        ObjectMeta.model_validate(obj["metadata"])
        JobSpec.model_validate(obj["spec"])
        JobStatus.model_validate(obj["status"])
        for condition in obj["status"]["conditions"]:
            Condition.model_validate(condition)


def test_registry_answers_match_the_documented_models(ketch_server: ServerProcess) -> None:
    http = httpx.Client(base_url=f"{ketch_server.url}/api/model_registry/v1", timeout=30)
    label = {"team": {"metadataType": "MetadataStringValue", "string_value": "ml"},
             "score": {"metadataType": "MetadataDoubleValue", "double_value": 0.9}}
    model = http.post("/registered_models", json={"name": "typed", "customProperties": label})
    assert model.status_code == 201, model.text
    version = http.post("/model_versions", json={
        "name": "v1", "registeredModelId": model.json()["id"], "author": "me"})
    assert version.status_code == 201, version.text
    version_id = version.json()["id"]
    for artifact in ({"artifactType": "model-artifact", "name": "weights", "uri": "s3://b/w",
                      "modelFormatName": "sklearn"},
                     {"artifactType": "metric", "name": "accuracy", "value": 0.9},
                     {"artifactType": "doc-artifact", "name": "card", "uri": "s3://b/c"}):
        added = http.post(f"/model_versions/{version_id}/artifacts", json=artifact)
        assert added.status_code == 201, added.text

    ENTITY_MODELS["RegisteredModel"].model_validate(model.json())
    ENTITY_MODELS["ModelVersion"].model_validate(http.get(f"/model_versions/{version_id}").json())
    models = http.get("/registered_models").json()
    _page_of("RegisteredModel").model_validate(models)
    assert [m["name"] for m in models["items"]] == ["typed"]
    _page_of("ModelVersion").model_validate(
        http.get(f"/registered_models/{model.json()['id']}/versions").json())
    artifacts = http.get(f"/model_versions/{version_id}/artifacts").json()
    _page_of(None).model_validate(artifacts)
    assert sorted(a["artifactType"] for a in artifacts["items"]) == [
        "doc-artifact", "metric", "model-artifact"]
    # Nothing the routes send is null: the types say "may be absent", not "may be null".
    assert "null" not in json.dumps(artifacts)
