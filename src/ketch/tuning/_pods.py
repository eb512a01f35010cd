"""A Trial's pod, as Katib's trial pods look to a client: labelled
``katib.kubeflow.org/trial`` (what ``KatibClient.get_job_logs`` lists by), the
primary container named as the template names it, and, for the StdOut collector,
Katib's ``metrics-logger-and-collector`` sidecar, whose log is the trial's output."""

from __future__ import annotations

from typing import Any

from ketch.core.pods import PodPhase, PodUnit
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.tuning._trials import EXPERIMENT_LABEL, TRIAL_LABEL, log_key, trial_state

__all__ = ["trial_pods"]

_SIDECAR = "metrics-logger-and-collector"
_PHASES: dict[str, PodPhase] = {"Succeeded": "Succeeded", "MetricsUnavailable": "Succeeded",
                                "Failed": "Failed", "Killed": "Failed",
                                "EarlyStopped": "Failed", "Running": "Running",
                                "Created": "Pending"}


def trial_pods(runtime: Runtime, trial: Resource) -> list[PodUnit]:
    status: dict[str, Any] = trial.status or {}
    spec: dict[str, Any] = trial.spec or {}
    if not status.get("active") and not status.get("completionTime"):
        return []  # not started: no pod yet
    collector = ((spec.get("metricsCollector") or {}).get("collector") or {}).get("kind",
                                                                                  "StdOut")
    active: dict[str, Any] = status.get("active") or {}
    running = runtime.executor.is_handle(active)
    state = trial_state(status)
    labels = {**(spec.get("labels") or {}), TRIAL_LABEL: trial.name,
              EXPERIMENT_LABEL: trial.metadata.labels.get(EXPERIMENT_LABEL, ""),
              "job-name": trial.name, "batch.kubernetes.io/job-name": trial.name}
    ended: dict[str, Any] = next((c for c in status.get("conditions") or []
                  if c.get("type") == state and c.get("status") == "True"), {})
    return [PodUnit(
        name=f"{trial.name}-1", unit_id=f"{trial.metadata.uid}-1",
        phase="Running" if running else _PHASES.get(state, "Pending"),
        container=str(spec.get("primaryContainerName") or "training-container"),
        sidecars=(_SIDECAR,) if collector == "StdOut" else (),
        labels=labels, handle=dict(active) if running else None, log_key=log_key(trial),
        reason="" if running else str(ended.get("reason") or ""),
        message="" if running else str(ended.get("message") or ""),
        start_time=status.get("startTime"), finish_time=status.get("completionTime"))]
