"""The ``Job`` kind (``ketch.dev/v1``): run a command or a Python function to completion."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from ketch.core.errors import FieldError, InvalidError
from ketch.core.kinds import Column, KindInfo
from ketch.core.quantity import parse_cpu, parse_memory
from ketch.core.resources import KetchModel, Resource

__all__ = ["JOB", "EnvVar", "JobResources", "JobSpec", "JobStatus", "Phase"]

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
TERMINAL_PHASES = ("Succeeded", "Failed", "Cancelled")
__all__ += ["TERMINAL_PHASES"]


# Kubernetes' int64 fields: a bigger number is refused at admission, never stored
# (JSON decoders turn it into a float that no later read accepts).
_INT64_MAX = 2**63 - 1


def _no_nul(value: str) -> str:
    # execve takes C strings: a NUL can never reach a process, so no retry helps.
    if "\x00" in value:
        raise ValueError("must not contain a NUL byte")
    return value


def _env_name(value: str) -> str:
    # Kubernetes' rule (RelaxedEnvironmentVariableValidation, GA in 1.32).
    if not value or "=" in value or not all(" " <= ch <= "~" for ch in value):
        raise ValueError("a valid environment variable name must consist only of "
                         "printable ASCII characters other than '='")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string handed to the operating system (argv, env, paths): no NUL bytes."""

StrictInt = Annotated[int, Field(strict=True, le=_INT64_MAX)]
"""An integer as Kubernetes reads it: JSON integers only (no ``5.0``, no ``"5"``)."""


class EnvVar(KetchModel):
    """``{name, value}`` as in a Kubernetes container."""

    name: Annotated[str, AfterValidator(_env_name)]
    value: Text = ""


class JobResources(KetchModel):
    """What one attempt reserves: ``cpu`` cores (``500m``), ``memory`` (``1Gi``,
    enforced: the attempt is killed as OOMKilled above it), ``gpu`` count."""

    cpu: str | int | float = 1
    memory: str | int | None = None
    gpu: StrictInt = Field(default=0, ge=0)
    # Custom (Kubernetes: extended) resources by name, {"worker-a": 1}: only an executor
    # whose nodes declare them can grant them (a Ray cluster's custom resources).
    custom: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

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

    command: list[Text] | None = None
    python: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    args: list[Text] = Field(default_factory=list)
    # A mapping is accepted and stored as the list, so every error has one path
    # (spec.env[0].name) and the stored form is Kubernetes'.
    env: list[EnvVar] = Field(default_factory=list)
    working_dir: Text | None = None
    resources: JobResources = Field(default_factory=JobResources)
    backoff_limit: StrictInt = Field(default=0, ge=0, le=100)
    active_deadline_seconds: StrictInt | None = Field(default=None, gt=0)
    # Set to true to stop the Job: the running attempt is killed, phase Cancelled.
    cancel: bool = False

    @field_validator("env", mode="before")
    @classmethod
    def _env_mapping(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [{"name": k, "value": v} for k, v in value.items()]
        return value

    @model_validator(mode="after")
    def _one_entry_point(self) -> JobSpec:
        if (self.command is None) == (self.python is None):
            raise ValueError("set exactly one of 'command' (a list) or 'python' "
                             "('module:function')")
        if self.command is not None and not self.command:
            raise ValueError("'command' must not be empty")
        return self

    def env_dict(self) -> dict[str, str]:
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
    # The node the current (or last) attempt runs on, on a backend of several nodes.
    node: str | None = None
    retry_after: float | None = None
    log_uri: str | None = None


def _check_update(stored: Resource, proposed: Resource) -> None:
    """A finished Job's spec is its record: changing it would put a command under a
    Succeeded status that never ran it (Kubernetes keeps a Job's template immutable)."""
    phase = (stored.status or {}).get("phase")
    if phase in TERMINAL_PHASES:
        changed = sorted(k for k in {*stored.spec, *proposed.spec}
                         if stored.spec.get(k) != proposed.spec.get(k))
        raise InvalidError(f"job {stored.name!r} is {phase}: its spec can no longer change",
                           [FieldError(f"spec.{changed[0]}" if changed else "spec",
                                       f"field is immutable once the Job is {phase}; "
                                       "create a new Job to run again")])


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
    check_update=_check_update,
    columns=(
        Column("PHASE", "status.phase"),
        Column("ATTEMPTS", "status.attempts"),
        Column("EXIT", "status.exitCode"),
        Column("STARTED", "status.startTime", wide_only=True),
        Column("COMPLETED", "status.completionTime", wide_only=True),
        Column("REASON", "status.conditions[-1].reason", wide_only=True),
    ),
)
