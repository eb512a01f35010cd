"""``set_caching_options(False)`` holds for IR from the real kfp 2.16.1 and from ketch's
compiler: both write ``cachingOptions: {}`` for such a task, which KFP's driver reads
as caching off (``GetCachingOptions().GetEnableCache()``: protobuf's default false)."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from ketch.pipelines._ir import parse_pipeline_spec

PIPELINE = textwrap.dedent("""
    from kfp import dsl

    @dsl.component
    def stamp(text: str) -> str:
        return f"[{text}]"

    @dsl.pipeline(name="caching-options")
    def caching_options() -> str:
        fresh = stamp(text="fresh")
        fresh.set_caching_options(enable_caching=False)
        return stamp(text=fresh.output).output
""")


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("caching") / "caching_options.py"
    path.write_text(PIPELINE)
    return path


@pytest.fixture(scope="module")
def compiled(pipeline_file: Path, kfp_compile: Any) -> dict[str, dict[str, Any]]:
    """The pipeline as the real kfp compiles it, and as ketch's compiler does."""
    from ketch.pipelines.compiler import load_pipeline_file

    kfp_ir = kfp_compile([(pipeline_file, None)])[str(pipeline_file)]
    assert "error" not in kfp_ir, kfp_ir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ketch_ir = load_pipeline_file(pipeline_file)
    return {"kfp": kfp_ir, "ketch": ketch_ir}


@pytest.mark.parametrize("source", ["kfp", "ketch"])
def test_empty_caching_options_read_as_caching_off(compiled: dict[str, Any],
                                                   source: str) -> None:
    ir = compiled[source]
    tasks = ir["root"]["dag"]["tasks"]
    assert tasks["stamp"]["cachingOptions"] == {}  # what both compilers write
    assert tasks["stamp-2"]["cachingOptions"] == {"enableCache": True}
    spec = parse_pipeline_spec(ir)
    assert spec.root.tasks["stamp"].cache is False
    assert spec.root.tasks["stamp-2"].cache is True


def test_no_caching_options_at_all_is_caching_off_as_in_kfp() -> None:
    ir = {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {"t": {
        "taskInfo": {"name": "t"}, "componentRef": {"name": "comp-t"}}}}},
        "components": {"comp-t": {"executorLabel": "exec-t"}},
        "deploymentSpec": {"executors": {"exec-t": {"container": {"image": "x"}}}}}
    assert parse_pipeline_spec(ir).root.tasks["t"].cache is False


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("source", ["kfp", "ketch"])
def test_second_run_reruns_the_task_with_caching_off(client: Any, compiled: dict[str, Any],
                                                     source: str) -> None:
    def run(name: str) -> Any:
        client.create({"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
                       "metadata": {"name": name}, "spec": {"pipelineSpec": compiled[source]}})

        def done() -> Any:
            got = client.get("pipelinerun", name)
            return got if got.status.get("phase") in ("Succeeded", "Failed") else None

        finished = wait_for(done, timeout=90, message=f"run {name}")
        assert finished.status["phase"] == "Succeeded", finished.status.get("message")
        return finished

    run(f"{source}-first")
    second = run(f"{source}-second")
    tasks = second.status["tasks"]
    assert tasks["stamp"]["cached"] is False and tasks["stamp"]["attempts"] == 1
    assert tasks["stamp-2"]["cached"] is True  # caching on: taken from the first run
    assert second.status["outputs"]["parameters"] == {"Output": "[[fresh]]"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_client_enable_caching_true_overrides_the_tasks_as_kfp_client_does(
        client: Any, compiled: dict[str, Any], tmp_path: Path) -> None:
    """kfp.Client(...).create_run_from_pipeline_package(enable_caching=True) sets
    enableCache on every root task, over set_caching_options(False)."""
    import json

    package = tmp_path / "caching_options.json"
    package.write_text(json.dumps(compiled["kfp"]))
    runs = []
    for _ in range(2):
        result = client.create_run_from_pipeline_package(str(package), enable_caching=True)
        runs.append(result.wait_for_run_completion(timeout=90))
    assert [r.status["phase"] for r in runs] == ["Succeeded", "Succeeded"]
    assert runs[1].status["tasks"]["stamp"]["cached"] is True
    assert runs[1].status["tasks"]["stamp-2"]["cached"] is True
