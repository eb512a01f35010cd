"""The ``PipelineRun`` kind (``pipelines.ketch.dev/v1``): one run of a KFP pipeline.

The spec carries the pipeline as KFP IR (``pipelineSpec``, exactly what ``kfp`` or
``ketch compile`` writes) or a reference to an uploaded ``PipelineVersion``, plus the
run's arguments. The status is the contract that the CLI, SDK, API and dashboard read:
``phase``, the pipeline's own ``outputs``, and ``tasks`` keyed by the IR task name (tasks
of sub-DAGs nested under their parent, loop iterations under ``iterations``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from ketch.core.errors import FieldError, InvalidError
from ketch.core.kinds import Column, KindInfo
from ketch.core.resources import KetchModel

__all__ = [
    "PIPELINE_RUN",
    "RUN_PHASES",
    "TASK_PHASES",
    "TERMINAL_PHASES",
    "PipelineRef",
    "PipelineRunSpec",
    "PipelineRunStatus",
    "flatten_tasks",
]

RunPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
RUN_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Cancelled")
TERMINAL_PHASES = ("Succeeded", "Failed", "Cancelled")
# A task may also be Skipped (its condition was false) or Cached (the run reused an
# earlier execution: phase Succeeded with ``cached: true``).
TASK_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Skipped", "Cancelled")


class PipelineRef(KetchModel):
    """An uploaded pipeline: ``name`` and a ``version`` (the latest when left out)."""

    name: str
    version: str | None = None


class PipelineRunSpec(KetchModel):
    """What to run: the IR inline (``pipelineSpec``) or a ``pipelineRef``."""

    pipeline_spec: dict[str, Any] | None = None
    pipeline_ref: PipelineRef | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    experiment: str | None = None
    # Per-run cache switch (KFP's ``enable_caching``); tasks also have their own.
    caching: bool = True
    # Install each lightweight step's packages_to_install into a cached virtualenv
    # (KFP's behaviour in a container); off: steps run in ketch's own environment.
    install_packages: bool = False
    pipeline_root: str | None = None
    # When a RecurringRun created this run: the time it was scheduled for.
    scheduled_time: str | None = None
    # Set to true to stop the run: running tasks are killed, phase Cancelled.
    cancel: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> PipelineRunSpec:
        if (self.pipeline_spec is None) == (self.pipeline_ref is None):
            raise ValueError("set exactly one of 'pipelineSpec' (KFP IR) or 'pipelineRef'")
        if self.pipeline_spec is not None:
            # Reject a malformed pipeline or wrong arguments at submit, naming the field,
            # rather than failing the run later.
            from ketch.pipelines._inputs import root_arguments
            from ketch.pipelines._ir import parse_pipeline_spec

            try:
                spec = parse_pipeline_spec(self.pipeline_spec)
            except InvalidError as err:
                raise InvalidError(err.message, [
                    FieldError(f"spec.pipelineSpec.{f.path}", f.message) for f in err.fields
                ]) from None
            root_arguments(spec, self.arguments)
        return self


class PipelineRunStatus(KetchModel):
    """Written by the engine only. ``tasks`` entries are free-form dicts (see module doc)."""

    phase: RunPhase = "Pending"
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None
    pipeline_name: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, Any] = Field(default_factory=dict)
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    # The engine's bookkeeping: which control plane drives the run, and its own state.
    control_plane: str | None = None
    engine: dict[str, Any] = Field(default_factory=dict)


PIPELINE_RUN = KindInfo(
    group="pipelines.ketch.dev",
    version="v1",
    kind="PipelineRun",
    plural="pipelineruns",
    spec_model=PipelineRunSpec,
    status_model=PipelineRunStatus,
    short_names=("run", "runs", "pr"),
    has_logs=True,
    conditions=("Succeeded", "Failed", "Running", "Cancelled"),
    finalizers=("pipelines.ketch.dev/run-cleanup",),
    columns=(
        Column("PIPELINE", "status.pipelineName"),
        Column("PHASE", "status.phase"),
        Column("STARTED", "status.startTime"),
        Column("COMPLETED", "status.completionTime", wide_only=True),
        Column("MESSAGE", "status.message", wide_only=True),
    ),
)


def flatten_tasks(tasks: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every task of a status tree with its path (``for-loop-1/0/train``)."""
    for name, st in tasks.items():
        path = f"{prefix}{name}"
        yield path, st
        # No nested generator for a leaf (most tasks): the engine walks the tree on
        # every step, so its cost per task counts once per task and step.
        if st.get("tasks"):
            yield from flatten_tasks(st["tasks"], f"{path}/")
        for entry in st.get("iterations") or ():
            yield from flatten_tasks(entry.get("tasks") or {}, f"{path}/{entry['index']}/")
