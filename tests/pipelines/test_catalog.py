"""The pipeline catalog kinds (Pipeline, PipelineVersion, Experiment) in-process on a
real store (SQLite and PostgreSQL): IR validation naming the field, immutable
versions, version summaries, cascading delete, ``pipelineRef`` resolution."""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import start_server, wait_for
from ketch.core.config import Settings
from ketch.core.errors import InvalidError, NotFoundError
from ketch.core.kinds import Component
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.pipelines._catalog import (
    EXPERIMENT,
    PIPELINE,
    PIPELINE_VERSION,
    resolve_pipeline_ref,
)
from ketch.pipelines._catalog_controller import PipelineController, PipelineVersionController
from ketch.pipelines.compiler import load_pipeline_file

CORPUS = Path(__file__).parent / "corpus"
API = "pipelines.ketch.dev/v1"


@pytest.fixture(scope="module")
def ir() -> dict[str, Any]:
    return load_pipeline_file(CORPUS / "add_chain.py")


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    catalog = Component(name="catalog", kinds=(PIPELINE, PIPELINE_VERSION, EXPERIMENT),
                        controllers=(PipelineController, PipelineVersionController))
    settings = Settings.from_env({"KETCH_HOME": str(tmp_path / "home"),
                                  "KETCH_DATABASE_URL": database_url})
    rt = Runtime(settings, [catalog])
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture
def service(runtime: Runtime) -> ResourceService:
    return ResourceService(runtime)


def pipeline(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Pipeline", "metadata": {"name": name}, "spec": spec}


def version(name: str, of: str, ir: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "PipelineVersion", "metadata": {"name": name},
            "spec": {"pipeline": of, "pipelineSpec": ir, **spec}}


def test_versions_hold_ir_and_the_pipeline_tracks_the_latest(
        runtime: Runtime, service: ResourceService, ir: dict[str, Any]) -> None:
    service.create(PIPELINE, pipeline("add", description="adds numbers"))
    first = service.create(PIPELINE_VERSION, version(
        "add-v1", "add", ir, description="first", sourceFile="add_chain.py"))
    assert first.spec["pipelineSpec"]["pipelineInfo"]["name"] == "add-chain"
    assert first.spec["sourceFile"] == "add_chain.py"
    wait_for(lambda: runtime.store.get(PIPELINE, "default", "add").status.get(
        "latestVersion") == "add-v1", 15, message="latestVersion add-v1")
    second_ir = copy.deepcopy(ir)
    second_ir["pipelineInfo"]["description"] = "second"
    service.create(PIPELINE_VERSION, version("add-v2", "add", second_ir))
    done = wait_for(lambda: (p := runtime.store.get(PIPELINE, "default", "add")).status.get(
        "versions") == 2 and p, 15, message="two versions")
    assert done.status["latestVersion"] == "add-v2"  # type: ignore[union-attr]
    ready = wait_for(lambda: [c for c in runtime.store.get(
        PIPELINE_VERSION, "default", "add-v2").status.get("conditions", [])
        if c["type"] == "Ready"], 15, message="Ready condition")
    assert ready[0]["status"] == "True"  # type: ignore[index]
    # pipelineRef: by object name, by the short name, and the newest when left out.
    assert resolve_pipeline_ref(runtime, "default", {"name": "add", "version": "add-v1"}) == ir
    assert resolve_pipeline_ref(runtime, "default", {"name": "add", "version": "v1"}) == ir
    assert resolve_pipeline_ref(runtime, "default", {"name": "add"}) == second_ir
    service.delete(PIPELINE_VERSION, "default", "add-v2")
    wait_for(lambda: runtime.store.get(PIPELINE, "default", "add").status.get(
        "latestVersion") == "add-v1", 15, message="latest back to add-v1")


def test_a_version_cannot_change_once_created(service: ResourceService,
                                              ir: dict[str, Any]) -> None:
    service.create(PIPELINE, pipeline("p"))
    created = service.create(PIPELINE_VERSION, version("p-v1", "p", ir, description="a"))
    changed = created.to_wire()
    changed["spec"]["description"] = "b"
    with pytest.raises(InvalidError) as err:
        service.replace(PIPELINE_VERSION, "default", "p-v1", changed)
    assert "upload a new version" in str(err.value)
    assert [f.path for f in err.value.fields] == ["spec.description"]
    with pytest.raises(InvalidError, match=r"spec\.pipelineSpec: field is immutable"):
        service.patch(PIPELINE_VERSION, "default", "p-v1",
                      {"spec": {"pipelineSpec": {**ir, "pipelineInfo": {"name": "x"}}}})
    with pytest.raises(InvalidError, match="cannot be changed"):
        service.apply(PIPELINE_VERSION, "default", "p-v1",
                      version("p-v1", "p", ir, description="c"))
    with pytest.raises(InvalidError, match="cannot be changed"):  # a dry run too
        service.replace(PIPELINE_VERSION, "default", "p-v1", changed, dry_run=True)
    # Labels are metadata, not the version: they may change.
    labelled = service.patch(PIPELINE_VERSION, "default", "p-v1",
                             {"metadata": {"labels": {"stage": "prod"}}})
    assert labelled.metadata.labels == {"stage": "prod"}
    assert service.get(PIPELINE_VERSION, "default", "p-v1").spec["description"] == "a"
    # Pipelines and experiments stay editable.
    service.create(EXPERIMENT, {"apiVersion": API, "kind": "Experiment",
                                "metadata": {"name": "tuning"},
                                "spec": {"description": "lr sweep"}})
    archived = service.patch(EXPERIMENT, "default", "tuning", {"spec": {"archived": True}})
    assert archived.spec == {"description": "lr sweep", "archived": True}
    assert service.patch(PIPELINE, "default", "p", {"spec": {"description": "new"}}).spec[
        "description"] == "new"


@pytest.mark.parametrize(("mutate", "path", "message"), [
    (lambda ir: ir.pop("root"), "spec.pipelineSpec.root", "missing"),
    (lambda ir: ir.pop("pipelineInfo"), "spec.pipelineSpec.pipelineInfo", "missing"),
    (lambda ir: ir.pop("components"), "spec.pipelineSpec.components", "missing"),
    (lambda ir: ir["root"]["dag"]["tasks"]["add"]["componentRef"].update(name="comp-nope"),
     "spec.pipelineSpec.root.dag.tasks.add.componentRef.name", "unknown component"),
])
def test_bad_ir_is_refused_with_the_field_named(service: ResourceService, ir: dict[str, Any],
                                                mutate: Any, path: str, message: str) -> None:
    bad = copy.deepcopy(ir)
    mutate(bad)
    with pytest.raises(InvalidError) as err:
        service.create(PIPELINE_VERSION, version("bad", "p", bad))
    assert err.value.fields[0].path == path
    assert message in err.value.fields[0].message
    with pytest.raises(NotFoundError):
        service.get(PIPELINE_VERSION, "default", "bad")


def test_other_bad_input(service: ResourceService, ir: dict[str, Any]) -> None:
    with pytest.raises(InvalidError) as err:
        service.create(PIPELINE_VERSION, {"apiVersion": API, "kind": "PipelineVersion",
                                          "metadata": {"name": "v"}, "spec": {"pipeline": "p"}})
    assert [f.path for f in err.value.fields] == ["spec.pipelineSpec"]
    with pytest.raises(InvalidError) as err:
        service.create(PIPELINE_VERSION, version("v", "Not_A_Name", ir))
    assert err.value.fields[0].path == "spec.pipeline"
    with pytest.raises(InvalidError) as err:
        service.create(PIPELINE_VERSION, version("v", "p", ["not", "a", "mapping"]))  # type: ignore[arg-type]
    assert err.value.fields[0].path == "spec.pipelineSpec"
    with pytest.raises(InvalidError) as err:
        service.create(EXPERIMENT, {"apiVersion": API, "kind": "Experiment",
                                    "metadata": {"name": "e"}, "spec": {"archived": "maybe"}})
    assert err.value.fields[0].path == "spec.archived"


def test_version_of_a_missing_pipeline_says_so(runtime: Runtime, service: ResourceService,
                                               ir: dict[str, Any]) -> None:
    service.create(PIPELINE_VERSION, version("orphan-v1", "orphan", ir))
    cond = wait_for(lambda: [c for c in runtime.store.get(
        PIPELINE_VERSION, "default", "orphan-v1").status.get("conditions", [])
        if c["type"] == "Ready"], 15, message="Ready condition")
    assert cond[0]["reason"] == "PipelineNotFound"  # type: ignore[index]
    with pytest.raises(NotFoundError, match='pipeline "orphan" not found'):
        resolve_pipeline_ref(runtime, "default", {"name": "orphan"})
    service.create(PIPELINE, pipeline("orphan"))  # the pipeline comes late: Ready now
    wait_for(lambda: runtime.store.get(PIPELINE_VERSION, "default", "orphan-v1").status[
        "conditions"][0]["reason"] == "PipelineFound", 15, message="Ready after all")
    service.delete(PIPELINE, "default", "orphan")
    service.create(PIPELINE, pipeline("empty"))
    with pytest.raises(NotFoundError, match="has no versions yet"):
        resolve_pipeline_ref(runtime, "default", {"name": "empty"})
    with pytest.raises(NotFoundError, match='has no version "v9"'):
        resolve_pipeline_ref(runtime, "default", {"name": "empty", "version": "v9"})
    # A version of another pipeline is not found through this one.
    with pytest.raises(NotFoundError, match='has no version "orphan-v1"'):
        resolve_pipeline_ref(runtime, "default", {"name": "empty", "version": "orphan-v1"})


def test_deleting_a_pipeline_deletes_its_versions(runtime: Runtime, service: ResourceService,
                                                  ir: dict[str, Any]) -> None:
    service.create(PIPELINE, pipeline("gone"))
    service.create(PIPELINE, pipeline("stays"))
    for name in ("gone-v1", "gone-v2"):
        service.create(PIPELINE_VERSION, version(name, "gone", ir))
    service.create(PIPELINE_VERSION, version("stays-v1", "stays", ir))
    service.delete(PIPELINE, "default", "gone")

    def gone() -> bool:
        names = {v.name for v in runtime.store.list(PIPELINE_VERSION, "default").items}
        try:
            runtime.store.get(PIPELINE, "default", "gone")
        except NotFoundError:
            return names == {"stays-v1"}
        return False

    wait_for(gone, 15, message="pipeline and its versions deleted")
    assert service.get(PIPELINE, "default", "stays").name == "stays"


def test_kinds_are_described_for_ketch_get() -> None:
    assert [c.name for c in PIPELINE.columns] == ["LATEST", "VERSIONS", "DESCRIPTION"]
    assert [c.path for c in PIPELINE_VERSION.columns][:2] == ["spec.pipeline", "spec.sourceFile"]
    assert [c.path for c in EXPERIMENT.columns] == ["spec.archived", "spec.description"]
    assert {i.api_version for i in (PIPELINE, PIPELINE_VERSION, EXPERIMENT)} == {API}


def test_resolve_uses_the_stored_objects(runtime: Runtime, ir: dict[str, Any]) -> None:
    """Objects written straight to the store (as another control plane would) resolve."""
    runtime.store.create(PIPELINE, Resource.model_validate(pipeline("direct")))
    runtime.store.create(PIPELINE_VERSION, Resource.model_validate(
        version("direct-2024", "direct", ir)))
    assert resolve_pipeline_ref(runtime, "default", {"name": "direct",
                                                     "version": "2024"}) == ir


@pytest.mark.slow
def test_a_run_of_an_uploaded_version_on_a_real_server(tmp_path: Path,
                                                       ir: dict[str, Any]) -> None:
    """Upload a pipeline and a version over REST, run it by ``pipelineRef``, list the
    catalog with ``ketch get``."""
    server = start_server(tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'k.db'}")
    base = f"{server.url}/apis/{API}/namespaces/default"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.post("/pipelines", json=pipeline(
                "adder", description="adds")).status_code == 201
            made = http.post("/pipelineversions", json=version(
                "adder-v1", "adder", ir, sourceFile="add_chain.py"))
            assert made.status_code == 201, made.text
            bad = copy.deepcopy(ir)
            del bad["root"]
            refused = http.post("/pipelineversions", json=version("adder-v2", "adder", bad))
            assert refused.status_code == 422
            assert refused.json()["details"]["causes"][0]["field"] == "spec.pipelineSpec.root"
            run = http.post("/pipelineruns", json={
                "apiVersion": API, "kind": "PipelineRun", "metadata": {"name": "by-ref"},
                "spec": {"pipelineRef": {"name": "adder", "version": "v1"},
                         "arguments": {"a": 10}}})
            assert run.status_code == 201, run.text
            done = wait_for(lambda: (r := http.get("/pipelineruns/by-ref").json())["status"]
                            .get("phase") in ("Succeeded", "Failed") and r, 90, 0.2,
                            message="the run by reference ends")
            assert done["status"]["phase"] == "Succeeded", done["status"]  # type: ignore[index]
            assert done["status"]["outputs"]["parameters"]["Output"] == 16  # type: ignore[index]
            wait_for(lambda: http.get("/pipelines/adder").json()["status"].get(
                "latestVersion") == "adder-v1", 20, message="latest version")
        env = {**server.env, "KETCH_HOST": server.url}
        listed = subprocess.run([sys.executable, "-m", "ketch.cli", "get", "pipelines"],
                                check=False, env=env, capture_output=True, text=True,
                                timeout=60)
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.splitlines()[:2]
        assert header.split()[:3] == ["NAME", "LATEST", "VERSIONS"]
        assert row.split()[:3] == ["adder", "adder-v1", "1"]
        versions = subprocess.run([sys.executable, "-m", "ketch.cli", "get", "plv"],
                                  check=False, env=env, capture_output=True, text=True,
                                timeout=60)
        assert versions.returncode == 0, versions.stderr
        assert versions.stdout.splitlines()[1].split()[:3] == ["adder-v1", "adder",
                                                               "add_chain.py"]
    finally:
        server.kill(signal.SIGTERM)
