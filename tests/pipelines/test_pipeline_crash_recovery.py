"""kill -9 of the control plane in the middle of a pipeline run: the restarted one
finishes the run, and no step that had finished runs again."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import new_postgres_database, start_server, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def ledger_chain(steps: int, ledger: Path, gate: Path) -> dict[str, Any]:
    """step-1 -> ... -> step-N; each appends its name to ``ledger``; step-2 waits for
    ``gate`` so the test can kill the server while it runs."""
    script = (f'echo "$2" >> {ledger}; if [ "$2" = step-2 ]; then '
              f'while [ ! -f {gate} ]; do sleep 0.05; done; fi; '
              'printf "%s" "$(( $0 + 1 ))" > "$1"')
    command = ["sh", "-c", script, "{{$.inputs.parameters['x']}}",
               "{{$.outputs.parameters['y'].output_file}}", "{{$.pipeline_task_name}}"]
    tasks: dict[str, Any] = {}
    for i in range(1, steps + 1):
        source = ({"componentInputParameter": "n"} if i == 1 else
                  {"taskOutputParameter": {"producerTask": f"step-{i - 1}",
                                           "outputParameterKey": "y"}})
        tasks[f"step-{i}"] = {"taskInfo": {"name": f"step-{i}"},
                              "componentRef": {"name": "comp-step"},
                              "dependentTasks": [f"step-{i - 1}"] if i > 1 else [],
                              "inputs": {"parameters": {"x": source}}}
    return {
        "pipelineInfo": {"name": "ledger"}, "schemaVersion": "2.1.0",
        "components": {"comp-step": {
            "executorLabel": "exec-step",
            "inputDefinitions": {"parameters": {"x": {"parameterType": "NUMBER_INTEGER"}}},
            "outputDefinitions": {"parameters": {"y": {"parameterType": "NUMBER_INTEGER"}}}}},
        "deploymentSpec": {"executors": {"exec-step": {"container": {
            "image": "alpine:3", "command": command}}}},
        "root": {"inputDefinitions": {"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}},
                 "outputDefinitions": {"parameters": {"Output": {
                     "parameterType": "NUMBER_INTEGER"}}},
                 "dag": {"tasks": tasks, "outputs": {"parameters": {"Output": {
                     "valueFromParameter": {"producerSubtask": f"step-{steps}",
                                            "outputParameterKey": "y"}}}}}},
    }


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_sigkill_mid_run_then_restart_finishes_without_rerunning_steps(
        database: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    db_url = (new_postgres_database(request.getfixturevalue("postgres_server"))
              if database == "postgres" else None)
    home, ledger, gate = tmp_path / "home", tmp_path / "ledger", tmp_path / "gate"
    server = start_server(home, database_url=db_url)
    try:
        with Client(server.url) as client:
            client.create({"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
                           "metadata": {"name": "survivor"},
                           "spec": {"pipelineSpec": ledger_chain(4, ledger, gate),
                                    "arguments": {"n": 10}}})

            def step2_running() -> bool:
                st = client.get("pipelinerun", "survivor").status.get("tasks") or {}
                return (st.get("step-1", {}).get("phase") == "Succeeded"
                        and st.get("step-2", {}).get("phase") == "Running")

            wait_for(step2_running, timeout=60, message="step-2 running")
        server.kill(signal.SIGKILL)
        gate.write_text("")  # step-2 ends while no control plane is up
        server = start_server(home, database_url=db_url)
        with Client(server.url) as client:
            def finished() -> Any:
                run = client.get("pipelinerun", "survivor")
                return run if run.status.get("phase") in ("Succeeded", "Failed") else None

            run = wait_for(finished, timeout=120, message="the run to finish")
            assert run.status["phase"] == "Succeeded", run.status.get("message")
            assert run.status["outputs"]["parameters"] == {"Output": 14}
            assert all(t["attempts"] == 1 for t in run.status["tasks"].values())
        assert ledger.read_text().split() == ["step-1", "step-2", "step-3", "step-4"]
    finally:
        server.kill(signal.SIGTERM)
