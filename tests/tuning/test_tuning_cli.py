"""The tuning faces of the ``ketch`` CLI on the shipped example (examples/tuning):
apply Katib's YAML, wait, list experiments and trials by Katib's label, describe
the best trial and the counts, read a trial's log. Real server, real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tuning" / "branin.yaml"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def ketch(server: ServerProcess, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=200, check=False)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def test_the_branin_example_through_the_cli(ketch_server: ServerProcess) -> None:
    assert ketch(ketch_server, "apply", "-f", str(EXAMPLE)).strip() == \
        "experiment.kubeflow.org/branin created"
    ketch(ketch_server, "wait", "experiment", "branin", "--for=condition=Succeeded",
          "--timeout", "180s")
    header, row = ketch(ketch_server, "get", "experiments").splitlines()
    assert header.split()[:5] == ["NAME", "TYPE", "STATUS", "TRIALS", "SUCCEEDED"]
    assert row.split()[:3] == ["branin", "Succeeded", "True"]
    trials = ketch(ketch_server, "get", "trials", "-l",
                   "katib.kubeflow.org/experiment=branin", "-o", "name").split()
    assert trials and all(t.startswith("trial.kubeflow.org/branin-") for t in trials)
    described = ketch(ketch_server, "describe", "experiment", "branin")
    assert "Best trial" in described and "parameter x1" in described
    assert "metric loss" in described and "Succeeded" in described
    best = next(line.split()[-1] for line in described.splitlines()
                if line.strip().startswith("trial "))
    log = ketch(ketch_server, "logs", "trial", best)
    assert log.startswith("loss=")
    # The best trial's log holds the value the experiment calls best.
    best_min = next(line.split("min ")[1].split(",")[0] for line in described.splitlines()
                    if "metric loss" in line)
    assert log.strip() == f"loss={best_min}"
