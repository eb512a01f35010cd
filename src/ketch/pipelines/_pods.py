"""A PipelineRun's pods: one per attempt of each container step (a cached or skipped
step ran nothing, so it has none), labelled as KFP v2's Argo pods are
(``pipeline/runid``, ``pipelines.kubeflow.org/v2_component``,
``workflows.argoproj.io/workflow``), container ``main`` as Argo names it."""

from __future__ import annotations

import re
import time
from typing import Any

from ketch.core.pods import PodPhase, PodUnit
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.pipelines._kind import flatten_tasks
from ketch.pipelines._launch import log_key, unit_id

__all__ = ["run_pods"]

_UNSAFE = re.compile(r"[^a-z0-9-]+")
_PHASES: dict[str, PodPhase] = {"Succeeded": "Succeeded", "Failed": "Failed",
                                "Cancelled": "Failed", "Running": "Running",
                                "Pending": "Pending"}


def _slug(path: str) -> str:
    return _UNSAFE.sub("-", path.lower()).strip("-")[:60].strip("-") or "step"


def _stamp(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def run_pods(runtime: Runtime, run: Resource) -> list[PodUnit]:
    uid = str(run.metadata.uid)
    pods = []
    for path, st in flatten_tasks((run.status or {}).get("tasks") or {}):
        attempts = int(st.get("attempts") or 0)
        if not attempts or st.get("cached"):
            continue
        slug = _slug(path)
        labels = {"pipeline/runid": uid, "pipelines.kubeflow.org/v2_component": "true",
                  "workflows.argoproj.io/workflow": run.name,
                  "pipelines.ketch.dev/task": slug}
        handle: dict[str, Any] | None = st.get("unit")
        live = runtime.executor.is_handle(handle)
        for attempt in range(1, attempts + 1):
            common: dict[str, Any] = {
                "name": f"{run.name[:180]}-{slug}-{attempt}",
                "unit_id": unit_id(uid, path, attempt), "labels": labels,
                "log_key": log_key(run.namespace, run.name, uid, path, attempt)}
            if attempt < attempts:
                # An attempt before the last failed, or there would be no retry.
                pods.append(PodUnit(phase="Failed", reason="Error", **common))
                continue
            phase = _PHASES.get(str(st.get("phase")), "Pending")
            if phase == "Running" and not live:
                phase = "Pending"
            if phase == "Pending" and st.get("retryAt"):
                phase = "Failed"  # this attempt failed; the next is not started yet
            pods.append(PodUnit(
                phase=phase, handle=dict(handle) if live and handle else None,
                start_time=_stamp(st.get("launchTime")),
                finish_time=st.get("completionTime"),
                reason="Completed" if phase == "Succeeded" else
                ("Error" if phase == "Failed" else ""),
                message=str(st.get("message") or "") if phase == "Failed" else "", **common))
    return pods
