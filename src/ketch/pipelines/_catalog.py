"""The pipeline catalog: ``Pipeline``, ``PipelineVersion`` and ``Experiment``
(``pipelines.ketch.dev/v1``), as KFP's pipelines, pipeline versions and experiments.

A ``PipelineVersion`` names its ``Pipeline`` (``spec.pipeline``, same namespace)
and holds the pipeline as KFP IR (``spec.pipelineSpec``: what ``kfp`` or ``ketch
compile`` writes). Versions are immutable once created, as in KFP: upload a new
version instead. The IR is checked on the way in, and a wrong field is named
(``spec.pipelineSpec.root: missing``).

A run refers to a version with ``pipelineRef: {name, version}``; ``version`` is
the version's object name, or the part after ``<pipeline>-`` in it (the name
``ketch`` gives uploaded versions), and the newest version when left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from ketch.core.errors import FieldError, InvalidError, NotFoundError
from ketch.core.kinds import Column, KindInfo
from ketch.core.resources import KetchModel, Resource, validate_name
from ketch.core.store import ResourceStore
from ketch.pipelines._ir import parse_pipeline_spec

__all__ = [
    "EXPERIMENT",
    "PIPELINE",
    "PIPELINE_VERSION",
    "ExperimentSpec",
    "PipelineSpecModel",
    "PipelineVersionSpec",
    "resolve_pipeline_ref",
    "versions_of",
]

GROUP = "pipelines.ketch.dev"
_IR_KEYS = ("pipelineInfo", "root", "components")


class PipelineSpecModel(KetchModel):
    """A pipeline: a named home for versions."""

    display_name: str | None = Field(default=None, max_length=255)
    description: str = Field(default="", max_length=10_000)


class PipelineStatus(KetchModel):
    latest_version: str | None = None
    versions: int = 0
    conditions: list[dict[str, Any]] = Field(default_factory=list)


def check_ir(document: Any, path: str = "spec.pipelineSpec") -> None:
    """Raise ``InvalidError`` naming the field unless ``document`` is KFP IR."""
    if not isinstance(document, Mapping):
        raise InvalidError("invalid pipeline spec", [FieldError(
            path, f"expected a KFP IR mapping, got {type(document).__name__}")])
    for key in _IR_KEYS:
        if key not in document:
            raise InvalidError("invalid pipeline spec", [FieldError(
                f"{path}.{key}", "missing: a KFP IR document has pipelineInfo, root and "
                                 "components")])
    try:
        parse_pipeline_spec(dict(document))
    except InvalidError as err:
        fields = [FieldError(f"{path}.{f.path}" if f.path else path, f.message)
                  for f in err.fields] or [FieldError(path, err.message)]
        raise InvalidError("invalid pipeline spec", fields) from None


class PipelineVersionSpec(KetchModel):
    """One immutable version of a pipeline: its IR, a description, where it came from."""

    pipeline: str
    pipeline_spec: dict[str, Any]
    # KFP files may carry a second YAML document, the platform (Kubernetes) spec.
    platform_spec: dict[str, Any] | None = None
    description: str = Field(default="", max_length=10_000)
    display_name: str | None = Field(default=None, max_length=255)
    # The file the version was uploaded from (``pipeline.py``, ``pipeline.yaml``).
    source_file: str | None = Field(default=None, max_length=255)

    @field_validator("pipeline")
    @classmethod
    def _pipeline(cls, value: str) -> str:
        return validate_name(value, "pipeline")

    @field_validator("pipeline_spec")
    @classmethod
    def _ir(cls, value: dict[str, Any]) -> dict[str, Any]:
        # An InvalidError (not a ValueError) passes through pydantic untouched, so
        # the field path reaches the user whole: spec.pipelineSpec.root.dag....
        check_ir(value)
        return value


class PipelineVersionStatus(KetchModel):
    pipeline_name: str | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)


class ExperimentSpec(KetchModel):
    """A group of runs; archived experiments are kept but hidden by default (KFP)."""

    display_name: str | None = Field(default=None, max_length=255)
    description: str = Field(default="", max_length=10_000)
    archived: bool = False


class ExperimentStatus(KetchModel):
    conditions: list[dict[str, Any]] = Field(default_factory=list)


def _immutable(stored: Resource, proposed: Resource) -> None:
    changed = sorted(k for k in {*stored.spec, *proposed.spec}
                     if stored.spec.get(k) != proposed.spec.get(k))
    raise InvalidError("a PipelineVersion cannot be changed once created; upload a new "
                       "version instead", [FieldError(f"spec.{k}", "field is immutable")
                                           for k in changed])


PIPELINE = KindInfo(
    group=GROUP, version="v1", kind="Pipeline", plural="pipelines",
    spec_model=PipelineSpecModel, status_model=PipelineStatus, short_names=("pl",),
    finalizers=("pipelines.ketch.dev/versions",),
    columns=(
        Column("LATEST", "status.latestVersion"),
        Column("VERSIONS", "status.versions"),
        Column("DESCRIPTION", "spec.description", wide_only=True),
    ),
)

PIPELINE_VERSION = KindInfo(
    group=GROUP, version="v1", kind="PipelineVersion", plural="pipelineversions",
    spec_model=PipelineVersionSpec, status_model=PipelineVersionStatus,
    short_names=("plv",), check_update=_immutable,
    columns=(
        Column("PIPELINE", "spec.pipeline"),
        Column("SOURCE", "spec.sourceFile"),
        Column("DESCRIPTION", "spec.description", wide_only=True),
    ),
)

EXPERIMENT = KindInfo(
    group=GROUP, version="v1", kind="Experiment", plural="experiments",
    spec_model=ExperimentSpec, status_model=ExperimentStatus, short_names=("exp",),
    columns=(
        Column("ARCHIVED", "spec.archived"),
        Column("DESCRIPTION", "spec.description"),
    ),
)


def _created(obj: Resource) -> tuple[str, int]:
    return (obj.metadata.creation_timestamp or "", int(obj.metadata.resource_version or 0))


def versions_of(store: ResourceStore, namespace: str, pipeline: str) -> list[Resource]:
    """The versions of ``pipeline``, oldest first."""
    items = [v for v in _all(store, PIPELINE_VERSION, namespace)
             if v.spec.get("pipeline") == pipeline]
    return sorted(items, key=_created)


def _all(store: ResourceStore, info: KindInfo, namespace: str) -> list[Resource]:
    items: list[Resource] = []
    token: str | None = None
    while True:
        page = store.list(info, namespace, limit=500, continue_token=token)
        items.extend(page.items)
        token = page.continue_token
        if not token:
            return items


def resolve_pipeline_ref(runtime: Any, namespace: str, ref: Mapping[str, Any]) -> dict[str, Any]:
    """The IR a ``pipelineRef`` ({name, version}) points at; ``NotFoundError`` naming
    what is missing. ``runtime`` is anything with a ``store``."""
    store: ResourceStore = runtime.store
    name = str(ref.get("name") or "")
    version = ref.get("version")
    try:
        store.get(PIPELINE, namespace, name)
    except NotFoundError:
        raise NotFoundError(f'pipeline "{name}" not found in namespace "{namespace}" '
                            "(spec.pipelineRef.name)") from None
    if version:
        for candidate in (str(version), f"{name}-{version}"):
            try:
                found = store.get(PIPELINE_VERSION, namespace, candidate)
            except (NotFoundError, InvalidError):
                continue
            if found.spec.get("pipeline") == name:
                return dict(found.spec["pipelineSpec"])
        raise NotFoundError(f'pipeline "{name}" has no version "{version}" in namespace '
                            f'"{namespace}" (spec.pipelineRef.version)')
    versions = versions_of(store, namespace, name)
    if not versions:
        raise NotFoundError(f'pipeline "{name}" has no versions yet; upload one '
                            "(spec.pipelineRef)")
    return dict(versions[-1].spec["pipelineSpec"])
