"""Every Katib algorithm name on Branin (optimum 0.397887), through ketch's Experiment
controller and real trial processes, against Optuna's own loop with the same sampler,
seed and budget run in the same test.

With one trial at a time, ketch asks and tells the study in the order Optuna's
``optimize`` does, so the sampler sees the same history: the best found must match
Optuna's (to the printed precision of the metric), and must be near the optimum
where the budget lets Optuna get there.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _tuning import BRANIN_OPTIMUM, condition_true, ended, experiment, optuna_best, wait_until

from ketch.core.config import Settings
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.tuning._kinds import EXPERIMENT, TRIAL
from ketch.tuning.component import component

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings.from_env({"KETCH_HOME": str(tmp_path / "home"),
                                  "KETCH_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
                                  "KETCH_CPUS": "4"})
    rt = Runtime(settings, [component])
    rt.start()
    yield rt
    rt.stop()


def _samplers() -> dict[str, tuple[dict[str, Any], int, Any]]:
    import optuna

    s = optuna.samplers
    return {
        "random": ({"random_state": 3}, 30, lambda: s.RandomSampler(seed=3)),
        "tpe": ({"random_state": 3, "n_startup_trials": 8}, 30,
                lambda: s.TPESampler(seed=3, n_startup_trials=8, multivariate=False)),
        "multivariate-tpe": ({"random_state": 3, "n_startup_trials": 8}, 30,
                             lambda: s.TPESampler(seed=3, n_startup_trials=8, multivariate=True)),
        "cmaes": ({"random_state": 3, "sigma": 3}, 30,
                  lambda: s.CmaEsSampler(seed=3, sigma0=3)),
        "bayesianoptimization": ({"random_state": 3, "n_initial_points": 5}, 15,
                                 lambda: s.GPSampler(seed=3, n_startup_trials=5)),
        "sobol": ({"random_state": 3}, 16,
                  lambda: s.QMCSampler(qmc_type="sobol", seed=3, scramble=True)),
    }


@pytest.mark.parametrize("algorithm", list(_samplers()))
def test_each_algorithm_finds_what_optuna_finds_on_branin(runtime: Runtime,
                                                          algorithm: str) -> None:
    settings, budget, make = _samplers()[algorithm]
    ResourceService(runtime).create(EXPERIMENT, experiment(
        "branin", algorithm=algorithm, settings=settings, max_trials=budget))
    done = wait_until(runtime, EXPERIMENT, "branin", ended, timeout=240)
    assert condition_true("Succeeded")(done), done.status
    status = done.status
    assert status["trials"] == status["trialsSucceeded"] == budget
    best = status["currentOptimalTrial"]
    ours = float(best["observation"]["metrics"][0]["min"])
    with warnings.catch_warnings():  # Optuna's own: QMC "experimental", CMA's sigma0
        warnings.simplefilter("ignore")
        reference_sampler = make()
    reference = optuna_best(reference_sampler, budget)
    assert ours == pytest.approx(reference, rel=1e-9, abs=1e-9), (ours, reference)
    assert ours >= BRANIN_OPTIMUM - 1e-6
    # The best trial's assignments are what its process printed the loss of.
    trial = runtime.store.get(TRIAL, "default", best["bestTrialName"])
    assert trial.spec["parameterAssignments"] == best["parameterAssignments"]


def test_grid_runs_every_point_once_and_ends_when_the_grid_does(runtime: Runtime) -> None:
    params = [
        {"name": "x1", "parameterType": "double",
         "feasibleSpace": {"min": "-5", "max": "10", "step": "2.5"}},  # 7 values
        {"name": "x2", "parameterType": "discrete", "feasibleSpace": {"list": ["2", "8", "14"]}},
    ]
    ResourceService(runtime).create(EXPERIMENT, experiment(
        "grid", algorithm="grid", parameters=params, max_trials=100, parallel=3))
    done = wait_until(runtime, EXPERIMENT, "grid", ended, timeout=240)
    assert condition_true("Succeeded")(done), done.status
    reason = next(c["reason"] for c in done.status["conditions"] if c["type"] == "Succeeded")
    assert reason == "ExperimentSuggestionEndReached"
    trials = runtime.store.list(TRIAL, "default").items
    points = {tuple(a["value"] for a in t.spec["parameterAssignments"]) for t in trials}
    assert len(trials) == len(points) == 21
    assert {p[0] for p in points} == {"-5.0", "-2.5", "0.0", "2.5", "5.0", "7.5", "10.0"}
