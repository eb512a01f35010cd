"""A Job's pods: one per attempt, labelled as Kubernetes' Job controller labels its own
(``job-name``, ``batch.kubernetes.io/job-name``, ``controller-uid``)."""

from __future__ import annotations

from typing import Any

from ketch.core.executors import UnitState
from ketch.core.pods import PodPhase, PodUnit
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.jobs._controller import log_key

__all__ = ["job_pods"]

_PHASES: dict[str, PodPhase] = {"Succeeded": "Succeeded", "Failed": "Failed",
                                "Cancelled": "Failed", "Running": "Running"}


def job_pods(runtime: Runtime, job: Resource) -> list[PodUnit]:
    status = job.status or {}
    attempts = int(status.get("attempts") or 0)
    labels = {"job-name": job.name, "batch.kubernetes.io/job-name": job.name,
              "controller-uid": str(job.metadata.uid),
              "batch.kubernetes.io/controller-uid": str(job.metadata.uid)}
    active: dict[str, Any] = status.get("active") or {}
    pods = []
    for attempt in range(1, attempts + 1):
        unit_id = f"{job.metadata.uid}-{attempt}"
        common: dict[str, Any] = {"name": f"{job.name}-{attempt}", "unit_id": unit_id,
                                  "labels": labels, "log_key": log_key(job, attempt)}
        if attempt == attempts and active.get("unitId") == unit_id:
            running = runtime.executor.is_handle(active)
            pods.append(PodUnit(phase="Running" if running else "Pending",
                                handle=dict(active) if running else None,
                                start_time=status.get("startTime"), **common))
        elif attempt == attempts and status.get("phase") in _PHASES:
            pods.append(PodUnit(
                phase=_PHASES[str(status["phase"])], exit_code=status.get("exitCode"),
                reason=_reason(status), start_time=status.get("startTime"),
                finish_time=status.get("completionTime"), **common))
        elif attempt == attempts and status.get("exitCode") is not None:
            # Failed and waiting for its retry: the Job keeps this attempt's exit code.
            pods.append(PodUnit(phase="Failed", exit_code=status["exitCode"],
                                reason=_reason(status) or "Error", **common))
        else:
            pods.append(_earlier(runtime, common))
    return pods


def _reason(status: dict[str, Any]) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Running" and cond.get("status") == "False":
            return str(cond.get("reason") or "")
    return ""


def _earlier(runtime: Runtime, common: dict[str, Any]) -> PodUnit:
    """An attempt before the last (or the last, between retries): it failed. Its exit
    code is the executor's while it still knows the unit, else not recorded."""
    handle = runtime.executor.lookup(common["unit_id"])
    result = runtime.executor.poll(handle) if handle is not None else None
    if result is not None and result.state is UnitState.RUNNING:
        return PodUnit(phase="Running", handle=handle, **common)
    return PodUnit(phase="Failed",
                   exit_code=result.exit_code if result is not None else None,
                   reason=result.reason if result is not None and result.reason else "Error",
                   message="" if result is not None else "exit code not recorded", **common)
