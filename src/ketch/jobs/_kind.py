"""The ``Job`` kind (``ketch.dev/v1``): run a command or a Python function to completion."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ketch.core.kinds import Column, KindInfo
from ketch.core.quantity import parse_cpu, parse_memory
from ketch.core.resources import KetchModel

__all__ = ["JOB", "EnvVar", "JobResources", "JobSpec", "JobStatus", "Phase"]

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
TERMINAL_PHASES = ("Succeeded", "Failed", "Cancelled")
__all__ += ["TERMINAL_PHASES"]


class EnvVar(KetchModel):
    """``{name, value}`` as in a Kubernetes container."""

    name: str
    value: str = ""


class JobResources(KetchModel):
    """What one attempt reserves: ``cpu`` cores (``500m``), ``memory`` (``1Gi``,
    enforced: the attempt is killed as OOMKilled above it), ``gpu`` count."""

    cpu: str | int | float = 1
    memory: str | int | None = None
    gpu: int = Field(default=0, ge=0)

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str | int | float) -> str | int | float:
        parse_cpu(value)
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_memory(value)
        return value


class JobSpec(KetchModel):
    """Exactly one of ``command`` (argv list) or ``python`` (``module:function``)."""

    command: list[str] | None = None
    python: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] | dict[str, str] = Field(default_factory=list)
    working_dir: str | None = None
    resources: JobResources = Field(default_factory=JobResources)
    backoff_limit: int = Field(default=0, ge=0, le=100)
    active_deadline_seconds: int | None = Field(default=None, gt=0)
    # Set to true to stop the Job: the running attempt is killed, phase Cancelled.
    cancel: bool = False

    @model_validator(mode="after")
    def _one_entry_point(self) -> JobSpec:
        if (self.command is None) == (self.python is None):
            raise ValueError("set exactly one of 'command' (a list) or 'python' "
                             "('module:function')")
        if self.command is not None and not self.command:
            raise ValueError("'command' must not be empty")
        return self

    def env_dict(self) -> dict[str, str]:
        if isinstance(self.env, dict):
            return dict(self.env)
        return {var.name: var.value for var in self.env}


class JobStatus(KetchModel):
    phase: Phase = "Pending"
    attempts: int = 0
    exit_code: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    # Which control plane runs the current attempt, and the executor's handle
    # for it: what a restarted control plane needs to adopt the work.
    control_plane: str | None = None
    active: dict[str, object] | None = None
    retry_after: float | None = None
    log_uri: str | None = None


JOB = KindInfo(
    group="ketch.dev",
    version="v1",
    kind="Job",
    plural="jobs",
    spec_model=JobSpec,
    status_model=JobStatus,
    short_names=("kj",),
    has_logs=True,
    conditions=("Succeeded", "Failed", "Running", "Cancelled"),
    finalizers=("ketch.dev/job-cleanup",),
    columns=(
        Column("PHASE", "status.phase"),
        Column("ATTEMPTS", "status.attempts"),
        Column("EXIT", "status.exitCode"),
        Column("STARTED", "status.startTime", wide_only=True),
        Column("COMPLETED", "status.completionTime", wide_only=True),
        Column("REASON", "status.conditions[-1].reason", wide_only=True),
    ),
)
