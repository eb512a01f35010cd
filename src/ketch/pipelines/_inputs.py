"""What a step sees: KFP's ``executor_input``, and placeholders in a container's argv.

Both follow KFP's driver: parameter values are JSON values typed by the component's
``parameterType``; artifacts carry ``name``, ``uri``, ``metadata`` and their type's
``schemaTitle``; output parameters go to files under the task's directory and the
executor writes ``executor_output.json`` there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ketch.core.errors import FieldError, InvalidError
from ketch.pipelines._ir import ComponentSpec, PipelineSpec
from ketch.pipelines._paths import under

__all__ = ["coerce_parameter", "executor_input", "output_file", "resolve_placeholders",
           "root_arguments", "runtime_placeholders"]

OUTPUT_FILE = "executor_output.json"
_TYPES = {"STRING": str, "NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "BOOLEAN": bool,
          "LIST": list, "STRUCT": dict}


def coerce_parameter(value: Any, parameter_type: str | None, where: str) -> Any:
    """``value`` as the IR type says (a CLI's ``"3"`` for an integer input is 3)."""
    want = _TYPES.get(parameter_type or "")
    if want is None or value is None:
        return value
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, want) and not (want is int and isinstance(value, bool)):
        return value
    if isinstance(value, str) and want is not str:
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if want is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            parsed = value.lower() == "true"
        if want is float and isinstance(parsed, int) and not isinstance(parsed, bool):
            parsed = float(parsed)
        if isinstance(parsed, want) and not (want is int and isinstance(parsed, bool)):
            return parsed
    if want is str and isinstance(value, (int, float, bool)):
        return json.dumps(value) if isinstance(value, bool) else str(value)
    raise InvalidError("invalid pipeline argument", [FieldError(
        where, f"expected {parameter_type}, got {type(value).__name__} {value!r}")])


def output_file(meta: str) -> str:
    """The executor output file of an attempt whose files are under ``meta``."""
    return under(meta, OUTPUT_FILE, where="outputs.outputFile")


def executor_input(component: ComponentSpec, params: Mapping[str, Any],
                   artifacts: Mapping[str, list[dict[str, Any]]], meta: str,
                   output_uri: str) -> dict[str, Any]:
    """KFP's ``ExecutorInput`` JSON for one attempt of one step. ``meta``: where the
    attempt's executor output and output parameter files go, a local path or a URI
    under the run's artifact root (a staged step writes them locally and uploads them)."""
    out_params = {name: {"outputFile": str(under(meta, "outputs", name,
                                                 where=f"outputs.parameters.{name}"))}
                  for name in component.output_params}
    out_artifacts = {}
    for name, spec in component.output_artifacts.items():
        schema = (spec.get("artifactType") or {}).get("schemaTitle", "system.Artifact")
        out_artifacts[name] = {"artifacts": [{
            "name": name, "uri": under(output_uri, name, where=f"outputs.artifacts.{name}"),
            "type": {"schemaTitle": schema}, "metadata": {}}]}
    return {
        "inputs": {
            "parameterValues": dict(params),
            "artifacts": {name: {"artifacts": [_wire_artifact(a) for a in arts]}
                          for name, arts in artifacts.items()},
        },
        "outputs": {"parameters": out_params, "artifacts": out_artifacts,
                    "outputFile": output_file(meta)},
    }


def _wire_artifact(art: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": art.get("name", ""), "uri": art["uri"], "metadata": art.get("metadata") or {},
            "type": {"schemaTitle": art.get("type", "system.Artifact")}}


_PLACEHOLDER = re.compile(r"\{\{\$(?:\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\]"
                          r"(?:\.([a-z_]+))?|\.([a-z_]+))?\}\}")


def runtime_placeholders(*, job_name: str, job_id: str, task_name: str, task_id: str,
                         pipeline_root: str, create_time: str,
                         schedule_time: str) -> dict[str, str]:
    return {"pipeline_job_name": job_name, "pipeline_job_uuid": job_id,
            "pipeline_task_name": task_name, "pipeline_task_uuid": task_id,
            "pipeline_root": pipeline_root, "pipeline_job_create_time_utc": create_time,
            "pipeline_job_schedule_time_utc": schedule_time}


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _one(text: str, inputs: Mapping[str, Any], runtime: Mapping[str, str],
         mount_root: str | None = None) -> str:
    def path_of(uri: str) -> str:
        # A staged step reads and writes local copies under its mount root (kfp's /s3/...).
        if mount_root is None:
            return uri
        from ketch.pipelines.dsl._artifacts import local_path_for_uri

        return local_path_for_uri(uri, mount_root=mount_root)

    def sub(match: re.Match[str]) -> str:
        section, kind, key, attr, runtime_name = match.groups()
        if runtime_name is not None:
            if runtime_name in runtime:
                return runtime[runtime_name]
        elif section is None:
            return json.dumps(inputs)
        ins, outs = inputs["inputs"], inputs["outputs"]
        if section == "inputs" and kind == "parameters":
            if attr is None and key in ins["parameterValues"]:
                return _param_text(ins["parameterValues"][key])
        elif section == "inputs":
            if key in ins["artifacts"] and ins["artifacts"][key]["artifacts"]:
                art = ins["artifacts"][key]["artifacts"][0]
                if attr == "uri":
                    return str(art["uri"])
                if attr == "path":
                    return path_of(str(art["uri"]))
                if attr == "metadata":
                    return json.dumps(art.get("metadata") or {})
        elif section == "outputs" and kind == "parameters":
            if attr == "output_file" and key in outs["parameters"]:
                return str(outs["parameters"][key]["outputFile"])
        elif section == "outputs" and attr in ("uri", "path") and key in outs["artifacts"]:
            uri = str(outs["artifacts"][key]["artifacts"][0]["uri"])
            return path_of(uri) if attr == "path" else uri
        raise InvalidError("unknown placeholder", [FieldError(
            "deploymentSpec.executors.container", f"cannot resolve {match.group(0)}")])

    return _PLACEHOLDER.sub(sub, text)


def _has_input(name: str, inputs: Mapping[str, Any]) -> bool:
    ins = inputs["inputs"]
    return name in ins["parameterValues"] or name in ins["artifacts"]


def _structured(node: Any, inputs: Mapping[str, Any], runtime: Mapping[str, str],
                mount_root: str | None = None) -> list[str]:
    """``{"Concat": [...]}`` and ``{"IfPresent": {...}}`` as KFP serializes them."""
    if isinstance(node, str):
        return [_one(node, inputs, runtime, mount_root)]
    if isinstance(node, dict) and "Concat" in node:
        return ["".join(part for item in node["Concat"]
                        for part in _structured(item, inputs, runtime, mount_root))]
    if isinstance(node, dict) and "IfPresent" in node:
        spec = node["IfPresent"]
        branch = spec.get("Then") if _has_input(spec["InputName"], inputs) else spec.get("Else")
        if branch is None:
            return []
        items = branch if isinstance(branch, list) else [branch]
        return [part for item in items
                for part in _structured(item, inputs, runtime, mount_root)]
    raise InvalidError("unknown placeholder", [FieldError(
        "deploymentSpec.executors.container", f"cannot resolve {node!r}")])


def resolve_placeholders(argv: list[str], inputs: Mapping[str, Any],
                         runtime: Mapping[str, str], *,
                         mount_root: str | None = None) -> list[str]:
    """A container's command + args with every placeholder filled in. With
    ``mount_root`` (a staged step), artifact ``.path`` placeholders are the local copies
    under it; without, an artifact's path is its URI (a local store)."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("{\"") and arg.endswith("}"):
            try:
                node = json.loads(arg)
            except ValueError:
                node = None
            if isinstance(node, dict) and ("Concat" in node or "IfPresent" in node):
                out.extend(_structured(node, inputs, runtime, mount_root))
                continue
        out.append(_one(arg, inputs, runtime, mount_root))
    return out


def root_arguments(spec: PipelineSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    """The run's arguments checked against the pipeline's inputs, typed, with defaults.

    Raises ``InvalidError`` naming ``spec.arguments.X`` for an unknown, missing or
    mistyped argument.
    """
    inputs = spec.root.input_params
    unknown = [k for k in arguments if k not in inputs and k not in spec.root.input_artifacts]
    errors = [FieldError(f"spec.arguments.{k}", f"pipeline {spec.name!r} has no input {k!r}; "
                         f"its inputs: {', '.join(sorted(inputs)) or 'none'}") for k in unknown]
    values: dict[str, Any] = {}
    for name, definition in inputs.items():
        if name in arguments:
            try:
                values[name] = coerce_parameter(arguments[name], definition.get("parameterType"),
                                                f"spec.arguments.{name}")
            except InvalidError as err:
                errors.extend(err.fields)
        elif "defaultValue" in definition:
            values[name] = coerce_parameter(definition["defaultValue"],
                                            definition.get("parameterType"),
                                            f"root.inputDefinitions.parameters.{name}")
        elif not definition.get("isOptional"):
            errors.append(FieldError(f"spec.arguments.{name}",
                                     f"required input of pipeline {spec.name!r} is missing"))
    if errors:
        raise InvalidError("invalid pipeline arguments", errors)
    return values
