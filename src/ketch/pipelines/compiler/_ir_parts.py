"""Pieces of the IR that do not depend on the graph walk: protobuf-style values,
input/output definitions, DAG output selectors."""

from __future__ import annotations

from typing import Any

from ketch.pipelines.dsl._channels import Collected, PipelineChannel
from ketch.pipelines.dsl._component import IOSpec
from ketch.pipelines.dsl._types import ir_parameter_type

__all__ = ["channel_definition", "dag_outputs", "io_definitions", "replace_text", "sort_keys",
           "to_value"]


def to_value(value: Any) -> Any:
    """A constant as protobuf ``Value`` JSON holds it (numbers become floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): to_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_value(v) for v in value]
    return str(value)


def _artifact_type(cls: Any) -> dict[str, str]:
    return {"schemaTitle": str(getattr(cls, "schema_title", "system.Artifact")),
            "schemaVersion": str(getattr(cls, "schema_version", "0.0.1"))}


def io_definitions(specs: dict[str, IOSpec], *, inputs: bool) -> dict[str, Any]:
    """``inputDefinitions``/``outputDefinitions`` for a component signature."""
    params: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}
    for name, spec in specs.items():
        if spec.is_artifact:
            entry: dict[str, Any] = {"artifactType": _artifact_type(spec.type)}
            if spec.is_artifact_list:
                entry["isArtifactList"] = True
            if inputs and spec.optional:
                entry["isOptional"] = True
            if spec.description:
                entry["description"] = spec.description
            artifacts[name] = entry
        else:
            entry = {"parameterType": ir_parameter_type(str(spec.type)) or "STRING"}
            if inputs and spec.has_default:
                entry["defaultValue"] = to_value(spec.default)
            if inputs and spec.optional:
                entry["isOptional"] = True
            if spec.description:
                entry["description"] = spec.description
            params[name] = entry
    return present(artifacts=artifacts, parameters=params)


def present(**sections: Any) -> dict[str, Any]:
    """The non-empty ones of ``sections``: the IR leaves an empty section out, as kfp's
    compiler does."""
    return {key: value for key, value in sections.items() if value}


def channel_definition(channel: PipelineChannel) -> tuple[str, dict[str, Any]]:
    """``('parameters'|'artifacts', definition)`` for a channel entering/leaving a sub-DAG."""
    if channel.is_artifact:
        entry: dict[str, Any] = {"artifactType": _artifact_type(channel.channel_type)}
        if channel.is_artifact_list:
            entry["isArtifactList"] = True
        return "artifacts", entry
    if isinstance(channel, Collected):
        return "parameters", {"parameterType": "LIST"}
    return "parameters", {"parameterType": channel.ir_type or "STRING"}


def dag_outputs(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A DAG's ``outputs``: artifact selectors, parameter (or OneOf) selectors by key."""
    result: dict[str, Any] = {}
    for name, out in outputs.items():
        if out["artifact"]:
            result.setdefault("artifacts", {})[name] = {"artifactSelectors": [
                {"producerSubtask": p, "outputArtifactKey": k} for p, k in out["selectors"]]}
        elif out.get("oneof"):
            result.setdefault("parameters", {})[name] = {"valueFromOneof": {
                "parameterSelectors": [{"producerSubtask": p, "outputParameterKey": k}
                                       for p, k in out["selectors"]]}}
        else:
            producer, key = out["selectors"][0]
            result.setdefault("parameters", {})[name] = {"valueFromParameter": {
                "producerSubtask": producer, "outputParameterKey": key}}
    return result


def replace_text(value: Any, old: str, new: str) -> Any:
    """``value`` with ``old`` replaced by ``new`` in every string inside it."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list | tuple):
        return [replace_text(v, old, new) for v in value]
    if isinstance(value, dict):
        return {replace_text(k, old, new): replace_text(v, old, new) for k, v in value.items()}
    return value


def sort_keys(value: Any) -> Any:
    """The IR with mapping keys sorted, as kfp's YAML writer orders them."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value
