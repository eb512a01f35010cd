"""Katib's own ``KatibClient`` (kubeflow-katib 0.19.0, over the Kubernetes Python
client) against a real ``ketch up``, pointed there by nothing but the kubeconfig
``ketch kubeconfig`` writes: ``create_experiment`` with the SDK's ``V1beta1Experiment``
models (random search on Branin, 6 trials, 2 at a time), ``wait_for_experiment_condition``
for Created and then Succeeded, ``get_optimal_hyperparameters``, ``list_trials``,
``get_success_trial_details``, ``get_trial``, ``get_suggestion``, the condition checks;
then ``delete_experiment`` and the Trials gone. What the SDK reads must be what ketch's
own client reads, and each trial's metric must be Branin at that trial's parameters.

kubeflow-katib pins ``protobuf<5`` and ``kubeflow-training==1.9.0``, so the SDK runs in
its own cached venv (the Kubernetes client pinned to 35.0.0, as for KServe's, see
``kserve_crd_python``) as a subprocess running :data:`DRIVER`, which prints one JSON
object as its last line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _tuning import BRANIN as BRANIN_SCRIPT
from _tuning import branin, job_spec

from _venvs import cached_venv
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

KATIB_VERSION = "0.19.0"
KATIB_KUBERNETES = "35.0.0"
NAME, NAMESPACE = "branin-sdk", "default"
MAX_TRIALS, PARALLEL = 6, 2
# Katib's plurals with their group: ketch's pipelines have an Experiment kind too.
EXPERIMENTS, TRIALS, SUGGESTIONS = ("experiments.kubeflow.org", "trials.kubeflow.org",
                                    "suggestions.kubeflow.org")

# Run in the katib venv: ``python -c DRIVER PHASE KUBECONFIG NAMESPACE NAME [...]``.
# ``run`` creates the Experiment and reads it back through the SDK; ``delete`` deletes
# it and waits (deadline, not a fixed sleep) until the SDK lists no Trials of it.
DRIVER = r'''
import contextlib, json, sys, time

from kubeflow.katib import KatibClient, models
from kubernetes import client

phase, config, ns, name = sys.argv[1:5]
out = {}


def err(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the SDK wraps everything in RuntimeError
        return f"{type(e).__name__}: {e}"
    return None


def assignments(items):
    return {a.name: a.value for a in items or []}


def metrics(observation):
    return [{"name": m.name, "min": m.min, "max": m.max, "latest": m.latest}
            for m in (observation.metrics if observation else None) or []]


def conditions(items):
    return {c.type: c.status for c in items or []}


# wait_for_experiment_condition prints progress on stdout: keep stdout for the JSON.
with contextlib.redirect_stdout(sys.stderr):
    kc = KatibClient(config_file=config, namespace=ns)
    if phase == "run":
        trial_spec, max_trials, parallel = json.loads(sys.argv[5]), *map(int, sys.argv[6:8])
        experiment = models.V1beta1Experiment(
            api_version="kubeflow.org/v1beta1", kind="Experiment",
            metadata=client.V1ObjectMeta(name=name, namespace=ns),
            spec=models.V1beta1ExperimentSpec(
                objective=models.V1beta1ObjectiveSpec(type="minimize",
                                                      objective_metric_name="loss"),
                algorithm=models.V1beta1AlgorithmSpec(
                    algorithm_name="random", algorithm_settings=[
                        models.V1beta1AlgorithmSetting(name="random_state", value="11")]),
                parallel_trial_count=parallel, max_trial_count=max_trials,
                max_failed_trial_count=0,
                parameters=[
                    models.V1beta1ParameterSpec(
                        name="x1", parameter_type="double",
                        feasible_space=models.V1beta1FeasibleSpace(min="-5", max="10")),
                    models.V1beta1ParameterSpec(
                        name="x2", parameter_type="double",
                        feasible_space=models.V1beta1FeasibleSpace(min="0", max="15"))],
                trial_template=models.V1beta1TrialTemplate(
                    primary_container_name="training-container",
                    trial_parameters=[
                        models.V1beta1TrialParameterSpec(name="x1", reference="x1"),
                        models.V1beta1TrialParameterSpec(name="x2", reference="x2")],
                    trial_spec=trial_spec)))
        kc.create_experiment(experiment, namespace=ns)
        out["duplicate"] = err(lambda: kc.create_experiment(experiment, namespace=ns))
        created = kc.wait_for_experiment_condition(
            name, ns, expected_condition="Created", timeout=60, polling_interval=1)
        out["created_uid"] = bool(created.metadata.uid)
        done = kc.wait_for_experiment_condition(
            name, ns, expected_condition="Succeeded", timeout=300, polling_interval=1)
        s = done.status
        out["status"] = {"trials": s.trials, "succeeded": s.trials_succeeded,
                         "failed": s.trials_failed, "running": s.trials_running,
                         "succeeded_list": s.succeeded_trial_list,
                         "start": bool(s.start_time), "completion": bool(s.completion_time)}
        out["is_created"] = kc.is_experiment_created(name, ns)
        out["is_running"] = kc.is_experiment_running(name, ns)
        out["is_succeeded"] = kc.is_experiment_succeeded(name, ns)
        out["is_failed"] = kc.is_experiment_failed(name, ns)
        out["conditions"] = conditions(kc.get_experiment_conditions(name, ns))
        out["succeeded_reason"] = next(c.reason for c in done.status.conditions
                                       if c.type == "Succeeded")
        best = kc.get_optimal_hyperparameters(name, ns)
        out["optimal"] = {"name": best.best_trial_name,
                          "params": assignments(best.parameter_assignments),
                          "metrics": metrics(best.observation)}
        out["trials"] = sorted(
            ({"name": t.metadata.name, "labels": t.metadata.labels,
              "owner": [r.name for r in t.metadata.owner_references or []],
              "params": assignments(t.spec.parameter_assignments),
              "objective": t.spec.objective.objective_metric_name,
              "conditions": conditions(t.status.conditions),
              "metrics": metrics(t.status.observation)}
             for t in kc.list_trials(name, ns)), key=lambda t: t["name"])
        out["all_trials"] = len(kc.list_trials(namespace=ns))
        out["success_details"] = sorted(
            ({"name": d["name"], "params": assignments(d["parameter_assignments"]),
              "metrics": [{"name": m.name, "min": m.min} for m in d["metrics"]]}
             for d in kc.get_success_trial_details(name, ns)), key=lambda d: d["name"])
        trial = kc.get_trial(best.best_trial_name, ns)
        out["best_trial"] = {"name": trial.metadata.name,
                             "params": assignments(trial.spec.parameter_assignments)}
        out["best_log"] = "".join(kc.get_job_logs(name, best.best_trial_name, namespace=ns))
        out["experiments"] = [e.metadata.name for e in kc.list_experiments(ns)]
        suggestion = kc.get_suggestion(name, ns)
        out["suggestion"] = {"name": suggestion.metadata.name,
                             "algorithm": suggestion.spec.algorithm.algorithm_name}
        out["missing"] = err(lambda: kc.get_experiment("no-such-experiment", ns))
    else:
        kc.delete_experiment(name, ns)
        deadline, polls = time.monotonic() + 120, 0
        while kc.list_trials(name, ns) or not err(lambda: kc.get_experiment(name, ns)):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: its Trials are still listed after 120s")
            polls += 1
            time.sleep(0.2)
        out["trials_after"] = [t.metadata.name for t in kc.list_trials(name, ns)]
        out["get_after"] = err(lambda: kc.get_experiment(name, ns))
        out["experiments_after"] = [e.metadata.name for e in kc.list_experiments(ns)]
print(json.dumps(out))
'''


def katib_python() -> Path:
    """A kubeflow-katib venv with the Kubernetes client pinned to ``KATIB_KUBERNETES``
    (kubeflow-katib asks ``kubernetes>=27.2.0``; 36+ validates ``body`` with pydantic
    and does not serialize the SDK's own models)."""
    return cached_venv("kubeflow-katib", KATIB_VERSION, "from kubeflow.katib import KatibClient",
                       pins=(f"kubernetes=={KATIB_KUBERNETES}",))


def katib(phase: str, config: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([str(katib_python()), "-c", DRIVER, phase, str(config), NAMESPACE,
                           NAME, *args], capture_output=True, text=True, timeout=420,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def write_kubeconfig(server: ServerProcess, path: Path) -> Path:
    """What a user runs: ``ketch kubeconfig -o PATH`` for this server."""
    done = subprocess.run([sys.executable, "-m", "ketch.cli", "kubeconfig", "-o", str(path),
                           "-n", NAMESPACE], env=server.env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return path


def as_params(assignments: list[dict[str, Any]]) -> dict[str, str]:
    return {a["name"]: a["value"] for a in assignments}


def test_katib_client_runs_an_experiment(ketch_server: ServerProcess, tmp_path: Path) -> None:
    config = write_kubeconfig(ketch_server, tmp_path / "kubeconfig")
    trial_spec = job_spec(BRANIN_SCRIPT, ["${trialParameters.x1}", "${trialParameters.x2}"])
    out = katib("run", config, json.dumps(trial_spec), str(MAX_TRIALS), str(PARALLEL))

    assert out["duplicate"] == (f"Exception: A Katib Experiment with the name "
                                f"{NAMESPACE}/{NAME} already exists."), out["duplicate"]
    assert out["created_uid"] is True
    assert out["is_succeeded"] is True and out["is_failed"] is False
    assert out["is_created"] is True and out["is_running"] is False
    assert out["conditions"]["Succeeded"] == "True", out["conditions"]
    assert out["conditions"]["Created"] == "True" and out["conditions"]["Running"] == "False"
    assert out["succeeded_reason"] == "ExperimentMaxTrialsReached"
    assert out["status"]["trials"] == out["status"]["succeeded"] == MAX_TRIALS, out["status"]
    assert out["status"]["failed"] == out["status"]["running"] == 0
    assert out["status"]["start"] and out["status"]["completion"]

    # ketch's own view of the same objects.
    with Client(ketch_server.url) as ketch:
        exp = ketch.get(EXPERIMENTS, NAME)
        ours = exp.status["currentOptimalTrial"]
        ketch_trials = {t.name: t for t in ketch.list(
            TRIALS, label_selector=f"katib.kubeflow.org/experiment={NAME}").items}

    # The optimum the SDK returns is ketch's, and the lowest loss of all trials.
    optimal = out["optimal"]
    assert optimal["name"] == ours["bestTrialName"]
    assert optimal["params"] == as_params(ours["parameterAssignments"])
    assert optimal["metrics"] == ours["observation"]["metrics"]
    assert out["best_trial"] == {"name": optimal["name"], "params": optimal["params"]}
    # get_job_logs reads the trial pod's collector container: the line the trial printed.
    best_loss = next(m["min"] for m in optimal["metrics"] if m["name"] == "loss")
    assert out["best_log"].strip() == f"loss={best_loss}"

    trials = out["trials"]
    assert [t["name"] for t in trials] == sorted(ketch_trials) == sorted(
        out["status"]["succeeded_list"])
    assert len(trials) == out["all_trials"] == MAX_TRIALS
    losses = {}
    for t in trials:
        assert t["labels"]["katib.kubeflow.org/experiment"] == NAME
        assert t["labels"]["katib.kubeflow.org/trial"] == t["name"]
        assert t["owner"] == [NAME]
        assert t["objective"] == "loss"
        assert t["conditions"]["Succeeded"] == "True", t
        assert t["params"] == as_params(ketch_trials[t["name"]].spec["parameterAssignments"])
        x1, x2 = float(t["params"]["x1"]), float(t["params"]["x2"])
        assert -5 <= x1 <= 10 and 0 <= x2 <= 15, t["params"]
        [loss] = t["metrics"]
        assert loss["name"] == "loss"
        assert float(loss["min"]) == pytest.approx(branin(x1, x2), rel=1e-12), t
        losses[t["name"]] = float(loss["min"])
    assert len({tuple(t["params"].values()) for t in trials}) == MAX_TRIALS  # all distinct
    assert optimal["name"] == min(losses, key=losses.__getitem__)
    assert float(optimal["metrics"][0]["min"]) == min(losses.values())
    assert out["success_details"] == [
        {"name": t["name"], "params": t["params"],
         "metrics": [{"name": "loss", "min": t["metrics"][0]["min"]}]} for t in trials]

    assert out["experiments"] == [NAME]
    assert out["suggestion"] == {"name": NAME, "algorithm": "random"}
    assert out["missing"] == (f"RuntimeError: Failed to get Katib Experiment: "
                              f"{NAMESPACE}/no-such-experiment")

    gone = katib("delete", config)
    assert gone["trials_after"] == [] and gone["experiments_after"] == []
    assert gone["get_after"] == f"RuntimeError: Failed to get Katib Experiment: {NAMESPACE}/{NAME}"
    with Client(ketch_server.url) as ketch:
        wait_for(lambda: not ketch.list(TRIALS).items and not ketch.list(SUGGESTIONS).items,
                 timeout=60, message="the trials and the suggestion deleted")
        assert not ketch.list(EXPERIMENTS).items
