"""kill -9 of the control plane in the middle of an Experiment: the next one resumes
the same study from the database, keeps every finished trial as it was, adopts the
trials still running, and runs no trial twice."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from _tuning import experiment

from conftest import new_postgres_database, start_server, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EXP = "experiments.kubeflow.org"
TRIALS = "trials.kubeflow.org"
SELECTOR = "katib.kubeflow.org/experiment=resume"

# Each run of a trial leaves a line (its name) in the ledger, then takes a while.
SCRIPT = (
    "import os, sys, time\n"
    "with open({ledger!r}, 'a') as f:\n"
    "    f.write(os.environ['KATIB_TRIAL_NAME'] + '\\n')\n"
    "time.sleep(0.4)\n"
    "x1, x2 = float(sys.argv[1]), float(sys.argv[2])\n"
    "print(f'loss={{(x1 - 1) ** 2 + (x2 - 2) ** 2!r}}')\n"
)


def _finished(client: Client) -> dict[str, dict[str, Any]]:
    return {t.name: {"params": t.spec["parameterAssignments"],
                     "metrics": (t.status.get("observation") or {}).get("metrics")}
            for t in client.list(TRIALS, label_selector=SELECTOR).items
            if any(c["type"] == "Succeeded" and c["status"] == "True"
                   for c in t.status.get("conditions") or [])}


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_killed_control_plane_is_resumed_with_the_same_study_and_no_trial_twice(
        database: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (new_postgres_database(request.getfixturevalue("postgres_server"))
           if database == "postgres" else None)
    ledger = tmp_path / "ran.log"
    body = experiment("resume", algorithm="tpe", settings={"random_state": 2,
                                                           "n_startup_trials": 4},
                      script=SCRIPT.format(ledger=str(ledger)), max_trials=12, parallel=2)
    home = tmp_path / "home"
    server = start_server(home, database_url=url)
    try:
        with Client(server.url) as client:
            client.apply(body)
            before = wait_for(lambda: (found := _finished(client)) and len(found) >= 4
                              and found, timeout=120, message="four finished trials")
        server.kill(signal.SIGKILL)
        server = start_server(home, database_url=url)
        with Client(server.url) as client:
            done = client.wait(EXP, "resume", condition="Succeeded", timeout=180)
            after = _finished(client)
            trials = client.list(TRIALS, label_selector=SELECTOR).items
            logs = {t.name: b"".join(client.logs(TRIALS, t.name)).decode()[-600:]
                    for t in trials if t.name not in after}
    finally:
        server.kill(signal.SIGTERM)
    assert done.status["trials"] == done.status["trialsSucceeded"] == 12, logs
    for name, kept in before.items():  # what finished before the kill is as it was
        assert after[name] == kept
    ran = ledger.read_text().split()
    assert sorted(ran) == sorted(t.name for t in trials), "every trial ran exactly once"
    numbers = sorted(int(t.metadata.annotations["ketch.dev/study-trial"]) for t in trials)
    assert numbers == list(range(12)), "one study, numbered on across the restart"
    points = {tuple(a["value"] for a in t.spec["parameterAssignments"]) for t in trials}
    assert len(points) == 12, "the resumed sampler did not hand out a point again"
