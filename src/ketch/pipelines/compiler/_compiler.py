"""``Compiler().compile(pipeline_func, package_path)``: kfp's compiler interface."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ketch.pipelines.compiler._ir_parts import to_value
from ketch.pipelines.dsl._component import BaseComponent
from ketch.pipelines.dsl._pipeline import CompileError, GraphComponent, Pipeline

__all__ = ["Compiler", "compile_pipeline", "write_ir"]


def compile_pipeline(pipeline_func: Any, *, pipeline_name: str | None = None,
                     pipeline_parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The IR dict of a ``@dsl.pipeline``, with an optional new name and new defaults.

    Raises:
        CompileError: ``pipeline_func`` is not a pipeline, or a parameter is unknown.
    """
    if isinstance(pipeline_func, GraphComponent):
        spec = copy.deepcopy(pipeline_func.pipeline_spec)
    elif isinstance(pipeline_func, BaseComponent):
        spec = component_pipeline_spec(pipeline_func)
    else:
        raise CompileError(f"{pipeline_func!r} is not a @dsl.pipeline function or a "
                           "component")
    if pipeline_name:
        spec["pipelineInfo"]["name"] = pipeline_name
    params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for key, value in (pipeline_parameters or {}).items():
        if key not in params:
            raise CompileError(f"pipeline {spec['pipelineInfo']['name']!r} has no parameter "
                               f"{key!r} (parameters: {', '.join(params) or 'none'})",
                               parameter=key)
        params[key]["defaultValue"] = to_value(value)
        params[key]["isOptional"] = True
    return spec


class _ComponentAsPipeline:
    """A lone component seen as a one-task pipeline: kfp compiles a component that way
    (root inputs and outputs are the component's)."""

    def __init__(self, component: BaseComponent) -> None:
        from ketch.pipelines.dsl._channels import PipelineChannel
        from ketch.pipelines.dsl._task import sanitize_name

        self.name = sanitize_name(component.name)
        self.inputs = component.inputs
        self.outputs = component.outputs
        self.description: str | None = None
        self.display_name: str | None = None
        self.pipeline_root: str | None = None
        self.pipeline = Pipeline(self.name)
        with self.pipeline:
            arguments = {key: PipelineChannel(key, spec.type, is_artifact=spec.is_artifact,
                                              is_artifact_list=spec.is_artifact_list)
                         for key, spec in component.inputs.items()}
            for channel in arguments.values():
                self.pipeline.register_channel(channel)
            task = self.pipeline.add_task(component, arguments)
        self.returned = dict(task.outputs)


def component_pipeline_spec(component: BaseComponent) -> dict[str, Any]:
    """The IR of a single component, as ``Compiler().compile(component, ...)`` writes."""
    from ketch.pipelines.compiler._builder import _Builder

    return _Builder(_ComponentAsPipeline(component)).build()  # type: ignore[arg-type]


def _header(spec: dict[str, Any]) -> str:
    info = spec.get("pipelineInfo", {})
    lines = ["# PIPELINE DEFINITION", f"# Name: {info.get('name', '')}"]
    if info.get("description"):
        lines.append(f"# Description: {info['description']}")
    return "\n".join(lines) + "\n"


def write_ir(spec: dict[str, Any], package_path: str | Path) -> None:
    """Write the IR as YAML (or JSON for a ``.json`` path), atomically."""
    import yaml

    path = Path(package_path)
    if path.suffix == ".json":
        text = json.dumps(spec, indent=2, sort_keys=True)
    else:
        text = _header(spec) + yaml.safe_dump(spec, sort_keys=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class Compiler:
    """Compiles pipelines to KFP's IR YAML, as ``kfp.compiler.Compiler`` does."""

    def compile(self, pipeline_func: Any, package_path: str,
                pipeline_name: str | None = None,
                pipeline_parameters: dict[str, Any] | None = None,
                type_check: bool = True, **kwargs: Any) -> None:
        """Write ``pipeline_func``'s IR to ``package_path`` (``.yaml`` or ``.json``)."""
        del type_check, kwargs
        write_ir(compile_pipeline(pipeline_func, pipeline_name=pipeline_name,
                                  pipeline_parameters=pipeline_parameters), package_path)
