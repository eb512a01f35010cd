"""``load_pipeline_file``: a ``.py`` with ``@dsl.pipeline`` functions, or compiled IR
YAML/JSON, to the IR dict the engine runs."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from ketch.core.errors import FieldError, InvalidError

__all__ = ["load_pipeline_file", "validate_ir"]

_counter = itertools.count()


def load_pipeline_file(path: str | Path, name: str | None = None) -> dict[str, Any]:
    """The IR ``PipelineSpec`` dict of a pipeline file.

    Args:
        path: A ``.py`` file (written with ``from kfp import dsl`` or ``from ketch import
            dsl``) or an IR file (``.yaml``, ``.yml``, ``.json``) from any kfp v2 compiler.
        name: Which pipeline of a ``.py`` holding several (function or pipeline name).

    Raises:
        InvalidError: The file is missing, does not compile or parse, or ``name`` is
            ambiguous/unknown; the message names the file and the field.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidError("no such file", source=str(file))
    if file.suffix == ".py":
        return _from_python(file, name)
    import yaml

    try:
        text = file.read_text()
        if file.suffix == ".json":
            doc = json.loads(text)
        else:
            # kfp may append a second document (the platform spec); the first is the IR.
            # libyaml's loader where PyYAML has it: the pure-Python one took 0.7 s for a
            # 120-task IR (kfp writes a component and an executor per task), a tenth of
            # that run's time. Same safe constructor, same documents.
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            docs = [d for d in yaml.load_all(text, Loader=loader) if d is not None]
            doc = docs[0] if docs else None
    except (ValueError, UnicodeDecodeError, yaml.YAMLError) as err:
        detail = " ".join(str(err).split())
        raise InvalidError(f"not valid YAML/JSON: {detail}", source=str(file)) from None
    validate_ir(doc, source=str(file))
    return doc  # type: ignore[no-any-return]


def _pipelines_in(module: Any) -> dict[str, Any]:
    from ketch.pipelines.dsl._pipeline import GraphComponent

    found: dict[str, Any] = {}
    for attr, value in vars(module).items():
        if isinstance(value, GraphComponent) or (
                type(value).__name__ == "GraphComponent" and hasattr(value, "pipeline_spec")):
            found[attr] = value
    return found


def _components_in(module: Any) -> dict[str, Any]:
    from ketch.pipelines.dsl._component import BaseComponent
    from ketch.pipelines.dsl._pipeline import GraphComponent

    return {attr: value for attr, value in vars(module).items()
            if isinstance(value, BaseComponent) and not isinstance(value, GraphComponent)}


def _spec_of(component: Any) -> dict[str, Any]:
    spec = component.pipeline_spec
    if isinstance(spec, dict):
        return spec
    # The real kfp was importable: its GraphComponent holds a protobuf message.
    json_format = importlib.import_module("google.protobuf.json_format")
    return json_format.MessageToDict(spec)  # type: ignore[no-any-return]


def _from_python(file: Path, name: str | None) -> dict[str, Any]:
    from ketch.pipelines.dsl._pipeline import CompileError
    from ketch.pipelines.executor import install_kfp_alias

    install_kfp_alias()
    # The file's own name, as ``import`` would give it (custom artifact classes defined in
    # it are imported by that name in the steps); a unique one if that name is taken.
    module_name = file.stem if file.stem.isidentifier() and file.stem not in sys.modules \
        else f"_ketch_pipeline_{next(_counter)}_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise InvalidError("cannot be imported as Python", source=str(file))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent))
    sys.modules[module_name] = module
    before = set(sys.modules)
    try:
        spec.loader.exec_module(module)
    except CompileError as err:
        raise InvalidError(err.message, fields=[], source=str(file)) from None
    except SyntaxError as err:
        raise InvalidError(f"line {err.lineno}: {err.msg}", source=str(file)) from None
    except Exception as err:  # the user's module failed while defining its pipelines
        raise InvalidError(f"{type(err).__name__}: {err}", source=str(file)) from None
    finally:
        sys.modules.pop(module_name, None)
        if sys.path and sys.path[0] == str(file.parent):
            sys.path.pop(0)
        _forget_siblings(before, file.parent)
    pipelines = _pipelines_in(module)
    if name is not None:
        chosen = [v for k, v in pipelines.items() if name in (k, getattr(v, "name", None))]
        if chosen:
            return _spec_of(chosen[0])
        # A lone component compiles too (kfp's Compiler does the same).
        components = _components_in(module)
        picked = [v for k, v in components.items() if name in (k, v.name)]
        if picked:
            from ketch.pipelines.compiler._compiler import component_pipeline_spec

            return component_pipeline_spec(picked[0])
        raise InvalidError(f"--pipeline {name!r}: no such pipeline or component (pipelines: "
                           f"{', '.join(sorted(pipelines)) or 'none'}; components: "
                           f"{', '.join(sorted(components)) or 'none'})", source=str(file))
    if not pipelines:
        names = sorted(_components_in(module))
        hint = (f" (components: {', '.join(names)}; compile one with --pipeline NAME)"
                if names else "")
        raise InvalidError(f"holds no @dsl.pipeline function{hint}", source=str(file))
    if len(pipelines) > 1:
        # A pipeline used as a component of another is not a candidate on its own.
        used = {id(t.component) for p in pipelines.values()
                for t in getattr(getattr(p, "pipeline", None), "tasks", {}).values()}
        top = {k: v for k, v in pipelines.items() if id(v) not in used}
        if len(top) == 1:
            return _spec_of(next(iter(top.values())))
        raise InvalidError(f"holds several pipelines ({', '.join(sorted(pipelines))}); "
                           "choose one with --pipeline NAME", source=str(file))
    return _spec_of(next(iter(pipelines.values())))


def _forget_siblings(before: set[str], directory: Path) -> None:
    """Drop modules the pipeline file imported from its own directory, so that another
    pipeline file with a same-named helper module gets its own (and memory is freed in a
    long-running server)."""
    root = str(directory.resolve())
    for name in set(sys.modules) - before:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if origin and str(Path(origin).resolve()).startswith(root + "/"):
            del sys.modules[name]


def validate_ir(doc: Any, *, source: str = "<ir>") -> None:
    """Check the IR's structure: required fields, references between its parts.

    Raises:
        InvalidError: Naming each wrong field path.
    """
    if not isinstance(doc, dict):
        raise InvalidError("not a pipeline: expected a mapping (PipelineSpec)", source=source)
    errors: list[FieldError] = []
    for key in ("pipelineInfo", "root"):
        if not isinstance(doc.get(key), dict):
            errors.append(FieldError(key, "required mapping is missing"))
    if not errors and not isinstance(doc["pipelineInfo"].get("name"), str):
        errors.append(FieldError("pipelineInfo.name", "required string is missing"))
    components = doc.get("components") or {}
    executors = (doc.get("deploymentSpec") or {}).get("executors") or {}
    if not isinstance(components, dict):
        errors.append(FieldError("components", "must be a mapping"))
        components = {}
    dags = [("root", doc.get("root") or {})] + [
        (f"components.{k}", v) for k, v in components.items() if isinstance(v, dict)]
    for path, comp in dags:
        if "executorLabel" in comp and comp["executorLabel"] not in executors:
            errors.append(FieldError(f"{path}.executorLabel",
                                     f"no executor {comp['executorLabel']!r} in "
                                     "deploymentSpec.executors"))
        tasks = (comp.get("dag") or {}).get("tasks") or {}
        if path == "root" and not isinstance(comp.get("dag"), dict):
            errors.append(FieldError("root.dag", "required mapping is missing"))
        for task_name, task in tasks.items():
            ref = ((task or {}).get("componentRef") or {}).get("name")
            if ref not in components:
                errors.append(FieldError(f"{path}.dag.tasks.{task_name}.componentRef.name",
                                         f"no component {ref!r} in components"))
            for dep in (task or {}).get("dependentTasks") or []:
                if dep not in tasks:
                    errors.append(FieldError(f"{path}.dag.tasks.{task_name}.dependentTasks",
                                             f"no task {dep!r} in this DAG"))
    if errors:
        raise InvalidError("invalid pipeline IR", fields=errors, source=source)
