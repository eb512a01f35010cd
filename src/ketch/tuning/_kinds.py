"""Katib's kinds (``kubeflow.org/v1beta1``): Experiment, Trial and Suggestion, as Katib
writes them.

The spec models are Katib's CRD schema; ``trialTemplate.trialSpec`` (a Kubernetes
object) and a Trial's ``runSpec`` stay open, read by ``_template``. Status fields
are Katib's names, so ``KatibClient`` reads what it reads on a cluster; the few
ketch adds (the control plane that runs the study, a trial's unit handle) are
extra keys its models ignore.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ketch.core.errors import FieldError, InvalidError
from ketch.core.kinds import Column, KindInfo
from ketch.core.resources import KetchModel, Resource

__all__ = ["EXPERIMENT", "SUGGESTION", "TRIAL", "KatibExperimentSpec", "KatibExperimentStatus",
           "ObservedMetric", "ParameterSpec", "TrialSpec", "TrialStatus"]

GROUP = "kubeflow.org"
VERSION = "v1beta1"


def _as_text(value: Any) -> Any:
    # Katib's CRD types these as strings; YAML numbers are taken and kept as text.
    if isinstance(value, bool):
        return value
    return str(value) if isinstance(value, int | float) else value


class AlgorithmSetting(KetchModel):
    name: str
    value: str = ""

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)


class AlgorithmSpec(KetchModel):
    algorithm_name: str = ""
    algorithm_settings: list[AlgorithmSetting] = Field(default_factory=list)


class MetricStrategy(KetchModel):
    name: str
    value: Literal["min", "max", "latest"]


class ObjectiveSpec(KetchModel):
    type: Literal["minimize", "maximize"]
    goal: float | None = None
    objective_metric_name: str = Field(min_length=1)
    additional_metric_names: list[str] = Field(default_factory=list)
    metric_strategies: list[MetricStrategy] = Field(default_factory=list)


class FeasibleSpace(KetchModel):
    max: str | None = None
    min: str | None = None
    # ``list`` on the wire (a Python builtin's name).
    values: list[str] | None = Field(default=None, validation_alias="list",
                                     serialization_alias="list")
    step: str | None = None
    distribution: Literal["uniform", "logUniform", "normal", "logNormal"] | None = None

    @field_validator("max", "min", "step", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)

    @field_validator("values", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return [_as_text(v) for v in value] if isinstance(value, list) else value


class ParameterSpec(KetchModel):
    name: str = Field(min_length=1)
    parameter_type: Literal["double", "int", "discrete", "categorical"]
    feasible_space: FeasibleSpace = Field(default_factory=FeasibleSpace)


class TrialParameterSpec(KetchModel):
    name: str = Field(min_length=1)
    description: str | None = None
    reference: str = ""


class ConfigMapSource(KetchModel):
    config_map_name: str | None = None
    config_map_namespace: str | None = None
    template_path: str | None = None


class TrialTemplate(KetchModel):
    retain: bool | None = None
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    trial_parameters: list[TrialParameterSpec] = Field(default_factory=list)
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapSource | None = None


class FileSystemPath(KetchModel):
    path: str | None = None
    kind: Literal["File", "Directory"] | None = None
    format: Literal["TEXT", "JSON"] | None = None


class FilterSpec(KetchModel):
    metrics_format: list[str] = Field(default_factory=list)


class SourceSpec(KetchModel):
    filter: FilterSpec | None = None
    file_system_path: FileSystemPath | None = None
    http_get: dict[str, Any] | None = None


class CollectorSpec(KetchModel):
    kind: Literal["StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom",
                  "None", "Push"] = "StdOut"
    custom_collector: dict[str, Any] | None = None


class MetricsCollectorSpec(KetchModel):
    source: SourceSpec | None = None
    collector: CollectorSpec | None = None


class KatibExperimentSpec(KetchModel):
    parameters: list[ParameterSpec] = Field(default_factory=list)
    objective: ObjectiveSpec
    algorithm: AlgorithmSpec
    early_stopping: AlgorithmSpec | None = None
    trial_template: TrialTemplate
    parallel_trial_count: int | None = Field(default=None, ge=1)
    max_trial_count: int | None = Field(default=None, ge=1)
    max_failed_trial_count: int | None = Field(default=None, ge=0)
    metrics_collector_spec: MetricsCollectorSpec | None = None
    nas_config: dict[str, Any] | None = None
    resume_policy: Literal["Never", "LongRunning", "FromVolume"] | None = None


class ObservedMetric(KetchModel):
    name: str
    min: str = ""
    max: str = ""
    latest: str = ""


class Observation(KetchModel):
    metrics: list[ObservedMetric] = Field(default_factory=list)


class ParameterAssignment(KetchModel):
    name: str
    value: str

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _as_text(value)


class OptimalTrial(KetchModel):
    best_trial_name: str = ""
    parameter_assignments: list[ParameterAssignment] = Field(default_factory=list)
    observation: Observation = Field(default_factory=Observation)


class KatibExperimentStatus(KetchModel):
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    current_optimal_trial: OptimalTrial | None = None
    succeeded_trial_list: list[str] | None = None
    failed_trial_list: list[str] | None = None
    killed_trial_list: list[str] | None = None
    early_stopped_trial_list: list[str] | None = None
    metrics_unavailable_trial_list: list[str] | None = None
    pending_trial_list: list[str] | None = None
    running_trial_list: list[str] | None = None
    trials: int = 0
    trials_succeeded: int = 0
    trials_failed: int = 0
    trials_killed: int = 0
    trials_pending: int = 0
    trials_running: int = 0
    trials_early_stopped: int = 0
    trial_metrics_unavailable: int = 0
    # ketch's: the control plane that asks the study for trials (one at a time).
    control_plane: str | None = None


class EarlyStoppingRule(KetchModel):
    name: str
    value: str
    comparison: Literal["equal", "less", "greater"] = "less"
    start_step: int | None = None


class TrialSpec(KetchModel):
    objective: ObjectiveSpec
    parameter_assignments: list[ParameterAssignment] = Field(default_factory=list)
    early_stopping_rules: list[EarlyStoppingRule] = Field(default_factory=list)
    run_spec: dict[str, Any] = Field(default_factory=dict)
    metrics_collector: MetricsCollectorSpec | None = None
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    retain_run: bool | None = None
    labels: dict[str, str] | None = None


class TrialStatus(KetchModel):
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    observation: Observation | None = None
    # ketch's: who runs the trial's unit and the executor's handle for it.
    control_plane: str | None = None
    active: dict[str, Any] | None = None
    log_uri: str | None = None
    node: str | None = None
    image: str | None = None


class SuggestionSpec(KetchModel):
    algorithm: AlgorithmSpec
    early_stopping: AlgorithmSpec | None = None
    requests: int = 0
    resume_policy: str | None = None


class SuggestionStatus(KetchModel):
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    suggestion_count: int = 0
    suggestions: list[dict[str, Any]] = Field(default_factory=list)
    algorithm_settings: list[AlgorithmSetting] | None = None


def _check_experiment(resource: Resource) -> None:
    from ketch.tuning._space import check_experiment
    from ketch.tuning._template import check_template

    spec = KatibExperimentSpec.model_validate(resource.spec)
    errors: list[FieldError] = []
    try:
        check_experiment(spec)
    except InvalidError as err:
        errors += err.fields
    try:
        check_template(spec.trial_template, {p.name for p in spec.parameters},
                       "spec.trialTemplate")
    except InvalidError as err:
        errors += err.fields
    if errors:
        raise InvalidError("invalid Experiment", errors)


def _immutable_experiment(stored: Resource, proposed: Resource) -> None:
    """Katib lets only the budget change (parallelTrialCount, maxTrialCount,
    maxFailedTrialCount): the rest is what the study's trials were drawn from."""
    budget = {"parallelTrialCount", "maxTrialCount", "maxFailedTrialCount"}
    changed = sorted(k for k in {*stored.spec, *proposed.spec} - budget
                     if stored.spec.get(k) != proposed.spec.get(k))
    finished = any(c.get("type") in ("Succeeded", "Failed") and c.get("status") == "True"
                   for c in (stored.status or {}).get("conditions") or [])
    if (finished and (stored.spec.get("resumePolicy") or "Never") == "Never"
            and stored.spec.get("maxTrialCount") != proposed.spec.get("maxTrialCount")):
        raise InvalidError(f"experiment {stored.name!r} has ended and cannot be restarted",
                           [FieldError("spec.maxTrialCount", "the experiment's resumePolicy "
                                       "is Never: set LongRunning to raise a finished "
                                       "experiment's budget")])
    if changed:
        raise InvalidError(f"experiment {stored.name!r}: only the trial budget can change",
                           [FieldError(f"spec.{changed[0]}", "field is immutable; only "
                                       "parallelTrialCount, maxTrialCount and "
                                       "maxFailedTrialCount can be edited")])


def _immutable_trial(stored: Resource, proposed: Resource) -> None:
    raise InvalidError(f"trial {stored.name!r}: its spec is what ran",
                       [FieldError("spec", "field is immutable")])


EXPERIMENT = KindInfo(
    group=GROUP, version=VERSION, kind="Experiment", plural="experiments",
    spec_model=KatibExperimentSpec, status_model=KatibExperimentStatus,
    conditions=("Created", "Running", "Restarting", "Succeeded", "Failed"),
    finalizers=("update-prometheus-metrics",),
    check=_check_experiment,
    check_update=_immutable_experiment,
    columns=(
        Column("TYPE", "status.conditions[-1].type"),
        Column("STATUS", "status.conditions[-1].status"),
        Column("TRIALS", "status.trials"),
        Column("SUCCEEDED", "status.trialsSucceeded"),
        Column("BEST", "status.currentOptimalTrial.bestTrialName", wide_only=True),
    ),
)

TRIAL = KindInfo(
    group=GROUP, version=VERSION, kind="Trial", plural="trials",
    spec_model=TrialSpec, status_model=TrialStatus, has_logs=True,
    conditions=("Created", "Running", "Succeeded", "Killed", "Failed", "MetricsUnavailable",
                "EarlyStopped"),
    finalizers=("clean-metrics-in-db",),
    check_update=_immutable_trial,
    columns=(
        Column("TYPE", "status.conditions[-1].type"),
        Column("STATUS", "status.conditions[-1].status"),
        Column("REASON", "status.conditions[-1].reason", wide_only=True),
    ),
)

SUGGESTION = KindInfo(
    group=GROUP, version=VERSION, kind="Suggestion", plural="suggestions",
    spec_model=SuggestionSpec, status_model=SuggestionStatus,
    conditions=("Created", "DeploymentReady", "Running", "Succeeded", "Failed"),
    columns=(
        Column("TYPE", "status.conditions[-1].type"),
        Column("STATUS", "status.conditions[-1].status"),
        Column("REQUESTED", "spec.requests"),
        Column("ASSIGNED", "status.suggestionCount"),
    ),
)
