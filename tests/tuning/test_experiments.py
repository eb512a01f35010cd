"""Experiments end to end in-process (real store, real local executor, real trial
processes): what Katib users rely on besides the search itself: bad specs refused at
apply with the field's path, failed trials counted until the Experiment fails, a
trial that never reports its metric failing with the metric's name, the goal ending
an Experiment early, Push metrics, and deletion that stops every trial process."""

from __future__ import annotations

import copy
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from _tuning import condition_true, ended, experiment, wait_until

from ketch.core.config import Settings
from ketch.core.errors import InvalidError, NotFoundError
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.tuning._kinds import EXPERIMENT, SUGGESTION, TRIAL
from ketch.tuning.component import component

pytestmark = pytest.mark.timeout(180)


def _runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    settings = Settings.from_env({"KETCH_HOME": str(tmp_path / "home"),
                                  "KETCH_DATABASE_URL": database_url, "KETCH_CPUS": "4"})
    rt = Runtime(settings, [component])
    rt.start()
    yield rt
    rt.stop()


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    """On SQLite and on PostgreSQL: the study's journal is in that database."""
    yield from _runtime(tmp_path, database_url)


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    yield from _runtime(tmp_path, f"sqlite:///{tmp_path / 'k.db'}")


def create(rt: Runtime, body: dict[str, Any]) -> None:
    ResourceService(rt).create(EXPERIMENT, body)


def reason(obj: Any, type_: str) -> str:
    return str(next(c["reason"] for c in obj.status["conditions"] if c["type"] == type_))


def refused(rt: Runtime, body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidError) as info:
        ResourceService(rt).create(EXPERIMENT, body)
    return {f.path: f.message for f in info.value.fields}


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(body)
    node = doc["spec"]
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return doc


def test_bad_specs_are_refused_at_apply_with_the_field_path(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    good = experiment("bad")
    cases = {
        "spec.algorithm.algorithmName": _with(good, "algorithm.algorithmName", "annealing"),
        "spec.algorithm.algorithmSettings[0].name": _with(
            good, "algorithm.algorithmSettings", [{"name": "n_startup", "value": "3"}]),
        "spec.parameters[0].feasibleSpace": _with(
            good, "parameters.0.feasibleSpace", {"min": "5", "max": "1"}),
        "spec.parameters[1].feasibleSpace.max": _with(
            good, "parameters.1.feasibleSpace", {"min": "0"}),
        "spec.parameters[0].feasibleSpace.step": _with(good, "algorithm.algorithmName", "grid"),
        "spec.trialTemplate.trialSpec": _with(
            good, "trialTemplate.trialParameters", [{"name": "x1", "reference": "x1"}]),
        "spec.trialTemplate.trialParameters[1].reference": _with(
            good, "trialTemplate.trialParameters.1.reference", "learning_rate"),
        "spec.earlyStopping.algorithmName": _with(
            good, "earlyStopping", {"algorithmName": "sometimes"}),
        "spec.metricsCollectorSpec.collector.kind": _with(
            good, "metricsCollectorSpec", {"collector": {"kind": "TensorFlowEvent"}}),
    }
    for path, body in cases.items():
        fields = refused(runtime, body)
        assert path in fields, (path, fields)
    unknown = refused(runtime, cases["spec.algorithm.algorithmName"])
    assert "tpe" in unknown["spec.algorithm.algorithmName"]  # the valid ones are listed
    assert "${trialParameters.x2}" in refused(
        runtime, cases["spec.trialTemplate.trialSpec"])["spec.trialTemplate.trialSpec"]
    assert not runtime.store.list(EXPERIMENT, "default").items, "nothing was stored"


def test_a_trial_that_never_reports_its_metric_fails_naming_it_and_failures_end_the_run(
        runtime: Runtime) -> None:
    create(runtime, experiment("silent", script="print('accuracy=0.9')", args=[],
                               max_trials=10, parallel=2, maxFailedTrialCount=2))
    done = wait_until(runtime, EXPERIMENT, "silent", ended)
    assert condition_true("Failed")(done), done.status
    assert reason(done, "Failed") == "ExperimentFailed"
    trials = runtime.store.list(TRIAL, "default").items
    unavailable = [t for t in trials if condition_true("MetricsUnavailable")(t)]
    assert len(unavailable) >= 3
    message = next(c["message"] for c in unavailable[0].status["conditions"]
                   if c["type"] == "MetricsUnavailable")
    assert "'loss'" in message
    assert done.status["trialMetricsUnavailable"] == len(unavailable)


def test_a_failing_trial_is_failed_with_its_exit_and_counted(runtime: Runtime) -> None:
    create(runtime, experiment("crash", script="import sys; sys.exit(3)", args=[],
                               max_trials=4, parallel=1, maxFailedTrialCount=0))
    done = wait_until(runtime, EXPERIMENT, "crash", ended)
    assert reason(done, "Failed") == "ExperimentFailed"
    assert done.status["trialsFailed"] == 1 and done.status["trials"] == 1
    trial = runtime.store.get(TRIAL, "default", done.status["failedTrialList"][0])
    assert "exit" in next(c["message"] for c in trial.status["conditions"]
                          if c["type"] == "Failed").lower()


def test_the_goal_ends_the_experiment_and_pushed_metrics_count(runtime: Runtime) -> None:
    script = ("import sys\nfrom ketch.tuning import report_metrics\n"
              "x = float(sys.argv[1])\n"
              "for step in range(3):\n"
              "    report_metrics({'loss': (x - 2) ** 2 + 1 - step * 0.1}, step=step)\n")
    params = [{"name": "x", "parameterType": "double",
               "feasibleSpace": {"min": "0", "max": "4"}}]
    body = experiment("push", parameters=params, script=script, max_trials=200, parallel=2,
                      metricsCollectorSpec={"collector": {"kind": "Push"}},
                      settings={"random_state": 5})
    body["spec"]["objective"]["goal"] = 1.05
    create(runtime, body)
    done = wait_until(runtime, EXPERIMENT, "push", ended)
    assert reason(done, "Succeeded") == "ExperimentGoalReached"
    best = done.status["currentOptimalTrial"]
    metric = best["observation"]["metrics"][0]
    assert float(metric["min"]) <= 1.05
    # min, max and latest over the three pushed steps: latest is the smallest here.
    assert metric["latest"] == metric["min"] and float(metric["max"]) > float(metric["min"])
    assert done.status["trials"] < 200


def test_the_suggestion_records_what_the_study_handed_out(runtime: Runtime) -> None:
    create(runtime, experiment("sugg", max_trials=4, parallel=2))
    wait_until(runtime, EXPERIMENT, "sugg", ended)
    suggestion = runtime.store.get(SUGGESTION, "default", "sugg")
    assert suggestion.spec["algorithm"]["algorithmName"] == "random"
    assert suggestion.status["suggestionCount"] == 4
    names = {s["name"] for s in suggestion.status["suggestions"]}
    assert names == {t.name for t in runtime.store.list(TRIAL, "default").items}


def test_deleting_an_experiment_stops_its_trials_and_leaves_no_process(
        runtime: Runtime, tmp_path: Path) -> None:
    marker = f"ketch-tuning-sleeper-{uuid.uuid4().hex}"
    script = f"import time  # {marker}\ntime.sleep(600)\n"
    create(runtime, experiment("sleepy", script=script, args=[], max_trials=4, parallel=2))

    def running() -> list[psutil.Process]:
        # The trial's python itself (the executor's sh wrapper names the script too).
        return [p for p in psutil.process_iter(["cmdline"])
                if (p.info["cmdline"] or [""])[0] == sys.executable
                and any(marker in part for part in p.info["cmdline"])]

    wait_until(runtime, EXPERIMENT, "sleepy",
               lambda obj: obj.status.get("trialsRunning") == 2 and len(running()) == 2)
    ResourceService(runtime).delete(EXPERIMENT, "default", "sleepy")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            runtime.store.get(EXPERIMENT, "default", "sleepy")
        except NotFoundError:
            if not runtime.store.list(TRIAL, "default").items and not running():
                break
        time.sleep(0.05)
    assert not running(), "a trial process outlived its Experiment"
    assert not runtime.store.list(TRIAL, "default").items
    with pytest.raises(NotFoundError):
        runtime.store.get(SUGGESTION, "default", "sleepy")


def test_median_stop_stops_trials_worse_than_the_median_and_tells_the_study(
        runtime: Runtime) -> None:
    # Ten reports a trial, 0.15 s apart: a bad x is far above the median by report 2.
    script = ("import sys, time\nx = float(sys.argv[1])\n"
              "for step in range(10):\n"
              "    print(f'loss={(x - 2) ** 2 + 1 / (step + 1)!r}', flush=True)\n"
              "    time.sleep(0.15)\n")
    params = [{"name": "x", "parameterType": "double",
               "feasibleSpace": {"min": "-10", "max": "10"}}]
    create(runtime, experiment(
        "median", parameters=params, script=script, max_trials=10, parallel=1,
        settings={"random_state": 4},
        earlyStopping={"algorithmName": "medianstop", "algorithmSettings": [
            {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}]}))
    done = wait_until(runtime, EXPERIMENT, "median", ended)
    assert condition_true("Succeeded")(done), done.status
    stopped = [t for t in runtime.store.list(TRIAL, "default").items
               if condition_true("EarlyStopped")(t)]
    assert stopped and done.status["trialsEarlyStopped"] == len(stopped)
    assert done.status["trials"] == 10 and done.status["trialsFailed"] == 0
    for trial in stopped:
        rule = trial.spec["earlyStoppingRules"][0]
        assert rule["comparison"] == "greater" and rule["startStep"] == 2
        latest = float(trial.status["observation"]["metrics"][0]["latest"])
        assert latest > float(rule["value"])  # stopped for being worse than the median
        message = next(c["message"] for c in trial.status["conditions"]
                       if c["type"] == "EarlyStopped")
        assert "median" in message
        assert reason(trial, "EarlyStopped") == "TrialEarlyStopped"


@pytest.mark.parametrize("fmt", ["TEXT", "JSON"])
def test_the_file_collector_reads_what_the_trial_wrote_at_katibs_path(
        sqlite_runtime: Runtime, fmt: str) -> None:
    """The trial writes Katib's default path, /var/log/katib/metrics.log, which it
    could not on this machine: the path is the trial's own, and nothing else it
    prints is taken for a metric."""
    line = ("f'loss={(x - 1) ** 2!r}'" if fmt == "TEXT" else
            "json.dumps({'loss': str((x - 1) ** 2), 'timestamp': 'now'})")
    script = ("import json, sys\nx = float(sys.argv[1])\nprint('loss=1000')\n"
              "with open('/var/log/katib/metrics.log', 'w') as f:\n"
              f"    f.write({line} + '\\n')\n")
    params = [{"name": "x", "parameterType": "double",
               "feasibleSpace": {"min": "0", "max": "2"}}]
    create(sqlite_runtime, experiment(
        "files", parameters=params, script=script, max_trials=3, parallel=3,
        metricsCollectorSpec={"collector": {"kind": "File"}, "source": {
            "fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File",
                               "format": fmt}}}))
    done = wait_until(sqlite_runtime, EXPERIMENT, "files", ended)
    assert condition_true("Succeeded")(done), done.status
    for trial in sqlite_runtime.store.list(TRIAL, "default").items:
        x = float(trial.spec["parameterAssignments"][0]["value"])
        metric = trial.status["observation"]["metrics"][0]
        assert float(metric["latest"]) == pytest.approx((x - 1) ** 2)
    assert not Path("/var/log/katib/metrics.log").exists()


def test_raising_the_budget_of_a_finished_experiment_resumes_its_study(
        runtime: Runtime) -> None:
    service = ResourceService(runtime)
    create(runtime, experiment("more", max_trials=3, parallel=1, resumePolicy="LongRunning",
                               settings={"random_state": 8}))
    first = wait_until(runtime, EXPERIMENT, "more", ended)
    assert reason(first, "Succeeded") == "ExperimentMaxTrialsReached"
    # As KatibClient.edit_experiment_budget sends it: a merge patch.
    service.patch(EXPERIMENT, "default", "more", {"spec": {"maxTrialCount": 5}})
    done = wait_until(runtime, EXPERIMENT, "more",
                      lambda o: ended(o) and o.status["trials"] == 5)
    assert reason(done, "Succeeded") == "ExperimentMaxTrialsReached"
    assert reason(done, "Restarting") == "ExperimentRunning"  # it restarted, then ran
    points = {tuple(a["value"] for a in t.spec["parameterAssignments"])
              for t in runtime.store.list(TRIAL, "default").items}
    assert len(points) == 5


def test_a_finished_experiment_with_resume_policy_never_refuses_a_new_budget(
        sqlite_runtime: Runtime) -> None:
    create(sqlite_runtime, experiment("final", max_trials=1))
    done = wait_until(sqlite_runtime, EXPERIMENT, "final", ended)
    service = ResourceService(sqlite_runtime)
    with pytest.raises(InvalidError) as info:
        service.patch(EXPERIMENT, "default", "final", {"spec": {"maxTrialCount": 4}})
    assert info.value.fields[0].path == "spec.maxTrialCount"
    params = done.spec["parameters"]
    params[0]["feasibleSpace"]["max"] = "20"
    with pytest.raises(InvalidError) as changed:
        service.patch(EXPERIMENT, "default", "final", {"spec": {"parameters": params}})
    assert changed.value.fields[0].path == "spec.parameters"
