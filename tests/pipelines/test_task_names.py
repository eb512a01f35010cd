"""Names in a pipeline's IR cannot write outside ``KETCH_HOME``: task, component,
executor and output names are held to the names kfp's compiler writes (refused at
load, the task named), and every path the engine builds from them is checked to stay
under its root."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest

from ketch.core.errors import InvalidError
from ketch.pipelines._ir import parse_pipeline_spec
from ketch.pipelines._paths import under
from ketch.pipelines.dsl._artifacts import local_path_for_uri


def _ir(task: str = "echo", component: str = "comp-echo", executor: str = "exec-echo",
        output: str = "Output", command: list[str] | None = None) -> dict[str, Any]:
    """One container step writing its output parameter, named as given."""
    return {
        "pipelineInfo": {"name": "names"}, "schemaVersion": "2.1.0",
        "components": {component: {
            "executorLabel": executor,
            "outputDefinitions": {"parameters": {output: {"parameterType": "STRING"}}}}},
        "deploymentSpec": {"executors": {executor: {"container": {
            "image": "alpine:3", "command": command or [
                "sh", "-c", 'printf hi > "$0"',
                f"{{{{$.outputs.parameters['{output}'].output_file}}}}"]}}}},
        "root": {"dag": {"tasks": {task: {
            "taskInfo": {"name": task}, "componentRef": {"name": component}}}}},
    }


ESCAPE = "../../../../tmp/ketch-escape"


@pytest.mark.parametrize(("ir", "field", "message"), [
    (_ir(task=ESCAPE), f"root.dag.tasks.{ESCAPE}", f"invalid task name {ESCAPE!r}"),
    (_ir(task="Echo"), "root.dag.tasks.Echo", "invalid task name 'Echo'"),
    (_ir(task="a/b"), "root.dag.tasks.a/b", "invalid task name 'a/b'"),
    (_ir(component="comp-../x"), "components.comp-../x", "invalid component name"),
    (_ir(executor="../exec"), "deploymentSpec.executors.../exec", "invalid executor name"),
    (_ir(output="../../escape"), "components.comp-echo.outputDefinitions.parameters"
                                 ".../../escape", "invalid output name '../../escape'"),
    (_ir(output="a.b"), "components.comp-echo.outputDefinitions.parameters.a.b",
     "invalid output name 'a.b'"),
])
def test_names_kfp_would_not_write_are_refused_at_load(ir: dict[str, Any], field: str,
                                                        message: str) -> None:
    with pytest.raises(InvalidError) as refused:
        parse_pipeline_spec(ir)
    assert refused.value.fields[0].path == field
    assert refused.value.fields[0].message.startswith(message)


def test_the_names_kfp_writes_load() -> None:
    spec = parse_pipeline_spec(_ir(task="for-loop-2", component="comp-for-loop-2",
                                   executor="exec-train-2",
                                   output="pipelinechannel--train-Output"))
    assert list(spec.root.tasks) == ["for-loop-2"]


@pytest.mark.parametrize(("root", "parts"), [
    (Path("/home/k/runs/r1"), (ESCAPE, "attempt-1")),
    (Path("/home/k/runs/r1"), ("/etc", "passwd")),
    ("/home/k/artifacts/r1", ("..", "r2")),
    ("s3://bucket/pipelines/r1", ("../../other", "x")),
    ("s3://bucket", ("..", "other-bucket")),
])
def test_under_refuses_a_path_outside_its_root(root: Any, parts: tuple[str, ...]) -> None:
    with pytest.raises(InvalidError) as refused:
        under(root, *parts, where="task t")
    assert refused.value.fields[0].path == "task t"


def test_under_joins_inside_its_root() -> None:
    assert under(Path("/h/runs/r"), "loop/0/train", "attempt-1", where="t") == Path(
        "/h/runs/r/loop/0/train/attempt-1")
    assert under("s3://b/p/r", "train", "model", where="t") == "s3://b/p/r/train/model"
    assert under("file:///h/a", "t", where="t") == "file:///h/a/t"


def test_a_staged_artifact_uri_cannot_leave_the_mount_root(tmp_path: Path) -> None:
    mount = str(tmp_path / "mnt")
    assert local_path_for_uri("s3://b/k/data", mount_root=mount) == f"{mount}/s3/b/k/data"
    with pytest.raises(InvalidError):
        local_path_for_uri("s3://b/../../../../etc/x", mount_root=mount)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_server_refuses_a_task_name_that_escapes_and_writes_nothing_outside(
        client: Any, ketch_server: Any) -> None:
    target = Path("/tmp") / f"ketch-escape-{uuid.uuid4().hex[:8]}"
    task = f"../../../../../../../..{target}"
    doc = {"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
           "metadata": {"name": "escape"}, "spec": {"pipelineSpec": _ir(task=task)}}
    with pytest.raises(InvalidError) as refused:
        client.create(doc)
    assert refused.value.fields[0].path == f"spec.pipelineSpec.root.dag.tasks.{task}"
    assert "invalid task name" in refused.value.fields[0].message
    version = {"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineVersion",
               "metadata": {"name": "escape-v1"},
               "spec": {"pipeline": "escape", "pipelineSpec": _ir(task=task)}}
    with pytest.raises(InvalidError):
        client.create(version)
    assert not target.exists()
    # A well-named copy runs, its files under the server's artifact store (in KETCH_HOME).
    good = copy.deepcopy(doc)
    good["spec"]["pipelineSpec"] = _ir(task="echo")
    client.create(good)
    from conftest import wait_for

    run = wait_for(lambda: (r := client.get("pipelinerun", "escape")).status.get("phase")
                   in ("Succeeded", "Failed") and r, timeout=60, message="the run")
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    step_root = Path(run.status["tasks"]["echo"]["outputUri"])
    assert step_root.is_relative_to(ketch_server.home)


def _with_retry(policy: dict[str, Any]) -> dict[str, Any]:
    ir = _ir()
    ir["root"]["dag"]["tasks"]["echo"]["retryPolicy"] = {"maxRetryCount": 2, **policy}
    return ir


@pytest.mark.parametrize(("policy", "field", "message"), [
    ({"backoffFactor": -1}, "backoffFactor", "must be positive"),
    ({"backoffFactor": "fast"}, "backoffFactor", "expected a number"),
    ({"backoffDuration": "-5s"}, "backoffDuration", "must not be negative"),
    ({"backoffMaxDuration": "-1s"}, "backoffMaxDuration", "must not be negative"),
])
def test_a_retry_policy_no_delay_can_follow_is_refused_at_load(
        policy: dict[str, Any], field: str, message: str) -> None:
    """Refused when the run is submitted, naming the field, not at the first failure."""
    with pytest.raises(InvalidError) as refused:
        parse_pipeline_spec(_with_retry(policy))
    assert refused.value.fields[0].path == f"root.dag.tasks.echo.retryPolicy.{field}"
    assert refused.value.fields[0].message.startswith(message), refused.value.fields[0]


def test_a_retry_policy_loads_with_kfps_defaults() -> None:
    task = parse_pipeline_spec(_with_retry({"backoffDuration": "2s"})).root.tasks["echo"]
    assert (task.retry.max_retries, task.retry.backoff_seconds, task.retry.backoff_factor,
            task.retry.backoff_max_seconds) == (2, 2.0, 2.0, 3600.0)
