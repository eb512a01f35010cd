"""The tuning component's slice (entry point ``ketch.components``): references only,
so reading it imports neither Optuna nor the controllers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ketch.core.component import Component, DashboardRoute, Facade

if TYPE_CHECKING:
    from ketch.core.kinds import LogOptions
    from ketch.core.resources import Resource
    from ketch.core.runtime import Runtime

__all__ = ["component"]


def _trial_log(runtime: Runtime, obj: Resource, options: LogOptions) -> Iterator[bytes]:
    """A trial's output: live from the executor while it runs, else as kept."""
    from ketch.tuning._trials import log_key

    active = obj.status.get("active") or {}
    handle = (dict(active) if runtime.executor.is_handle(active)
              else runtime.executor.lookup(f"{obj.metadata.uid}-1"))
    if handle is not None:
        return runtime.executor.logs(handle, follow=options.follow)
    key = log_key(obj)
    return runtime.artifacts.iter_bytes(key) if runtime.artifacts.exists(key) else iter(())


component = Component(
    name="tuning",
    description="Hyperparameter tuning: Katib Experiments, Trials and Suggestions on "
                "Optuna's samplers, trials as executor units, metrics without a sidecar",
    kinds=("ketch.tuning._kinds:EXPERIMENT", "ketch.tuning._kinds:TRIAL",
           "ketch.tuning._kinds:SUGGESTION"),
    controllers=("ketch.tuning._experiments:ExperimentController",
                 "ketch.tuning._trials:TrialController"),
    log_readers={"trials.kubeflow.org": _trial_log},
    pods={"trials.kubeflow.org": "ketch.tuning._pods:trial_pods"},
    schema="ketch.tuning._tables:SCHEMA",
    sdk=Facade("tuning", "ketch.tuning.client:TuningClient"),
    describe={"Experiment.kubeflow.org": "ketch.tuning._describe:EXPERIMENT_VIEW"},
    dashboard=(DashboardRoute("/experiments", "Tuning", ("experiments", "trials",
                                                         "suggestions")),),
)
