"""Pods of a pipeline run's steps and of a model's replicas and front, against a real
``ketch up``: the labels KFP and KServe put on theirs, phases, logs, and a deleted
replica's pod replaced by the serving controller."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from _modelserver import trained_iris
from conftest import ServerProcess, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def http(ketch_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ketch_server.url, timeout=30) as client:
        yield client


def _step_ir(code: str) -> dict[str, Any]:
    return {
        "pipelineInfo": {"name": "one-step"}, "schemaVersion": "2.1.0",
        "components": {"comp-say": {"executorLabel": "exec-say"}},
        "deploymentSpec": {"executors": {"exec-say": {"container": {
            "image": "python:3", "command": [sys.executable, "-c", code]}}}},
        "root": {"dag": {"tasks": {"say": {
            "taskInfo": {"name": "say"}, "componentRef": {"name": "comp-say"}}}}},
    }


def test_a_pipeline_steps_pod(http: httpx.Client) -> None:
    run = {"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
           "metadata": {"name": "hello"},
           "spec": {"pipelineSpec": _step_ir("print('from the step')"), "caching": False}}
    made = http.post("/apis/pipelines.ketch.dev/v1/namespaces/steps/pipelineruns", json=run)
    assert made.status_code == 201, made.text
    uid = made.json()["metadata"]["uid"]
    wait_for(lambda: http.get("/apis/pipelines.ketch.dev/v1/namespaces/steps/pipelineruns/"
                              "hello").json()["status"].get("phase") == "Succeeded",
             timeout=60, message="the run succeeded")
    pods = http.get("/api/v1/namespaces/steps/pods",
                    params={"labelSelector": f"pipeline/runid={uid}"}).json()["items"]
    assert [p["metadata"]["name"] for p in pods] == ["hello-say-1"]
    pod = pods[0]
    assert pod["metadata"]["labels"]["pipelines.kubeflow.org/v2_component"] == "true"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "PipelineRun"
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    log = http.get("/api/v1/namespaces/steps/pods/hello-say-1/log", params={"container": "main"})
    assert log.status_code == 200 and "from the step" in log.text


@pytest.mark.usefixtures("stop_services")
def test_a_models_replica_and_front_pods(http: httpx.Client, tmp_path: Path) -> None:
    trained_iris(tmp_path / "iris")
    doc = yaml.safe_load((ROOT / "examples" / "serving" / "iris.yaml").read_text())
    doc["metadata"]["name"] = "iris"
    doc["spec"]["predictor"]["model"]["storageUri"] = (tmp_path / "iris").as_uri()
    made = http.post("/apis/serving.kserve.io/v1beta1/namespaces/models/inferenceservices",
                     json=doc)
    assert made.status_code == 201, made.text

    def replicas() -> list[dict[str, Any]]:
        items = http.get("/api/v1/namespaces/models/pods", params={
            "labelSelector": "serving.kserve.io/inferenceservice=iris,component=predictor",
            "fieldSelector": "status.phase=Running"}).json()["items"]
        return list(items)

    first = wait_for(replicas, timeout=120, message="a running replica pod")
    assert isinstance(first, list)
    pod = first[0]
    assert pod["spec"]["containers"][0]["name"] == "kserve-container"
    assert pod["metadata"]["ownerReferences"][0]["name"] == "iris"
    fronts = http.get("/api/v1/namespaces/models/pods",
                      params={"labelSelector": "component=front"}).json()["items"]
    assert len(fronts) == 1
    name = pod["metadata"]["name"]
    assert http.get(f"/api/v1/namespaces/models/pods/{name}/log").status_code == 200
    # A deleted replica's pod is replaced, as a ReplicaSet replaces its pod.
    assert http.delete(f"/api/v1/namespaces/models/pods/{name}").status_code == 200
    replaced = wait_for(lambda: [p for p in replicas() if p["metadata"]["name"] != name],
                        timeout=120, message="a replacement replica")
    assert isinstance(replaced, list) and replaced
