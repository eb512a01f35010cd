"""An InferenceService's pods: each running replica of each revision, labelled as
KServe labels its predictor pods (``serving.kserve.io/inferenceservice``,
``component: predictor``, container ``kserve-container``), and the service's front
(``component: front``, ketch's own router: KServe has none of its own)."""

from __future__ import annotations

import time
from typing import Any

from ketch.core.pods import PodUnit
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime

__all__ = ["service_pods"]


def _stamp(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _log_key(obj: Resource, unit_id: str) -> str:
    # Where the serving controller's finalize puts a unit's log (its _log_key).
    return f"logs/{obj.namespace}/inferenceservices/{obj.name}/{unit_id}.log"


def _unit(runtime: Runtime, obj: Resource, name: str, entry: dict[str, Any],
          labels: dict[str, str], container: str) -> PodUnit:
    handle: dict[str, Any] | None = entry.get("handle")
    live = runtime.executor.is_handle(handle)
    return PodUnit(name=name, phase="Running" if live else "Pending",
                   unit_id=str(entry["unitId"]), container=container, labels=labels,
                   handle=dict(handle) if live and handle else None,
                   log_key=_log_key(obj, str(entry["unitId"])),
                   start_time=_stamp(entry.get("started")) if live else None)


def service_pods(runtime: Runtime, obj: Resource) -> list[PodUnit]:
    status = obj.status or {}
    base = {"serving.kserve.io/inferenceservice": obj.name}
    pods = []
    for rev in status.get("revisions") or []:
        labels = {**base, "component": "predictor", "app": f"isvc.{obj.name}-predictor",
                  "serving.kserve.io/revision": str(rev.get("name"))}
        for rep in rev.get("replicas") or []:
            serial = str(rep["unitId"]).rsplit("-", 1)[-1]
            pods.append(_unit(runtime, obj, f"{rev['name']}-{serial}", rep, labels,
                              "kserve-container"))
    front = status.get("front")
    if front and front.get("unitId"):
        starts = str(front["unitId"]).rsplit("-", 1)[-1]
        pods.append(_unit(runtime, obj, f"{obj.name}-front-{starts}", front,
                          {**base, "component": "front"}, "front"))
    return pods
