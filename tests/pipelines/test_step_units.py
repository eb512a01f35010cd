"""Pipeline steps are core executor units (ADR 007): one CPU budget with Jobs, every
documented KETCH_CPUS form, logs in the artifact store, nothing left in the executor's
scratch once a step's end is recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_engine_container import chain_ir, finished, run_doc

from conftest import ServerProcess, wait_for
from ketch.pipelines._launch import log_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _client(server: ServerProcess) -> Any:
    from ketch import Client

    return Client(server.url)


def test_a_control_plane_with_half_a_cpu_runs_a_pipeline(server_factory: Any,
                                                        tmp_path: Path) -> None:
    """KETCH_CPUS=500m (a form the docs list) starts, and a step asking for the default
    one CPU runs on the half core there is."""
    server = server_factory(tmp_path / "half", KETCH_CPUS="500m")
    with _client(server) as client:
        client.create(run_doc("half", chain_ir(), arguments={"n": 1}))
        run = finished(client, "half")
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    assert run.status["outputs"]["parameters"] == {"Output": 3}


def test_a_step_waits_for_the_cpu_a_job_holds_then_runs(server_factory: Any,
                                                        tmp_path: Path) -> None:
    """Jobs and steps book the same cores: with one CPU, a Job holding it keeps a
    one-CPU step from starting until the Job ends."""
    gate = tmp_path / "gate"
    server = server_factory(tmp_path / "one", KETCH_CPUS="1")
    with _client(server) as client:
        client.create({"apiVersion": "ketch.dev/v1", "kind": "Job",
                       "metadata": {"name": "holder"},
                       "spec": {"command": ["sh", "-c", f"while [ ! -e {gate} ]; do "
                                            "sleep 0.05; done"],
                                "resources": {"cpu": 1}}})
        wait_for(lambda: client.get("job", "holder").status.get("phase") == "Running",
                 timeout=30, message="the Job to run")
        ir = chain_ir()
        ir["deploymentSpec"]["executors"]["exec-add-one"]["container"]["resources"] = {
            "resourceCpuRequest": "1"}
        client.create(run_doc("waits", ir, arguments={"n": 1}))

        def looked_at() -> Any:
            run = client.get("pipelinerun", "waits")
            return run if "add-one" in (run.status.get("tasks") or {}) else None

        # The engine has been over the first step and left it waiting for the CPU.
        waiting = wait_for(looked_at, timeout=30, message="the run's first pass")
        assert waiting.status["tasks"]["add-one"]["phase"] == "Pending"
        assert not waiting.status["tasks"]["add-one"].get("attempts")
        assert client.get("job", "holder").status["phase"] == "Running"
        gate.touch()
        run = finished(client, "waits")
        job = client.get("job", "holder")
    assert job.status["phase"] == "Succeeded"
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    assert run.status["outputs"]["parameters"] == {"Output": 3}


def test_step_logs_reach_the_artifact_store_and_scratch_goes(client: Any,
                                                            ketch_server: Any) -> None:
    marker = "step-log-marker-5c1e"
    loud = ["sh", "-c", f'echo {marker}-$0; printf "%s" "$(( $0 + 1 ))" > "$1"',
            "{{$.inputs.parameters['x']}}", "{{$.outputs.parameters['y'].output_file}}"]
    client.create(run_doc("loud", chain_ir(loud), arguments={"n": 1}))
    run = finished(client, "loud")
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    key = log_key(run.namespace, run.name, str(run.metadata.uid), "add-one-2", 1)
    stored = ketch_server.home / "artifacts" / key
    assert stored.read_text() == f"{marker}-2\n"
    assert b"".join(client.logs("pipelinerun", "loud", task="add-one")) == (
        f"{marker}-1\n".encode())
    # The task's status keeps no handle once the step ended, and the executor's
    # scratch directories of the run's units are gone.
    assert all("unit" not in st for st in run.status["tasks"].values())
    runs = ketch_server.home / "runs"
    left = [p.name for p in runs.iterdir()] if runs.exists() else []
    assert not [name for name in left if name.startswith(str(run.metadata.uid))]
