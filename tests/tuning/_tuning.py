"""Experiments for the tuning tests: Katib's YAML around a trial that is a Python
one-liner, and Optuna run directly on the same function as the reference."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

from ketch.core.resources import Resource
from ketch.core.runtime import Runtime

BRANIN_OPTIMUM = 0.397887

# Branin on (x1, x2) from argv; prints Katib's default metric format.
BRANIN = (
    "import math, sys\n"
    "x1, x2 = float(sys.argv[1]), float(sys.argv[2])\n"
    "b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)\n"
    "print(f'loss={(x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10!r}')\n"
)


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


def job_spec(script: str, args: list[str], **container: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
        "containers": [{"name": "training-container", "image": "python:3.12",
                        "command": [sys.executable, "-c", script, *args], **container}],
        "restartPolicy": "Never"}}}}


def experiment(name: str, *, algorithm: str = "random", settings: dict[str, Any] | None = None,
               parameters: list[dict[str, Any]] | None = None, script: str = BRANIN,
               args: list[str] | None = None, max_trials: int = 10, parallel: int = 1,
               **spec: Any) -> dict[str, Any]:
    params = parameters if parameters is not None else [
        {"name": "x1", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "10"}},
        {"name": "x2", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "15"}}]
    names = [p["name"] for p in params]
    body: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": algorithm, "algorithmSettings": [
            {"name": k, "value": str(v)} for k, v in (settings or {}).items()]},
        "parallelTrialCount": parallel, "maxTrialCount": max_trials,
        "parameters": params,
        "trialTemplate": {
            "trialParameters": [{"name": n, "reference": n} for n in names],
            "trialSpec": job_spec(script, args if args is not None else
                                  [f"${{trialParameters.{n}}}" for n in names])},
    }
    body.update(spec)
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": name}, "spec": body}


def wait_until(rt: Runtime, kind: Any, name: str, until: Callable[[Resource], bool],
               timeout: float = 120.0) -> Resource:
    deadline = time.monotonic() + timeout
    while True:
        obj = rt.store.get(kind, "default", name)
        if until(obj):
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never reached the state; last status: {obj.status}")
        time.sleep(0.05)


def condition_true(type_: str) -> Callable[[Resource], bool]:
    return lambda obj: any(c.get("type") == type_ and c.get("status") == "True"
                           for c in obj.status.get("conditions") or [])


def ended(obj: Resource) -> bool:
    return condition_true("Succeeded")(obj) or condition_true("Failed")(obj)


def optuna_best(sampler: Any, budget: int, space: Callable[[Any], tuple[float, float]]
                = lambda t: (t.suggest_float("x1", -5, 10), t.suggest_float("x2", 0, 15))
                ) -> float:
    """Optuna's own loop on Branin with ``sampler``: the reference ketch must match."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(lambda t: branin(*space(t)), n_trials=budget)
    return float(study.best_value)
