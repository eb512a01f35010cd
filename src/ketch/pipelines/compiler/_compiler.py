"""``Compiler().compile(pipeline_func, package_path)``: kfp's compiler interface."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ketch.pipelines.compiler._ir_parts import to_value
from ketch.pipelines.dsl._pipeline import CompileError, GraphComponent

__all__ = ["Compiler", "compile_pipeline", "write_ir"]


def compile_pipeline(pipeline_func: Any, *, pipeline_name: str | None = None,
                     pipeline_parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The IR dict of a ``@dsl.pipeline``, with an optional new name and new defaults.

    Raises:
        CompileError: ``pipeline_func`` is not a pipeline, or a parameter is unknown.
    """
    if not isinstance(pipeline_func, GraphComponent):
        raise CompileError(f"{pipeline_func!r} is not a @dsl.pipeline function")
    spec = copy.deepcopy(pipeline_func.pipeline_spec)
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
