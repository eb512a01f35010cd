"""``ketch run`` and ``ketch.Client``'s kfp-style calls against a real server, and the
example pipeline (train two models in a ParallelFor, register the better) end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipelines" / "wine_classifier.py"

SUM_LIST = textwrap.dedent('''
    from typing import List
    from ketch import dsl

    @dsl.component
    def total(items: List[int], label: str) -> str:
        print("summing", items)
        return f"{label}={sum(items)}"

    @dsl.pipeline(name="sum-list")
    def sum_list(items: List[int] = [1], label: str = "sum") -> str:
        return total(items=items, label=label).output
''')

FAILS = textwrap.dedent('''
    from ketch import dsl

    @dsl.component
    def explode(why: str):
        raise ValueError(f"exploded: {why}")

    @dsl.pipeline(name="fails")
    def fails(why: str = "bad data"):
        explode(why=why)
''')


def ketch(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=240, check=False)


def test_run_parses_parameters_waits_and_prints_the_finished_run(ketch_server: Any,
                                                                 tmp_path: Path) -> None:
    pipeline = tmp_path / "sum_list.py"
    pipeline.write_text(SUM_LIST)
    done = ketch(ketch_server, "run", str(pipeline), "-p", "items=[1,2,39]", "-p",
                 "label=total", "--wait", "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"]["phase"] == "Succeeded"
    assert run["status"]["outputs"]["parameters"] == {"Output": "total=42"}
    assert run["spec"]["arguments"] == {"items": [1, 2, 39], "label": "total"}
    assert "total" in done.stderr and "Succeeded" in done.stderr  # live progress
    logs = ketch(ketch_server, "logs", "run", run["metadata"]["name"], "--task", "total")
    assert logs.stdout == "summing [1, 2, 39]\n"


def test_run_of_a_compiled_ir_file_and_no_cache(ketch_server: Any, tmp_path: Path) -> None:
    from ketch.pipelines.compiler import load_pipeline_file

    pipeline = tmp_path / "sum_list.py"
    pipeline.write_text(SUM_LIST)
    ir = tmp_path / "sum_list.json"
    ir.write_text(json.dumps(load_pipeline_file(pipeline)))
    first = ketch(ketch_server, "run", str(ir), "--wait", "-o", "json")
    again = ketch(ketch_server, "run", str(ir), "--wait", "-o", "json")
    fresh = ketch(ketch_server, "run", str(ir), "--no-cache", "--wait", "-o", "json")
    assert [p.returncode for p in (first, again, fresh)] == [0, 0, 0], fresh.stderr
    assert json.loads(again.stdout)["status"]["tasks"]["total"]["cached"] is True
    assert json.loads(fresh.stdout)["status"]["tasks"]["total"]["cached"] is False


def test_failed_run_exits_1_with_the_users_error(ketch_server: Any, tmp_path: Path) -> None:
    pipeline = tmp_path / "fails.py"
    pipeline.write_text(FAILS)
    done = ketch(ketch_server, "run", str(pipeline), "--wait")
    assert done.returncode == 1
    assert "ValueError: exploded: bad data" in done.stderr
    bad = ketch(ketch_server, "run", str(pipeline), "-p", "nope=1")
    assert bad.returncode == 1 and "spec.arguments.nope" in bad.stderr


def test_kfp_client_calls(ketch_server: Any, tmp_path: Path) -> None:
    pipeline = tmp_path / "sum_list.py"
    pipeline.write_text(SUM_LIST)
    import importlib.util

    spec = importlib.util.spec_from_file_location("sum_list_module", pipeline)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with Client(ketch_server.url) as client:
        result = client.create_run_from_pipeline_func(
            module.sum_list, arguments={"items": [5, 5]}, experiment_name="tuning")
        run = result.wait_for_run_completion(timeout=120)
        assert run.status["phase"] == "Succeeded"
        assert run.status["outputs"]["parameters"]["Output"] == "sum=10"
        package = client.create_run_from_pipeline_package(str(pipeline),
                                                          arguments={"items": [1]})
        assert client.wait_for_run_completion(package.run_id, timeout=120).status[
            "phase"] == "Succeeded"
        in_experiment = client.list_runs(experiment_name="tuning")
        assert [r.name for r in in_experiment] == [result.run_id]
        assert {r.name for r in client.list_runs()} == {result.run_id, package.run_id}
        assert client.get_run(result.run_id).spec["experiment"] == "tuning"


def test_example_trains_two_models_and_registers_the_better(ketch_server: Any) -> None:
    done = ketch(ketch_server, "run", str(EXAMPLE), "--wait", "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    tasks = run["status"]["tasks"]
    iterations = tasks["for-loop-2"]["iterations"]
    accuracies = [it["tasks"]["train"]["outputs"]["parameters"]["Output"] for it in iterations]
    assert len(accuracies) == 2 and all(0.8 < a <= 1.0 for a in accuracies)
    metrics = iterations[0]["tasks"]["train"]["outputs"]["artifacts"]["metrics"]
    assert metrics["metadata"]["accuracy"] == accuracies[0]
    confusion = iterations[0]["tasks"]["train"]["outputs"]["artifacts"]["confusion"]
    assert len(confusion["metadata"]["confusionMatrix"]["rows"]) == 3
    best = tasks["pick-best"]["outputs"]["parameters"]
    assert best["accuracy"] == max(accuracies)
    registered = tasks["condition-3"]["tasks"]["register"]["outputs"]["parameters"]["Output"]
    from ketch.registry.client import ModelRegistry

    registry = ModelRegistry(ketch_server.url)
    version = registry.get_model_version("wine", registered)
    artifact = registry.get_model_artifact("wine", registered)
    assert version is not None and artifact is not None
    assert artifact["modelSourceKind"] == "kfp"
    assert artifact["modelSourceName"] == run["metadata"]["name"]
    # Too high a bar: the condition is false and nothing more is registered.
    strict = ketch(ketch_server, "run", str(EXAMPLE), "-p", "min_accuracy=1.01", "--wait",
                   "-o", "json")
    assert strict.returncode == 0, strict.stderr
    assert json.loads(strict.stdout)["status"]["tasks"]["condition-3"]["phase"] == "Skipped"


NEEDS_PACKAGE = textwrap.dedent('''
    from ketch import dsl

    @dsl.component(packages_to_install=["tomli-w==1.0.0"])
    def render(key: str) -> str:
        import tomli_w

        return tomli_w.dumps({key: 1}).strip()

    @dsl.pipeline(name="needs-package")
    def needs_package(key: str = "answer") -> str:
        return render(key=key).output
''')


def test_install_packages_runs_steps_in_a_cached_venv(ketch_server: Any,
                                                      tmp_path: Path) -> None:
    """tomli-w is not in ketch's environment: without --install-packages the step fails
    to import it; with it, the step runs in a venv that has it, built once."""
    pipeline = tmp_path / "needs_package.py"
    pipeline.write_text(NEEDS_PACKAGE)
    plain = ketch(ketch_server, "run", str(pipeline), "--wait")
    assert plain.returncode == 1 and "No module named 'tomli_w'" in plain.stderr
    first = ketch(ketch_server, "run", str(pipeline), "--install-packages", "--no-cache",
                  "--wait", "-o", "json")
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    assert run["status"]["outputs"]["parameters"] == {"Output": "answer = 1"}
    conditions = {c["type"]: c for c in run["status"]["tasks"]["render"]["conditions"]}
    assert conditions["PackagesInstalled"]["status"] == "True"
    # Built where the step's unit ran (the local executor's venv cache), once.
    venvs = sorted(ketch_server.home.glob("**/venvs/*/ready"))
    assert len(venvs) == 1
    second = ketch(ketch_server, "run", str(pipeline), "--install-packages", "--no-cache",
                   "--wait")
    assert second.returncode == 0, second.stderr
    assert sorted(ketch_server.home.glob("**/venvs/*/ready")) == venvs


IMPORTER_METADATA = textwrap.dedent('''
    from ketch import dsl
    from ketch.dsl import Dataset, Input

    @dsl.component
    def origin() -> str:
        return "made-by-a-task"

    @dsl.component
    def describe(data: Input[Dataset]) -> str:
        return f"{data.uri}|{data.metadata['source']}"

    @dsl.pipeline(name="importer-metadata")
    def importer_metadata(uri: str = "/etc/hostname") -> str:
        src = origin()
        imported = dsl.importer(artifact_uri=uri, artifact_class=Dataset,
                                metadata={"source": src.output})
        return describe(data=imported.output).output
''')


def test_importer_metadata_takes_task_outputs(ketch_server: Any, tmp_path: Path) -> None:
    pipeline = tmp_path / "importer_metadata.py"
    pipeline.write_text(IMPORTER_METADATA)
    done = ketch(ketch_server, "run", str(pipeline), "--wait", "-o", "json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"]["outputs"]["parameters"] == {"Output": "/etc/hostname|made-by-a-task"}


def test_kfp_client_pipelines_and_recurring_runs(ketch_server: Any, tmp_path: Path) -> None:
    from conftest import wait_for

    pipeline = tmp_path / "sum_list.py"
    pipeline.write_text(SUM_LIST)
    with Client(ketch_server.url) as client:
        client.upload_pipeline(str(pipeline), "sum-list", description="sums a list")
        assert [p.name for p in client.list_pipelines()] == ["sum-list"]
        versions = client.list_pipeline_versions("sum-list")
        assert [v.name for v in versions] == ["sum-list-v1"]
        # A run from the uploaded version, by reference.
        created = client.create({"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
                                 "metadata": {"name": "by-ref"},
                                 "spec": {"pipelineRef": {"name": "sum-list"},
                                          "arguments": {"items": [2, 3]}}})
        done = client.wait_for_run_completion(created.name, timeout=120)
        assert done.status["outputs"]["parameters"]["Output"] == "sum=5"

        client.create_recurring_run("every-second", interval_second=1, max_concurrency=1,
                                    pipeline_package_path=str(pipeline),
                                    params={"items": [1, 1]}, no_catchup=True)

        def two_succeeded() -> list[Any] | None:
            runs = [r for r in client.list_runs()
                    if r.metadata.labels.get("pipelines.ketch.dev/recurring-run")
                    == "every-second" and r.status.get("phase") == "Succeeded"]
            return runs if len(runs) >= 2 else None

        runs = wait_for(two_succeeded, timeout=120, interval=0.2, message="two scheduled runs")
        assert all(r.status["outputs"]["parameters"]["Output"] == "sum=2" for r in runs)
        assert [r.name for r in client.list_recurring_runs()] == ["every-second"]
        client.disable_recurring_run("every-second")
        assert client.get_recurring_run("every-second").spec["mode"] == "Disable"
