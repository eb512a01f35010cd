"""``client.tuning``, KatibClient's calls through ketch's own client, against a real
server: ``tune`` of a function (its source runs as each trial), the waits and reads,
the budget edit that resumes a finished study, and deletion."""

from __future__ import annotations

import pytest

from conftest import ServerProcess, wait_for
from ketch import Client
from ketch.core.errors import InvalidError
from ketch.tuning import search

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def quadratic(parameters: dict[str, object]) -> None:
    from ketch.tuning import report_metrics

    x, kind = float(parameters["x"]), str(parameters["kind"])  # type: ignore[arg-type]
    for step in range(3):
        report_metrics({"loss": (x - 1) ** 2 + step + (0.5 if kind == "b" else 0.0),
                        "x": x}, step=step)


def test_tune_a_function_and_read_it_back(ketch_server: ServerProcess) -> None:
    with Client(ketch_server.url) as client:
        tuning = client.tuning
        tuning.tune(
            "quad", quadratic,
            parameters={"x": search.double(min=-3, max=3),
                        "kind": search.categorical(["a", "b"])},
            objective_metric_name="loss", additional_metric_names=["x"],
            objective_type="minimize", algorithm_name="random",
            algorithm_settings={"random_state": 2}, max_trial_count=6,
            parallel_trial_count=3, metrics_collector_config={"kind": "Push"})
        done = tuning.wait_for_experiment_condition("quad", timeout=120)
        assert tuning.is_experiment_succeeded("quad")
        assert done.status["trialsSucceeded"] == 6
        best = tuning.get_optimal_hyperparameters("quad")
        assert best is not None
        trials = tuning.list_trials("quad")
        assert len(trials) == 6
        losses = {}
        for trial in trials:
            values = {a["name"]: a["value"] for a in trial.spec["parameterAssignments"]}
            metrics = tuning.get_trial_metrics(trial.name)
            loss = [float(m["value"]) for m in metrics if m["name"] == "loss"]
            assert [m["step"] for m in metrics if m["name"] == "loss"] == [0, 1, 2]
            # min over the pushed steps is step 0's: the objective as reported.
            expected = (float(values["x"]) - 1) ** 2 + (0.5 if values["kind"] == "b" else 0)
            assert loss[0] == pytest.approx(expected)
            losses[trial.name] = min(loss)
        assert best["bestTrialName"] == min(losses, key=losses.__getitem__)
        # The budget edit KatibClient makes: refused here (resumePolicy Never).
        with pytest.raises(InvalidError):
            tuning.edit_experiment_budget("quad", max_trial_count=8)
        tuning.delete_experiment("quad")
        wait_for(lambda: not tuning.list_trials("quad") and not tuning.list_experiments(),
                 timeout=60, message="the experiment and its trials gone")


def test_tune_refuses_what_it_cannot_run(ketch_server: ServerProcess) -> None:
    with Client(ketch_server.url) as client, pytest.raises(InvalidError) as info:
        client.tuning.tune("none", quadratic, parameters={"x": search.double(0, 1)})
    assert info.value.fields[0].path == "objective_metric_name"
