"""A pipeline run as ``kfp.Client`` 2.16.1 users read it.

kfp's ``get_run``, ``wait_for_run_completion`` and ``list_runs().runs`` return
``V2beta1Run`` objects, and scripts read ``run.state`` (``"SUCCEEDED"``), ``run.run_id``,
``run.display_name``, ``run.created_at``. The kfp-shaped client returns :class:`KfpRun`:
the ``PipelineRun`` resource itself (``.name``, ``.spec``, ``.status`` as before) with
those attributes beside, so code written for either reads it unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ketch.core.resources import Resource

__all__ = ["KFP_STATES", "KfpRun", "as_kfp_run"]

# PipelineRun phase -> V2beta1RuntimeState, as the KFP API server reports it.
KFP_STATES = {"Pending": "PENDING", "Running": "RUNNING", "Succeeded": "SUCCEEDED",
              "Failed": "FAILED", "Cancelled": "CANCELED"}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class KfpRun(Resource):
    """A ``PipelineRun`` with ``V2beta1Run``'s attribute names."""

    @property
    def run_id(self) -> str:
        """The run's id: its name (ids are names here)."""
        return self.name

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def experiment_id(self) -> str | None:
        experiment = self.spec.get("experiment")
        return experiment if isinstance(experiment, str) and experiment else None

    @property
    def state(self) -> str:
        """``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED`` or ``CANCELED``; a
        cancel asked for and not yet done is ``CANCELING``, as KFP says."""
        phase = str(self.status.get("phase") or "Pending")
        if self.spec.get("cancel") and phase in ("Pending", "Running"):
            return "CANCELING"
        return KFP_STATES.get(phase, "RUNTIME_STATE_UNSPECIFIED")

    @property
    def created_at(self) -> datetime | None:
        return _time(self.metadata.creation_timestamp)

    @property
    def scheduled_at(self) -> datetime | None:
        return _time(self.status.get("startTime"))

    @property
    def finished_at(self) -> datetime | None:
        return _time(self.status.get("completionTime"))

    @property
    def pipeline_spec(self) -> dict[str, Any] | None:
        spec = self.spec.get("pipelineSpec")
        return spec if isinstance(spec, dict) else None

    @property
    def error(self) -> dict[str, Any] | None:
        """kfp's ``error`` (a ``GooglerpcStatus``-shaped mapping) for a failed run."""
        if self.status.get("phase") != "Failed":
            return None
        return {"message": str(self.status.get("message") or "")}


def as_kfp_run(run: Resource) -> KfpRun:
    """``run`` with kfp's attributes (the same object when it already has them)."""
    if isinstance(run, KfpRun):
        return run
    return KfpRun.model_construct(**{name: getattr(run, name) for name in type(run).model_fields})
