"""The in-task executor: run a lightweight component's function as
``kfp.dsl.executor_main`` does, from the IR's embedded source and an executor input.

The engine pre-imports this module in a warm worker and forks a child per task, so it
imports only the standard library and ketch's small DSL type modules; nothing heavy.

Contract (kfp's): ``executor_input`` is the ExecutorInput JSON (``inputs.parameterValues``,
``inputs.artifacts``, ``outputs.parameters[*].outputFile``, ``outputs.artifacts``,
``outputs.outputFile``). The function is called with parameters, artifact objects or
paths; what it returns and every output artifact's URI and metadata are written to
``outputs.outputFile`` as the ExecutorOutput JSON; parameters the function wrote through
``OutputPath`` files are read back into it too, so the caller has one file to read.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import linecache
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from ketch.pipelines.dsl import _artifacts as artifacts
from ketch.pipelines.dsl import _types as t

__all__ = ["install_kfp_alias", "main", "run_lightweight"]

# kfp module name -> the ketch module that stands in for it.
_ALIASES = {
    "kfp": "ketch.pipelines.dsl._kfp",
    "kfp.dsl": "ketch.pipelines.dsl",
    "kfp.dsl.types": "ketch.pipelines.dsl._types",
    "kfp.dsl.types.artifact_types": "ketch.pipelines.dsl._artifacts",
    "kfp.dsl.types.type_annotations": "ketch.pipelines.dsl._types",
    "kfp.dsl.task_final_status": "ketch.pipelines.dsl._types",
    "kfp.dsl.executor": "ketch.pipelines.executor",
    "kfp.dsl.executor_main": "ketch.pipelines.executor",
    "kfp.compiler": "ketch.pipelines.compiler",
    "kfp.components": "ketch.pipelines.dsl.components",
    "kfp.v2": "ketch.pipelines.dsl._kfp_v2",
    "kfp.v2.dsl": "ketch.pipelines.dsl",
    "kfp.v2.compiler": "ketch.pipelines.compiler",
    "kfp.v2.components": "ketch.pipelines.dsl.components",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``kfp`` and its submodules that generated code uses to ketch modules."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in _ALIASES:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return importlib.import_module(_ALIASES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        return None


_finder = _AliasFinder()


def install_kfp_alias() -> bool:
    """Make ``import kfp`` / ``from kfp import dsl`` / ``from kfp.dsl import *`` resolve to
    ketch when the real kfp is not importable.

    Returns:
        True if the alias is (now) active, False if the real kfp is installed and wins.
    """
    if _finder in sys.meta_path:
        return True
    if "kfp" not in sys.modules:
        try:
            if importlib.util.find_spec("kfp") is not None:
                return False
        except (ImportError, ValueError):
            pass
    elif getattr(sys.modules["kfp"], "__ketch_alias__", False) is False:
        return False
    sys.meta_path.insert(0, _finder)
    return True


# --- building the call ------------------------------------------------------------------


def _artifact(runtime: dict[str, Any], fallback: type[artifacts.Artifact]) -> artifacts.Artifact:
    title = (runtime.get("type") or {}).get("schemaTitle", "")
    cls = artifacts.SCHEMA_TITLE_TO_TYPE.get(title, fallback)
    return cls(name=runtime.get("name", ""), uri=runtime.get("uri", ""),
               metadata=dict(runtime.get("metadata") or {}))


def _integral(value: Any) -> Any:
    """Integral doubles back to ints inside lists and dicts: the IR stores every number
    as a protobuf double, and KFP's launcher hands ``1.0`` to the step as ``1``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _coerce(value: Any, annotation: Any) -> Any:
    """A parameter value as the function's annotation wants it (see :func:`_integral`)."""
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float:
        return value
    return _integral(value)


class _Call:
    def __init__(self, func: Callable[..., Any], executor_input: dict[str, Any]) -> None:
        self.func = func
        self.executor_input = executor_input
        self.inputs = executor_input.get("inputs") or {}
        self.outputs = executor_input.get("outputs") or {}
        self.hints = typing.get_type_hints(func, include_extras=True)
        self.output_artifacts: dict[str, Any] = {}
        self.output_param_paths: dict[str, tuple[str, Any]] = {}
        for name, entry in (self.outputs.get("artifacts") or {}).items():
            listed = entry.get("artifacts") or []
            if listed:
                annotation = self.hints.get(name)
                fallback = _artifact_class(annotation)
                artifact = _artifact(listed[0], fallback)
                self.output_artifacts[name] = artifact
                _makedirs_for(artifact.path)

    def _input_artifacts(self, name: str, annotation: Any) -> Any:
        listed = ((self.inputs.get("artifacts") or {}).get(name) or {}).get("artifacts") or []
        inner = t.unwrap_marker(annotation)
        list_inner = t.artifact_list_inner(inner)
        if list_inner is not None:
            return [_artifact(a, list_inner) for a in listed]
        if not listed:
            return None
        return _artifact(listed[0], _artifact_class(annotation))

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments for the function, built from the executor input."""
        values = self.inputs.get("parameterValues") or {}
        result: dict[str, Any] = {}
        for name, raw in inspect.signature(self.func).parameters.items():
            annotation, _ = t.strip_optional(self.hints.get(name, raw.annotation))
            marker = t.marker_of(annotation)
            if marker == "output":
                result[name] = self.output_artifacts.get(name)
            elif t.is_output_path(annotation):
                if name in self.output_artifacts:
                    result[name] = self.output_artifacts[name].path
                else:
                    entry = (self.outputs.get("parameters") or {}).get(name) or {}
                    path = entry.get("outputFile") or os.path.join(
                        os.path.dirname(self.outputs.get("outputFile", ".")), name)
                    _makedirs_for(path)
                    self.output_param_paths[name] = (path, annotation.type)
                    result[name] = path
            elif t.is_input_path(annotation):
                artifact = self._input_artifacts(name, annotation)
                if artifact is None:
                    raise ValueError(f"no input artifact {name!r} in the executor input")
                result[name] = artifact.path
            elif marker == "input" or t.is_artifact_class(annotation) or \
                    t.artifact_list_inner(annotation) is not None:
                value = self._input_artifacts(name, annotation)
                if value is not None:
                    result[name] = value
            elif _is_final_status(annotation):
                status = values.get(name) or {}
                result[name] = t.PipelineTaskFinalStatus(
                    state=status.get("state", ""),
                    pipeline_job_resource_name=status.get(
                        "pipelineJobResourceName", status.get("pipeline_job_resource_name", "")),
                    pipeline_task_name=status.get(
                        "pipelineTaskName", status.get("pipeline_task_name", "")),
                    error_code=(status.get("error") or {}).get("code"),
                    error_message=(status.get("error") or {}).get("message"))
            elif name in values:
                result[name] = _coerce(values[name], annotation)
        return result

    def write_outputs(self, returned: Any) -> None:
        """Write the ExecutorOutput for what the function returned and wrote."""
        output: dict[str, Any] = {}
        params: dict[str, Any] = {}
        annotation = self.hints.get("return", inspect.Signature.empty)
        if returned is not None:
            fields = getattr(annotation, "_fields", None)
            if isinstance(annotation, type) and issubclass(annotation, tuple) and fields:
                if len(fields) != len(returned):
                    raise RuntimeError(f"expected {len(fields)} return values from "
                                       f"{self.func.__name__}, got {len(returned)}")
                field_types = typing.get_type_hints(annotation)
                for index, field in enumerate(fields):
                    value = returned[index] if type(returned) is tuple else getattr(
                        returned, field)
                    self._one_return(field, field_types[field], value, params)
            else:
                self._one_return("Output", annotation, returned, params)
        for name, (path, type_arg) in self.output_param_paths.items():
            if name not in params and os.path.exists(path):
                with open(path) as fh:
                    params[name] = _parse_parameter(fh.read(), type_arg)
        if params:
            output["parameterValues"] = params
        if self.output_artifacts:
            output["artifacts"] = {name: {"artifacts": [_runtime_artifact(a)]}
                                   for name, a in self.output_artifacts.items()}
        output_file = self.outputs.get("outputFile")
        if output_file:
            # Written in place, as kfp does: the caller reads it only after this process
            # exited 0, so a half-written file never counts (and a rename costs a sync).
            _makedirs_for(output_file)
            with open(output_file, "w") as fh:
                json.dump(output, fh)

    def _one_return(self, name: str, annotation: Any, value: Any,
                    params: dict[str, Any]) -> None:
        inner = t.unwrap_marker(annotation)
        if t.is_artifact_class(inner):
            if t.is_artifact_class(type(value)):  # ours or the real kfp's
                self.output_artifacts[name] = value
            else:
                artifact = self.output_artifacts.get(name)
                if artifact is None:
                    raise ValueError(f"no output artifact {name!r} in the executor input")
                with open(artifact.path, "w") as fh:
                    fh.write(str(value))
            return
        origin = typing.get_origin(annotation) or annotation
        accepted: Any = (int, float) if origin is float else origin
        if isinstance(accepted, type | tuple) and not isinstance(value, accepted):
            raise ValueError(f"function {self.func.__name__!r} returned {type(value)} for "
                             f"output {name!r}; want {annotation}")
        params[name] = value


def _runtime_artifact(artifact: Any) -> dict[str, Any]:
    entry = {"name": artifact.name, "uri": artifact.uri, "metadata": artifact.metadata}
    custom = getattr(artifact, "custom_path", "")
    if custom:  # set with .set_path(): where the step wrote it, as kfp reports it
        entry["custom_path"] = custom
    return entry


def _artifact_class(annotation: Any) -> type[artifacts.Artifact]:
    annotation, _ = t.strip_optional(annotation)
    if t.is_input_path(annotation) or t.is_output_path(annotation):
        return t.artifact_class_for(annotation.type)
    inner = t.unwrap_marker(annotation)
    inner = t.artifact_list_inner(inner) or inner
    return inner if t.is_artifact_class(inner) else artifacts.Artifact


def _is_final_status(annotation: Any) -> bool:
    return getattr(annotation, "__name__", "") == "PipelineTaskFinalStatus"


def _makedirs_for(path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


def _parse_parameter(text: str, type_arg: Any) -> Any:
    kind = t.ir_parameter_type(t.type_name(type_arg)) if type_arg is not None else "STRING"
    if kind == "STRING" or kind is None:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if kind == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- entry points -----------------------------------------------------------------------


def load_function(source: str, function_name: str) -> Callable[..., Any]:
    """Execute kfp-generated component source and return ``function_name`` from it."""
    install_kfp_alias()
    filename = f"<ephemeral_component:{function_name}>"
    # Registered so that tracebacks show the user's own source lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType("ephemeral_component")
    module.__file__ = filename
    sys.modules["ephemeral_component"] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    func = module.__dict__.get(function_name)
    if func is None:
        raise ValueError(f"the component source defines no function {function_name!r}")
    return getattr(func, "python_func", func)  # type: ignore[no-any-return]


def run_lightweight(source: str, function_name: str, executor_input: dict[str, Any]) -> None:
    """Run one lightweight component as ``kfp.dsl.executor_main`` does.

    Raises:
        Exception: Whatever the user's function raises; the caller prints the traceback
            on stderr and exits with status 1 (see :func:`main`).
    """
    func = load_function(source, function_name)
    call = _Call(func, executor_input)
    returned = func(**call.kwargs())
    call.write_outputs(returned)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ketch.pipelines.executor --executor_input JSON --function_to_execute F
    (--component_module_path FILE | --source FILE)``: exit 0, or 1 with the traceback."""
    parser = argparse.ArgumentParser(description="ketch lightweight component executor")
    parser.add_argument("--executor_input", required=True)
    parser.add_argument("--function_to_execute", required=True)
    parser.add_argument("--component_module_path", "--source", dest="source_path")
    args, _ = parser.parse_known_args(argv)
    try:
        with open(args.source_path) as fh:
            source = fh.read()
        run_lightweight(source, args.function_to_execute, json.loads(args.executor_input))
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
