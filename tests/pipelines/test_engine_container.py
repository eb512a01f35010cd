"""The engine on hand-written IR with container steps (host processes): data passing
between steps, pipeline outputs, failure with the step's log in the status, retries,
cancel, and bad IR rejected at submit with the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from ketch.core.errors import InvalidError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ADD_ONE = ["sh", "-c", 'printf "%s" "$(( $0 + 1 ))" > "$1"',
           "{{$.inputs.parameters['x']}}", "{{$.outputs.parameters['y'].output_file}}"]


def _component(executor: str) -> dict[str, Any]:
    return {"executorLabel": executor,
            "inputDefinitions": {"parameters": {"x": {"parameterType": "NUMBER_INTEGER"}}},
            "outputDefinitions": {"parameters": {"y": {"parameterType": "NUMBER_INTEGER"}}}}


def _task(name: str, source: dict[str, Any], *, deps: list[str] | None = None,
          component: str = "comp-add-one", **extra: Any) -> dict[str, Any]:
    return {"taskInfo": {"name": name}, "componentRef": {"name": component},
            "dependentTasks": deps or [], "inputs": {"parameters": {"x": source}}, **extra}


def chain_ir(command: list[str] | None = None, **task_extra: Any) -> dict[str, Any]:
    """root(n) -> add-one(n) -> add-one-2(y) ; pipeline output = add-one-2.y"""
    return {
        "pipelineInfo": {"name": "chain"},
        "schemaVersion": "2.1.0",
        "components": {"comp-add-one": _component("exec-add-one")},
        "deploymentSpec": {"executors": {"exec-add-one": {"container": {
            "image": "alpine:3", "command": command or ADD_ONE}}}},
        "root": {
            "inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}},
            "outputDefinitions": {"parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}}},
            "dag": {
                "tasks": {
                    "add-one": _task("add-one", {"componentInputParameter": "n"}, **task_extra),
                    "add-one-2": _task("add-one-2", {"taskOutputParameter": {
                        "producerTask": "add-one", "outputParameterKey": "y"}},
                        deps=["add-one"]),
                },
                "outputs": {"parameters": {"Output": {"valueFromParameter": {
                    "producerSubtask": "add-one-2", "outputParameterKey": "y"}}}},
            },
        },
    }


def run_doc(name: str, ir: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": name}, "spec": {"pipelineSpec": ir, **spec}}


def finished(client: Any, name: str, timeout: float = 60) -> Any:
    def done() -> Any:
        run = client.get("pipelinerun", name)
        return run if run.status.get("phase") in ("Succeeded", "Failed", "Cancelled") else None

    return wait_for(done, timeout=timeout, message=f"run {name} to finish")


def test_chain_passes_parameters_and_sets_pipeline_outputs(client: Any) -> None:
    client.create(run_doc("chain", chain_ir(), arguments={"n": 3}))
    run = finished(client, "chain")
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    assert run.status["outputs"]["parameters"] == {"Output": 5}
    tasks = run.status["tasks"]
    assert tasks["add-one"]["outputs"]["parameters"] == {"y": 4}
    assert tasks["add-one-2"]["inputs"]["parameters"] == {"x": 4}
    assert tasks["add-one"]["attempts"] == 1
    host = {c["type"]: c for c in tasks["add-one"]["conditions"]}["HostProcess"]
    assert host["status"] == "True" and "no container runtime" in host["message"]
    logs = b"".join(client.logs("pipelinerun", "chain")).decode()
    assert logs == "" or "[add-one]" in logs


def test_failed_step_fails_the_run_with_its_log_and_skips_downstream(client: Any) -> None:
    failing = ["sh", "-c", 'echo "boom: bad input $0" >&2; exit 3',
               "{{$.inputs.parameters['x']}}"]
    client.create(run_doc("fails", chain_ir(failing), arguments={"n": 1}))
    run = finished(client, "fails")
    assert run.status["phase"] == "Failed"
    first = run.status["tasks"]["add-one"]
    assert first["phase"] == "Failed"
    assert "exit status 3" in first["message"] and "boom: bad input 1" in first["message"]
    assert run.status["tasks"]["add-one-2"]["phase"] == "Skipped"
    assert "boom" in run.status["message"]
    log = b"".join(client.logs("pipelinerun", "fails", task="add-one")).decode()
    assert "boom: bad input 1" in log


def test_retry_policy_reruns_a_failing_step(client: Any, tmp_path: Any) -> None:
    marker = tmp_path / "tries"
    flaky = ["sh", "-c", f'echo x >> {marker}; [ "$(wc -l < {marker})" -ge 3 ] || exit 1; '
             'printf 7 > "$1"', "{{$.inputs.parameters['x']}}",
             "{{$.outputs.parameters['y'].output_file}}"]
    ir = chain_ir(flaky, retryPolicy={"maxRetryCount": 3, "backoffDuration": "0s"})
    client.create(run_doc("retries", ir, arguments={"n": 1}))
    run = finished(client, "retries")
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    assert run.status["tasks"]["add-one"]["attempts"] == 3


def test_cancel_kills_the_running_step(client: Any, tmp_path: Any) -> None:
    started = tmp_path / "started"
    slow = ["sh", "-c", f"touch {started}; sleep 60", "{{$.inputs.parameters['x']}}"]
    client.create(run_doc("cancelme", chain_ir(slow), arguments={"n": 1}))
    wait_for(started.exists, timeout=30, message="the step to start")
    client.patch("pipelinerun", "cancelme", {"spec": {"cancel": True}})
    run = finished(client, "cancelme")
    assert run.status["phase"] == "Cancelled"
    assert run.status["tasks"]["add-one"]["phase"] == "Cancelled"


def test_bad_ir_and_arguments_are_rejected_at_submit_naming_the_field(client: Any) -> None:
    ir = chain_ir()
    ir["root"]["dag"]["tasks"]["add-one-2"]["componentRef"]["name"] = "comp-nope"
    with pytest.raises(InvalidError) as err:
        client.create(run_doc("bad-ir", ir, arguments={"n": 1}))
    assert "root.dag.tasks.add-one-2.componentRef.name" in str(err.value.fields)
    with pytest.raises(InvalidError) as err:
        client.create(run_doc("bad-args", chain_ir(), arguments={"n": "three"}))
    assert "spec.arguments.n" in str(err.value.fields)
    with pytest.raises(InvalidError) as err:
        client.create(run_doc("missing-args", chain_ir()))
    assert "spec.arguments.n" in str(err.value.fields)


def artifact_ir() -> dict[str, Any]:
    """make-data writes a Dataset; count reads it and outputs its line count."""
    dataset = {"artifactType": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}}
    return {
        "pipelineInfo": {"name": "artifacts"},
        "schemaVersion": "2.1.0",
        "components": {
            "comp-make-data": {
                "executorLabel": "exec-make-data",
                "inputDefinitions": {"parameters": {"rows": {"parameterType": "NUMBER_INTEGER"}}},
                "outputDefinitions": {"artifacts": {"data": dataset}}},
            "comp-count": {
                "executorLabel": "exec-count",
                "inputDefinitions": {"artifacts": {"data": dataset}},
                "outputDefinitions": {"parameters": {"lines": {
                    "parameterType": "NUMBER_INTEGER"}}}},
        },
        "deploymentSpec": {"executors": {
            "exec-make-data": {"container": {"image": "alpine:3", "command": [
                "sh", "-c", 'seq "$0" > "$1"', "{{$.inputs.parameters['rows']}}",
                "{{$.outputs.artifacts['data'].path}}"]}},
            "exec-count": {"container": {"image": "alpine:3", "command": [
                "sh", "-c", 'wc -l < "$0" | tr -d " " > "$1"',
                "{{$.inputs.artifacts['data'].path}}",
                "{{$.outputs.parameters['lines'].output_file}}"]}},
        }},
        "root": {
            "inputDefinitions": {"parameters": {"rows": {"parameterType": "NUMBER_INTEGER"}}},
            "dag": {"tasks": {
                # Caching on, as kfp writes it (an absent cachingOptions is off).
                "make-data": {"taskInfo": {"name": "make-data"},
                              "componentRef": {"name": "comp-make-data"},
                              "cachingOptions": {"enableCache": True},
                              "inputs": {"parameters": {"rows": {
                                  "componentInputParameter": "rows"}}}},
                "count": {"taskInfo": {"name": "count"}, "componentRef": {"name": "comp-count"},
                          "dependentTasks": ["make-data"],
                          "cachingOptions": {"enableCache": True},
                          "inputs": {"artifacts": {"data": {"taskOutputArtifact": {
                              "producerTask": "make-data", "outputArtifactKey": "data"}}}}},
            }},
        },
    }


def test_artifacts_flow_and_are_recorded_in_lineage(client: Any) -> None:
    import httpx

    client.create(run_doc("arts", artifact_ir(), arguments={"rows": 4}))
    run = finished(client, "arts")
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    made = run.status["tasks"]["make-data"]["outputs"]["artifacts"]["data"]
    assert made["type"] == "system.Dataset"
    assert Path(made["uri"]).read_text().split() == ["1", "2", "3", "4"]
    count = run.status["tasks"]["count"]
    assert count["outputs"]["parameters"] == {"lines": 4}
    execution = httpx.get(f"{client.url}/api/ketch/lineage/executions/"
                          f"{count['executionId']}").json()
    assert execution["state"] == "COMPLETE"
    assert [a["uri"] for a in execution["inputs"]["data"]] == [made["uri"]]
    upstream = httpx.get(f"{client.url}/api/ketch/lineage/artifacts/{made['id']}/upstream"
                         ).json()
    assert {e["name"] for e in upstream["executions"]} == {"make-data"}


def test_second_run_is_cached_unless_caching_is_off(client: Any) -> None:
    client.create(run_doc("first", artifact_ir(), arguments={"rows": 3}))
    first = finished(client, "first")
    assert first.status["phase"] == "Succeeded"
    client.create(run_doc("second", artifact_ir(), arguments={"rows": 3}))
    second = finished(client, "second")
    assert second.status["phase"] == "Succeeded"
    for task in ("make-data", "count"):
        st = second.status["tasks"][task]
        assert st["cached"] is True, task
        assert st["cachedFrom"]["run"] == "default/first"
        assert st["outputs"] == first.status["tasks"][task]["outputs"]
        assert "attempts" not in st  # nothing ran
    client.create(run_doc("changed", artifact_ir(), arguments={"rows": 5}))
    changed = finished(client, "changed")
    assert not changed.status["tasks"]["make-data"].get("cached")
    client.create(run_doc("nocache", artifact_ir(), arguments={"rows": 3}, caching=False))
    nocache = finished(client, "nocache")
    assert not nocache.status["tasks"]["make-data"].get("cached")
    assert nocache.status["tasks"]["make-data"]["attempts"] == 1


def test_memory_limit_is_enforced(client: Any) -> None:
    """set_memory_limit is not dropped: a step over its limit is killed, OOMKilled."""
    hog = ["python3", "-c", "import time; x = bytearray(400 * 1024 * 1024); time.sleep(60)",
           "{{$.inputs.parameters['x']}}"]
    ir = chain_ir(hog)
    ir["deploymentSpec"]["executors"]["exec-add-one"]["container"]["resources"] = {
        "resourceMemoryLimit": "150Mi", "memoryLimit": 0.157286}
    client.create(run_doc("hog", ir, arguments={"n": 1}))
    run = finished(client, "hog")
    assert run.status["phase"] == "Failed"
    assert run.status["tasks"]["add-one"]["message"].startswith("OOMKilled")


def test_a_killed_step_fails_its_task_not_the_engine(client: Any) -> None:
    import os
    import signal

    slow = ["sh", "-c", "sleep 60", "{{$.inputs.parameters['x']}}"]
    client.create(run_doc("victim", chain_ir(slow), arguments={"n": 1}))

    def step_pid() -> int | None:
        # The step's own process, found as a user would (ps): the handle is the
        # executor's business.
        import psutil

        for proc in psutil.process_iter(["cmdline"]):
            try:
                if (proc.info["cmdline"] == ["sleep", "60"]
                        and proc.environ().get("KETCH_PIPELINE_RUN") == "victim"):
                    return int(proc.pid)
            except psutil.Error:
                continue
        return None

    os.kill(int(wait_for(step_pid, message="the step's pid")), signal.SIGKILL)
    run = finished(client, "victim")
    assert run.status["phase"] == "Failed"
    assert "killed" in run.status["tasks"]["add-one"]["message"]
    # The engine carries on: the next run on the same server succeeds.
    client.create(run_doc("after", chain_ir(), arguments={"n": 1}))
    assert finished(client, "after").status["phase"] == "Succeeded"


def test_following_a_cancelled_steps_log_ends(client: Any, tmp_path: Path) -> None:
    """A killed or cancelled step writes no exit status; a follow must still end."""
    import threading

    started = tmp_path / "started"
    slow = ["sh", "-c", f"echo working; touch {started}; sleep 60",
            "{{$.inputs.parameters['x']}}"]
    client.create(run_doc("follow-cancel", chain_ir(slow), arguments={"n": 1}))
    wait_for(started.exists, timeout=30, message="the step to start")
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(
        client.logs("pipelinerun", "follow-cancel", task="add-one", follow=True)), daemon=True)
    reader.start()
    client.patch("pipelinerun", "follow-cancel", {"spec": {"cancel": True}})
    reader.join(30)
    assert not reader.is_alive(), "the log follow did not end after the step was cancelled"
    assert b"".join(chunks) == b"working\n"
