"""Two control planes, each with its own KETCH_HOME, on one PostgreSQL database: every
kind's work runs exactly once, and when the first is killed (SIGKILL: no lease
release, no clean-up) the second adopts what the first had started, through the
executor contract alone (the first's unit directories live under the first's home).
"""

from __future__ import annotations

import contextlib
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from _modelserver import trained_iris
from conftest import ServerProcess, new_postgres_database, start_server, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

JOBS = ("job-a", "job-b", "job-c")
DOOMED = "job-deleted"  # CP1's, still running when CP2 deletes it
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def _gated(marker: Path, gate: Path) -> str:
    """A shell line that records one start in ``marker``, then waits for ``gate``."""
    return (f'echo "started $$" >> {marker}; echo running; '
            f'while [ ! -f {gate} ]; do sleep 0.05; done')


def _job(name: str, marker: Path, gate: Path) -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"command": ["sh", "-c", _gated(marker, gate)], "backoffLimit": 2}}


def _pipeline(ledger: Path, gate: Path) -> dict[str, Any]:
    """step-1 (waits for ``gate``) -> step-2, each appending its task name to ``ledger``
    and passing ``x + 1`` on, so step-2 reads an output step-1 wrote under CP1."""
    script = (f'echo "$2" >> {ledger}; if [ "$2" = step-1 ]; then '
              f'while [ ! -f {gate} ]; do sleep 0.05; done; fi; '
              'printf "%s" "$(( $0 + 1 ))" > "$1"')
    command = ["sh", "-c", script, "{{$.inputs.parameters['x']}}",
               "{{$.outputs.parameters['y'].output_file}}", "{{$.pipeline_task_name}}"]
    integer = {"parameterType": "NUMBER_INTEGER"}
    tasks = {"step-1": {"taskInfo": {"name": "step-1"}, "componentRef": {"name": "comp"},
                        "inputs": {"parameters": {"x": {"componentInputParameter": "n"}}}},
             "step-2": {"taskInfo": {"name": "step-2"}, "componentRef": {"name": "comp"},
                        "dependentTasks": ["step-1"],
                        "inputs": {"parameters": {"x": {"taskOutputParameter": {
                            "producerTask": "step-1", "outputParameterKey": "y"}}}}}}
    return {"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "chain"}, "spec": {"arguments": {"n": 10}, "pipelineSpec": {
                "pipelineInfo": {"name": "chain"}, "schemaVersion": "2.1.0",
                "components": {"comp": {
                    "executorLabel": "exec",
                    "inputDefinitions": {"parameters": {"x": integer}},
                    "outputDefinitions": {"parameters": {"y": integer}}}},
                "deploymentSpec": {"executors": {"exec": {"container": {
                    "image": "alpine:3", "command": command}}}},
                "root": {"inputDefinitions": {"parameters": {"n": integer}},
                         "outputDefinitions": {"parameters": {"Output": integer}},
                         "dag": {"tasks": tasks, "outputs": {"parameters": {"Output": {
                             "valueFromParameter": {"producerSubtask": "step-2",
                                                    "outputParameterKey": "y"}}}}}}}}}


def _isvc(model_dir: Path) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "iris"},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                             "storageUri": model_dir.as_uri()}}}}


def _units(isvc: Any) -> set[str]:
    """The unit ids of the service's front and replicas."""
    status = isvc.status
    ids = {str(status["front"]["unitId"])}
    for rev in status.get("revisions") or []:
        ids.update(str(r["unitId"]) for r in rev.get("replicas") or [])
    return ids


def _predict(url: str) -> list[Any]:
    reply = httpx.post(f"{url}/v1/models/iris:predict", json={"instances": ROWS}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["predictions"]  # type: ignore[no-any-return]


def _id_prefix(server: ServerProcess) -> str:
    """The start of the server's control-plane id (Runtime.id: host-pid-random)."""
    return f"{socket.gethostname()}-{server.proc.pid}-"


def _owner(client: Client, kind: str, name: str) -> str:
    return str(client.get(kind, name).status.get("controlPlane") or "")


def test_second_control_plane_adopts_every_kind_after_the_first_is_killed(
        tmp_path: Path, postgres_server: str) -> None:
    url = new_postgres_database(postgres_server)
    gate, ledger = tmp_path / "gate", tmp_path / "ledger"
    markers = {name: tmp_path / f"marker-{name}" for name in (*JOBS, DOOMED)}
    model = trained_iris(tmp_path / "iris")
    expected = model.predict(np.array(ROWS)).tolist()
    # Slots enough for every unit on either plane (a 2-core CI runner would queue some).
    cp1 = start_server(tmp_path / "home1", database_url=url, KETCH_CPUS="16")
    cp2 = start_server(tmp_path / "home2", database_url=url, KETCH_CPUS="16")
    first, second = _id_prefix(cp1), _id_prefix(cp2)
    try:
        with Client(cp1.url) as one, Client(cp2.url) as two:
            # CP2 is frozen while CP1 claims one of every kind, so each kind's adoption
            # is exercised whatever the race between the two would have decided.
            cp2.proc.send_signal(signal.SIGSTOP)
            try:
                one.apply(_isvc(tmp_path / "iris"))
                for name in JOBS[:2]:
                    one.apply(_job(name, markers[name], gate))
                one.apply(_job(DOOMED, markers[DOOMED], tmp_path / "never"))
                one.create(_pipeline(ledger, gate))
                claimed = [("isvc", "iris"), ("pipelinerun", "chain"),
                           *(("job", name) for name in (*JOBS[:2], DOOMED))]
                wait_for(lambda: all(_owner(one, *key).startswith(first) for key in claimed),
                         message="CP1 to claim the service, the run and two jobs")
            finally:
                cp2.proc.send_signal(signal.SIGCONT)
            # Both planes live now: this Job goes to whichever claims it first.
            one.apply(_job(JOBS[2], markers[JOBS[2]], gate))
            ready = one.wait("isvc", "iris", condition="Ready", timeout=120)
            assert _predict(ready.status["url"]) == expected
            units = _units(ready)

            def all_running() -> bool:
                jobs = [one.get("job", name).status for name in JOBS]
                tasks = one.get("pipelinerun", "chain").status.get("tasks") or {}
                return (all(s.get("phase") == "Running" for s in jobs)
                        and tasks.get("step-1", {}).get("phase") == "Running"
                        and all(m.exists() for m in markers.values()))

            wait_for(all_running, timeout=60, message="every job and step-1 running")
            assert _owner(one, "job", JOBS[2]).startswith((first, second))
            # Either plane streams a live unit's log, whichever home it runs from.
            for name in JOBS:
                assert b"".join(two.logs("job", name)) == b"running\n", name
            wait_for(markers[DOOMED].exists, message=f"{DOOMED} started")
            doomed_pid = int(markers[DOOMED].read_text().split()[1])

            cp1.kill(signal.SIGKILL)  # its units are their own process groups: they live on
            gate.write_text("")
            assert psutil.pid_exists(doomed_pid), "a unit outlives its control plane"
            two.delete("job", DOOMED)
            wait_for(lambda: DOOMED not in {j.name for j in two.list("job").items},
                     message=f"{DOOMED} deleted by CP2")
            # Deleting it stopped the process CP1 had started (from CP1's home).
            wait_for(lambda: not psutil.pid_exists(doomed_pid), timeout=10,
                     message=f"{DOOMED}'s process stopped")

            for name in JOBS:
                done = two.wait("job", name, condition="Succeeded", timeout=60)
                assert done.status["attempts"] == 1, (name, done.status)
                assert len(markers[name].read_text().splitlines()) == 1, name
                # CP2 read the log of CP1's unit from CP1's home and stored it.
                assert b"".join(two.logs("job", name)) == b"running\n", name
                assert done.status["controlPlane"].startswith(second), name

            def finished() -> Any:
                run = two.get("pipelinerun", "chain")
                return run if run.status.get("phase") in ("Succeeded", "Failed") else None

            run = wait_for(finished, timeout=60, message="the pipeline run to finish")
            assert run.status["phase"] == "Succeeded", run.status.get("message")
            assert all(t["attempts"] == 1 for t in run.status["tasks"].values())
            assert run.status["outputs"]["parameters"] == {"Output": 12}
            assert ledger.read_text().split() == ["step-1", "step-2"]
            assert run.status["controlPlane"].startswith(second)

            def served_by_two() -> Any:
                isvc = two.get("isvc", "iris")
                ready = any(c["type"] == "Ready" and c["status"] == "True"
                            for c in isvc.status.get("conditions") or [])
                return isvc if ready and isvc.status["controlPlane"].startswith(second) \
                    else None

            isvc = wait_for(served_by_two, timeout=60, message="CP2 to hold iris, Ready")
            # Adopted, not restarted: the same front and replicas, still serving.
            assert _units(isvc) == units
            assert isvc.status["url"] == ready.status["url"]
            assert _predict(isvc.status["url"]) == expected
            two.delete("isvc", "iris")
            wait_for(lambda: not two.list("isvc").items, timeout=60,
                     message="iris deleted (its front and replicas stopped)")
    finally:
        gate.write_text("")
        cp1.kill(signal.SIGKILL)
        _clean_up(cp2)
        cp2.kill(signal.SIGTERM)


def _clean_up(server: ServerProcess) -> None:
    """After a failure: units outlive their control planes by design, so delete what
    is left through the surviving one (which stops their processes)."""
    if server.proc.poll() is not None:
        return
    with contextlib.suppress(Exception), Client(server.url) as client:
        for kind in ("isvc", "job", "pipelinerun"):
            for obj in client.list(kind).items:
                client.delete(kind, obj.name)
        wait_for(lambda: not any(client.list(k).items for k in ("isvc", "job")),
                 timeout=30, message="everything deleted")
