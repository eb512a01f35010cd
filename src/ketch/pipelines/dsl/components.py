"""``kfp.components``: components loaded from YAML, in either of KFP's formats.

- v1 component YAML (``name``/``inputs``/``outputs``/``implementation.container`` with
  ``{inputValue: x}``, ``{outputPath: y}``, ``concat``, ``if``/``isPresent`` placeholders),
  converted as kfp 2.16.1 converts it;
- v2 IR YAML (a compiled component or pipeline): a single container component is used as
  such, anything else as a sub-pipeline.
"""

from __future__ import annotations

import copy
import re
import urllib.request
from pathlib import Path
from typing import Any

from ketch.pipelines.dsl._artifacts import SCHEMA_TITLE_TO_TYPE, Artifact
from ketch.pipelines.dsl._component import BaseComponent, ContainerSpec, IOSpec, Signature
from ketch.pipelines.dsl._placeholders import ConcatPlaceholder, IfPresentPlaceholder, Placeholder
from ketch.pipelines.dsl._task import sanitize_name
from ketch.pipelines.dsl._types import ir_parameter_type

__all__ = ["YamlComponent", "load_component_from_file", "load_component_from_text",
           "load_component_from_url"]

_IR_TYPE_NAMES = {"STRING": "String", "NUMBER_INTEGER": "Integer", "NUMBER_DOUBLE": "Float",
                  "BOOLEAN": "Boolean", "LIST": "List", "STRUCT": "Dict",
                  "TASK_FINAL_STATUS": "PipelineTaskFinalStatus"}
_ARTIFACT_NAMES = {cls.schema_title.split(".", 1)[1].lower(): cls
                   for cls in SCHEMA_TITLE_TO_TYPE.values()}


class YamlComponent(BaseComponent):
    """A component loaded from YAML; call it in a pipeline like any component.

    Container-backed components carry ``container`` (and ``env``); an IR document that is
    a whole pipeline carries ``pipeline_spec`` and compiles as a sub-pipeline.
    """

    def __init__(self, name: str, signature: Signature, *, text: str,
                 container: ContainerSpec | None = None, env: dict[str, Any] | None = None,
                 pipeline_spec: dict[str, Any] | None = None,
                 description: str | None = None) -> None:
        super().__init__(name, signature, description)
        self.component_yaml = text
        self.container = container
        self.env = dict(env or {})
        self.pipeline_spec = pipeline_spec


def artifact_class(schema_title: str, schema_version: str = "0.0.1") -> type[Artifact]:
    """The artifact class for a schema title (a new one for titles ketch does not ship)."""
    if schema_title in SCHEMA_TITLE_TO_TYPE:
        return SCHEMA_TITLE_TO_TYPE[schema_title]
    name = re.sub(r"\W", "_", schema_title)
    cls: type[Artifact] = type(name, (Artifact,), {"schema_title": schema_title,
                                                   "schema_version": schema_version})
    return cls


def _input_name(name: str) -> str:
    return re.sub(r"[^_0-9a-z]+", "_", name.lower()).strip("_")


def _v1_default(type_: Any, default: Any) -> Any:
    if default is None or not isinstance(type_, str):
        return default
    kind = ir_parameter_type(type_)
    if kind == "NUMBER_INTEGER":
        return int(default)
    if kind == "NUMBER_DOUBLE":
        return float(default)
    if kind == "BOOLEAN":
        return str(default).strip().lower() in ("y", "yes", "t", "true", "on", "1")
    if kind in ("LIST", "STRUCT") and isinstance(default, str):
        import json

        try:
            return json.loads(default)
        except ValueError:
            return default
    return default if kind != "STRING" else str(default)


def _v1_type(type_: Any) -> tuple[Any, bool]:
    """(IOSpec type, is_artifact) for a v1 type: parameter names stay names."""
    if isinstance(type_, str):
        outer = type_.split("[", 1)[0].strip()
        if outer == "PipelineTaskFinalStatus":
            return outer, False
        if ir_parameter_type(outer) is not None and outer.lower() not in (
                "sequence", "mapping"):
            return outer, False
        if re.match(r"^google.[A-Za-z]+$", outer):
            return artifact_class(outer), True
        if outer.lower() in _ARTIFACT_NAMES:
            return _ARTIFACT_NAMES[outer.lower()], True
    return Artifact, True


def _v1_placeholder(arg: Any, outputs: dict[str, IOSpec]) -> Any:
    if isinstance(arg, str):
        return arg
    if not isinstance(arg, dict) or len(arg) != 1:
        raise ValueError(f"unexpected command-line element {arg!r}: expected a string or "
                         "a one-key placeholder")
    key, value = next(iter(arg.items()))
    if key == "inputValue":
        return Placeholder(f"{{{{$.inputs.parameters['{_input_name(value)}']}}}}")
    if key == "inputPath":
        return Placeholder(f"{{{{$.inputs.artifacts['{_input_name(value)}'].path}}}}")
    if key == "inputUri":
        return Placeholder(f"{{{{$.inputs.artifacts['{_input_name(value)}'].uri}}}}")
    if key == "outputPath":
        name = _input_name(value)
        if name not in outputs:
            raise ValueError(f"outputPath {value!r} names no output of the component")
        if outputs[name].is_artifact:
            return Placeholder(f"{{{{$.outputs.artifacts['{name}'].path}}}}")
        return Placeholder(f"{{{{$.outputs.parameters['{name}'].output_file}}}}")
    if key == "outputUri":
        return Placeholder(f"{{{{$.outputs.artifacts['{_input_name(value)}'].uri}}}}")
    if key == "executorInput":
        return "{{$}}"
    if key == "concat":
        return ConcatPlaceholder([_v1_placeholder(v, outputs) for v in value])
    if key == "if":
        cond = value["cond"]["isPresent"]
        then = value["then"]
        otherwise = value.get("else")
        then = ([_v1_placeholder(v, outputs) for v in then] if isinstance(then, list)
                else _v1_placeholder(then, outputs))
        if isinstance(otherwise, list):
            otherwise = [_v1_placeholder(v, outputs) for v in otherwise]
        return IfPresentPlaceholder(_input_name(cond), then, otherwise)
    raise ValueError(f"unknown placeholder {key!r} in {arg!r}")


def _from_v1(doc: dict[str, Any], text: str) -> YamlComponent:
    container = (doc.get("implementation") or {}).get("container")
    if not isinstance(container, dict) or "image" not in container:
        raise ValueError("implementation.container.image is required (only container "
                         "implementations are supported)")
    signature = Signature()
    for spec in doc.get("inputs") or []:
        type_, is_artifact = _v1_type(spec.get("type"))
        optional = bool(spec.get("optional", False)) or "default" in spec
        default = _v1_default(spec.get("type"), spec.get("default"))
        io = IOSpec(type=type_, is_artifact=is_artifact, optional=optional or (
            type_ == "PipelineTaskFinalStatus"))
        if not is_artifact and default is not None:
            io.has_default, io.default = True, default
        signature.inputs[_input_name(spec["name"])] = io
    for spec in doc.get("outputs") or []:
        type_, is_artifact = _v1_type(spec.get("type"))
        signature.outputs[_input_name(spec["name"])] = IOSpec(type=type_,
                                                              is_artifact=is_artifact)
    command = [_v1_placeholder(c, signature.outputs) for c in container.get("command") or []]
    args = [_v1_placeholder(c, signature.outputs) for c in container.get("args") or []]
    env = {k: _v1_placeholder(v, signature.outputs)
           for k, v in (container.get("env") or {}).items()}
    return YamlComponent(str(doc.get("name") or "component"), signature, text=text,
                         container=ContainerSpec(image=container["image"], command=command,
                                                 args=args),
                         env=env, description=doc.get("description"))


def _ir_signature(spec: dict[str, Any]) -> Signature:
    signature = Signature()
    for side, target in (("inputDefinitions", signature.inputs),
                         ("outputDefinitions", signature.outputs)):
        defs = spec.get(side) or {}
        for name, entry in (defs.get("parameters") or {}).items():
            io = IOSpec(type=_IR_TYPE_NAMES.get(entry.get("parameterType"), "String"),
                        optional=bool(entry.get("isOptional")),
                        description=entry.get("description"))
            if "defaultValue" in entry:
                io.has_default, io.default = True, entry["defaultValue"]
            target[name] = io
        for name, entry in (defs.get("artifacts") or {}).items():
            kind = entry.get("artifactType") or {}
            target[name] = IOSpec(
                type=artifact_class(kind.get("schemaTitle", "system.Artifact"),
                                    kind.get("schemaVersion", "0.0.1")),
                is_artifact=True, is_artifact_list=bool(entry.get("isArtifactList")),
                optional=bool(entry.get("isOptional")), description=entry.get("description"))
    return signature


def _from_ir(doc: dict[str, Any], text: str) -> YamlComponent:
    from ketch.pipelines.compiler._loader import validate_ir

    validate_ir(doc, source="component YAML")
    raw_name = str(doc["pipelineInfo"]["name"])
    key = f"comp-{sanitize_name(raw_name)}"
    spec = (doc.get("components") or {}).get(key, doc["root"])
    signature = _ir_signature(spec)
    executor = ((doc.get("deploymentSpec") or {}).get("executors") or {}).get(
        f"exec-{sanitize_name(raw_name)}")
    if executor is not None and "container" in executor:
        container = executor["container"]
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        return YamlComponent(raw_name, signature, text=text, env=env, container=ContainerSpec(
            image=container["image"], command=container.get("command"),
            args=container.get("args")))
    return YamlComponent(raw_name, _ir_signature(doc["root"]), text=text,
                         pipeline_spec=copy.deepcopy(doc))


def load_component_from_text(text: str) -> YamlComponent:
    """A component from YAML text (v1 component YAML or v2 IR YAML).

    Raises:
        ValueError: The YAML is not a component; the message says what is missing.
    """
    import yaml

    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    if not docs or not isinstance(docs[0], dict):
        raise ValueError("component YAML: expected a mapping")
    doc = docs[0]
    if "implementation" in doc:
        return _from_v1(doc, text)
    if "pipelineInfo" in doc:
        return _from_ir(doc, text)
    raise ValueError("component YAML: expected v1 'implementation' or IR 'pipelineInfo'")


def load_component_from_file(file_path: str | Path) -> YamlComponent:
    """A component from a YAML file."""
    return load_component_from_text(Path(file_path).read_text())


def load_component_from_url(url: str, auth: Any = None) -> YamlComponent:
    """A component from YAML at ``url`` (``auth``, if given, is a ``requests``-style
    callable that adds headers to the request)."""
    request = urllib.request.Request(url)
    if auth is not None:
        auth(request)
    with urllib.request.urlopen(request, timeout=60) as response:
        return load_component_from_text(response.read().decode())
