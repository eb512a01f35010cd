"""``client.tuning``: Katib's ``KatibClient`` calls through a ``ketch.Client``.

The same names and arguments as kubeflow-katib's client (``create_experiment``,
``get_experiment``, ``wait_for_experiment_condition``, ``get_optimal_hyperparameters``,
``list_trials``, ``get_trial_metrics``, ``edit_experiment_budget``,
``delete_experiment``, ``tune``), returning ketch's ``Resource`` objects and plain
dicts instead of Katib's generated models. Nothing heavy is imported here.
"""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ketch.core.errors import FieldError, InvalidError, KetchError

if TYPE_CHECKING:
    from ketch.client import Client
    from ketch.core.resources import Resource

__all__ = ["TuningClient"]

EXPERIMENTS, TRIALS = "experiments.kubeflow.org", "trials.kubeflow.org"
API_VERSION = "kubeflow.org/v1beta1"
_LABEL = "katib.kubeflow.org/experiment"
_KINDS = {"double": "float", "int": "int", "discrete": "float", "categorical": "str"}

# A tune() trial: the objective's source, then a call with the trial's parameters,
# each converted to its parameter type (Katib passes strings; numbers are nicer).
_RUNNER = '''
import json as _json, sys as _sys
{source}
_types = {types}
_cast = {{"float": float, "int": int, "str": str}}
_params = {{k: _cast[_types[k]](v) for k, v in zip(_types, _sys.argv[1:])}}
{name}(_params)
'''


class TuningClient:
    """Hyperparameter tuning: Katib Experiments and their Trials."""

    def __init__(self, client: Client) -> None:
        self._client = client

    # -- experiments ---------------------------------------------------------------

    def create_experiment(self, experiment: Mapping[str, Any],
                          namespace: str | None = None) -> Resource:
        body = dict(experiment)
        body.setdefault("apiVersion", API_VERSION)
        body.setdefault("kind", "Experiment")
        return self._client.create(body, namespace=namespace)

    def get_experiment(self, name: str, namespace: str | None = None) -> Resource:
        return self._client.get(EXPERIMENTS, name, namespace=namespace)

    def list_experiments(self, namespace: str | None = None) -> list[Resource]:
        return self._client.list(EXPERIMENTS, namespace=namespace).items

    def get_experiment_conditions(self, name: str,
                                  namespace: str | None = None) -> list[dict[str, Any]]:
        return list(self.get_experiment(name, namespace).status.get("conditions") or [])

    def _is(self, name: str, namespace: str | None, condition: str) -> bool:
        return any(c.get("type") == condition and c.get("status") == "True"
                   for c in self.get_experiment_conditions(name, namespace))

    def is_experiment_created(self, name: str, namespace: str | None = None) -> bool:
        return self._is(name, namespace, "Created")

    def is_experiment_running(self, name: str, namespace: str | None = None) -> bool:
        return self._is(name, namespace, "Running")

    def is_experiment_restarting(self, name: str, namespace: str | None = None) -> bool:
        return self._is(name, namespace, "Restarting")

    def is_experiment_succeeded(self, name: str, namespace: str | None = None) -> bool:
        return self._is(name, namespace, "Succeeded")

    def is_experiment_failed(self, name: str, namespace: str | None = None) -> bool:
        return self._is(name, namespace, "Failed")

    def wait_for_experiment_condition(self, name: str, namespace: str | None = None,
                                      expected_condition: str = "Succeeded",
                                      timeout: int = 600,
                                      polling_interval: float = 1.0) -> Resource:
        """The Experiment once ``expected_condition`` is True; ``KetchError`` at once if
        it fails instead (as Katib's client), ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            exp = self.get_experiment(name, namespace)
            conditions = {c.get("type"): c for c in exp.status.get("conditions") or []}
            if (conditions.get(expected_condition) or {}).get("status") == "True":
                return exp
            failed = conditions.get("Failed") or {}
            if expected_condition != "Failed" and failed.get("status") == "True":
                raise KetchError(f"experiment {name} failed: {failed.get('reason')}: "
                                 f"{failed.get('message')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"experiment {name} is not {expected_condition} after "
                                   f"{timeout} s")
            time.sleep(polling_interval)

    def get_optimal_hyperparameters(self, name: str,
                                    namespace: str | None = None) -> dict[str, Any] | None:
        """``currentOptimalTrial`` (best trial, its parameterAssignments and
        observation), or None before a trial has succeeded."""
        best = self.get_experiment(name, namespace).status.get("currentOptimalTrial") or {}
        return dict(best) if best.get("bestTrialName") else None

    def edit_experiment_budget(self, name: str, namespace: str | None = None,
                               max_trial_count: int | None = None,
                               parallel_trial_count: int | None = None,
                               max_failed_trial_count: int | None = None) -> Resource:
        budget = {k: v for k, v in (("maxTrialCount", max_trial_count),
                                    ("parallelTrialCount", parallel_trial_count),
                                    ("maxFailedTrialCount", max_failed_trial_count))
                  if v is not None}
        if not budget:
            raise InvalidError("no budget given", [FieldError(
                "max_trial_count", "give max_trial_count, parallel_trial_count or "
                "max_failed_trial_count")])
        return self._client.patch(EXPERIMENTS, name, {"spec": budget}, namespace=namespace)

    def delete_experiment(self, name: str, namespace: str | None = None) -> Resource:
        return self._client.delete(EXPERIMENTS, name, namespace=namespace)

    # -- trials --------------------------------------------------------------------

    def list_trials(self, experiment_name: str | None = None,
                    namespace: str | None = None) -> list[Resource]:
        selector = f"{_LABEL}={experiment_name}" if experiment_name else None
        return self._client.list(TRIALS, namespace=namespace, label_selector=selector).items

    def get_trial(self, name: str, namespace: str | None = None) -> Resource:
        return self._client.get(TRIALS, name, namespace=namespace)

    def get_trial_metrics(self, name: str,
                          namespace: str | None = None) -> list[dict[str, Any]]:
        """Every value each metric of the trial took, in order (Katib's observation
        log: ``name``, ``value``, and ``step`` where one was reported)."""
        from ketch.tuning._metrics import observe

        trial = self.get_trial(name, namespace)
        objective = trial.spec.get("objective") or {}
        names = [objective.get("objectiveMetricName", ""),
                 *(objective.get("additionalMetricNames") or [])]
        collector = ((trial.spec.get("metricsCollector") or {}).get("collector") or {})
        source = ((trial.spec.get("metricsCollector") or {}).get("source") or {})
        filters = (source.get("filter") or {}).get("metricsFormat") or []
        kind = collector.get("kind", "StdOut")
        file = ((source.get("fileSystemPath") or {}).get("format") or "TEXT"
                if kind == "File" else None)
        text = b"".join(self._client.logs(TRIALS, name, namespace=namespace)).decode(
            "utf-8", "replace")
        observed = observe(text, names, filters, push=kind == "Push", file=file)
        return [{"name": metric, "value": repr(value), **({"step": step} if step is not None
                                                          else {})}
                for metric in names for step, value in observed.values.get(metric, [])]

    # -- tune ----------------------------------------------------------------------

    def tune(self, name: str, objective: Callable[[dict[str, Any]], Any],
             parameters: Mapping[str, dict[str, Any]], *,
             namespace: str | None = None, objective_metric_name: str = "",
             additional_metric_names: list[str] | None = None,
             objective_type: str = "maximize", objective_goal: float | None = None,
             algorithm_name: str = "random",
             algorithm_settings: Mapping[str, Any] | None = None,
             max_trial_count: int | None = None, parallel_trial_count: int | None = None,
             max_failed_trial_count: int | None = None,
             resources_per_trial: Mapping[str, Any] | None = None,
             env_per_trial: Mapping[str, str] | None = None,
             packages_to_install: list[str] | None = None,
             metrics_collector_config: Mapping[str, Any] | None = None,
             base_image: str | None = None) -> Resource:
        """Tune ``objective(parameters)`` as Katib's ``tune`` does: its source runs as
        each trial, called with that trial's values; it reports by printing
        ``name=value`` (or with ``ketch.tuning.report_metrics``, then pass
        ``metrics_collector_config={"kind": "Push"}``)."""
        if not objective_metric_name:
            raise InvalidError("invalid tune", [FieldError(
                "objective_metric_name", "name the metric the objective reports")])
        if packages_to_install:
            raise InvalidError("invalid tune", [FieldError(
                "packages_to_install", "not supported yet: install the packages into "
                "the environment ketch runs trials in")])
        if not parameters:
            raise InvalidError("invalid tune", [FieldError("parameters", "none given")])
        try:
            source = textwrap.dedent(inspect.getsource(objective))
        except (OSError, TypeError) as err:
            raise InvalidError("invalid tune", [FieldError(
                "objective", f"its source cannot be read ({err}); define it in a file")]) \
                from None
        types = {n: _KINDS[p["parameterType"]] for n, p in parameters.items()}
        program = _RUNNER.format(source=source, types=json.dumps(types),
                                 name=objective.__name__)
        container: dict[str, Any] = {
            "name": "training-container", "image": base_image or "python",
            "command": [sys.executable, "-c", program,
                        *(f"${{trialParameters.{n}}}" for n in parameters)]}
        if resources_per_trial:
            container["resources"] = {"requests": {k: str(v) for k, v in
                                                   resources_per_trial.items()}}
        if env_per_trial:
            container["env"] = [{"name": k, "value": v} for k, v in env_per_trial.items()]
        spec: dict[str, Any] = {
            "objective": {"type": objective_type, "objectiveMetricName": objective_metric_name,
                          "additionalMetricNames": list(additional_metric_names or []),
                          **({"goal": objective_goal} if objective_goal is not None else {})},
            "algorithm": {"algorithmName": algorithm_name, "algorithmSettings": [
                {"name": k, "value": str(v)} for k, v in (algorithm_settings or {}).items()]},
            "parameters": [{"name": n, **p} for n, p in parameters.items()],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": n, "reference": n} for n in parameters],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {
                    "spec": {"containers": [container], "restartPolicy": "Never"}}}}},
        }
        for key, value in (("maxTrialCount", max_trial_count),
                           ("parallelTrialCount", parallel_trial_count),
                           ("maxFailedTrialCount", max_failed_trial_count)):
            if value is not None:
                spec[key] = value
        if metrics_collector_config:
            spec["metricsCollectorSpec"] = {"collector": dict(metrics_collector_config)}
        return self.create_experiment({"metadata": {"name": name}, "spec": spec},
                                      namespace=namespace)
