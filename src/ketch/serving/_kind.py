"""The ``InferenceService`` kind (``serving.kserve.io/v1beta1``), KServe's YAML as is.

The spec model accepts KServe's whole predictor schema (unknown keys are kept,
not refused, so manifests written for KServe load unchanged); what ketch cannot
honour yet is named in the ``Unsupported`` condition, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from ketch.core.kinds import Column, KindInfo
from ketch.core.resources import KetchModel

__all__ = ["FRAMEWORK_KEYS", "INFERENCE_SERVICE", "InferenceServiceSpec", "ModelSpec",
           "PredictorSpec"]

# The older per-framework predictor keys, and the model format each one means.
FRAMEWORK_KEYS = {"sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm",
                  "onnx": "onnx", "pytorch": "pytorch"}


class _Open(KetchModel):
    # KServe's schema is large; keep what we do not model instead of refusing it.
    model_config = ConfigDict(extra="allow")


class ModelFormat(_Open):
    name: str
    version: str | None = None


class ModelSpec(_Open):
    model_format: ModelFormat | None = None
    storage_uri: str | None = None
    runtime: str | None = None
    protocol_version: str | None = None
    resources: dict[str, Any] | None = None
    env: list[dict[str, Any]] | None = None


class FrameworkSpec(_Open):
    storage_uri: str | None = None
    runtime_version: str | None = None
    protocol_version: str | None = None
    resources: dict[str, Any] | None = None


class PredictorSpec(_Open):
    model: ModelSpec | None = None
    sklearn: FrameworkSpec | None = None
    xgboost: FrameworkSpec | None = None
    lightgbm: FrameworkSpec | None = None
    onnx: FrameworkSpec | None = None
    pytorch: FrameworkSpec | None = None
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=0)
    canary_traffic_percent: int | None = Field(default=None, ge=0, le=100)
    container_concurrency: int | None = Field(default=None, ge=0)
    scale_target: int | None = Field(default=None, ge=1)
    scale_metric: Literal["concurrency", "rps", "cpu", "memory"] | None = None
    timeout: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_model(self) -> PredictorSpec:
        given = [k for k in ("model", *FRAMEWORK_KEYS) if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"set one of model or a framework key, not {', '.join(given)}")
        if not given and not self.model_extra:
            raise ValueError("set predictor.model (modelFormat and storageUri)")
        if self.max_replicas and self.min_replicas is not None \
                and self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) is below minReplicas "
                             f"({self.min_replicas})")
        return self

    def format_and_uri(self) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """(model format, storage URI, resources) whichever way the predictor says it."""
        if self.model is not None:
            fmt = self.model.model_format.name if self.model.model_format else None
            return fmt, self.model.storage_uri, self.model.resources
        for key, fmt in FRAMEWORK_KEYS.items():
            spec = getattr(self, key)
            if spec is not None:
                return fmt, spec.storage_uri, spec.resources
        return None, None, None


class InferenceServiceSpec(_Open):
    predictor: PredictorSpec


class InferenceServiceStatus(_Open):
    url: str | None = None
    address: dict[str, Any] | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    model_status: dict[str, Any] | None = None
    components: dict[str, Any] | None = None
    observed_generation: int | None = None


INFERENCE_SERVICE = KindInfo(
    group="serving.kserve.io",
    version="v1beta1",
    kind="InferenceService",
    plural="inferenceservices",
    spec_model=InferenceServiceSpec,
    status_model=InferenceServiceStatus,
    short_names=("isvc",),
    has_logs=True,
    conditions=("Ready", "PredictorReady", "IngressReady"),
    finalizers=("serving.ketch.dev/cleanup",),
    columns=(
        Column("URL", "status.url"),
        Column("READY", "status.conditions[0].status"),
        # As KServe prints them: the latest revision's share, then the previous one's
        # while a canary split is on.
        Column("LATEST", "status.components.predictor.traffic[0].percent"),
        Column("PREV", "status.components.predictor.traffic[1].percent"),
        Column("REPLICAS", "status.readyReplicas"),
        Column("LATESTREADYREVISION", "status.components.predictor.latestReadyRevision",
               wide_only=True),
        Column("MODEL", "status.modelStatus.states.activeModelState", wide_only=True),
        Column("REASON", "status.conditions[0].reason", wide_only=True),
    ),
)
