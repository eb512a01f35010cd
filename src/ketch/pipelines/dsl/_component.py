"""Components: ``@dsl.component`` (a Python function), ``@dsl.container_component``
(a command line) and their input/output signatures."""

from __future__ import annotations

import functools
import inspect
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ketch.pipelines.dsl import _types as t
from ketch.pipelines.dsl._custom_types import custom_artifact_imports
from ketch.pipelines.dsl._docstrings import parse_docstring
from ketch.pipelines.dsl._placeholders import Placeholder

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "BaseComponent",
    "ContainerComponent",
    "ContainerSpec",
    "IOSpec",
    "PythonComponent",
    "component",
    "container_component",
    "signature_of",
]

DEFAULT_BASE_IMAGE = "python:3.11"  # kfp 2.16.1's default


@dataclass
class IOSpec:
    """One input or output of a component.

    ``type`` is a parameter type name (``int``, ``List[int]``) or an artifact class.
    ``kind`` says how a Python function receives it: ``param``, ``artifact``,
    ``input_path``, ``output_path`` or ``return``.
    """

    type: Any
    is_artifact: bool = False
    is_artifact_list: bool = False
    optional: bool = False
    has_default: bool = False
    default: Any = None
    kind: str = "param"
    description: str | None = None


@dataclass
class Signature:
    """A component's inputs and outputs, in declaration order."""

    inputs: dict[str, IOSpec] = field(default_factory=dict)
    outputs: dict[str, IOSpec] = field(default_factory=dict)


def _artifact_spec(cls: Any, kind: str, *, is_list: bool = False) -> IOSpec:
    return IOSpec(type=cls, is_artifact=True, is_artifact_list=is_list, kind=kind)


def _return_outputs(annotation: Any, where: str) -> dict[str, IOSpec]:
    if annotation in (inspect.Signature.empty, None, type(None)):
        return {}
    fields = getattr(annotation, "_fields", None)
    if isinstance(annotation, type) and issubclass(annotation, tuple) and fields:
        hints = typing.get_type_hints(annotation)
        result: dict[str, IOSpec] = {}
        for name in fields:
            if name not in hints:
                raise TypeError(f"{where}: NamedTuple field {name!r} needs a type")
            result[name] = next(iter(_return_outputs(hints[name], where).values()))
        return result
    inner = t.unwrap_marker(annotation)
    if t.is_artifact_class(inner):
        return {"Output": _artifact_spec(inner, "return")}
    list_inner = t.artifact_list_inner(inner)
    if list_inner is not None:  # a pipeline returning dsl.Collected artifacts
        return {"Output": _artifact_spec(list_inner, "return", is_list=True)}
    name = t.type_name(annotation)
    if t.ir_parameter_type(name) is None:
        raise TypeError(f"{where}: unsupported return type {name!r}; use str, int, float, "
                        "bool, list, dict, an artifact class or a NamedTuple of them")
    return {"Output": IOSpec(type=name, kind="return")}


def _output_spec(annotation: Any) -> IOSpec:
    """An ``Output[...]`` or ``OutputPath(...)`` parameter: an output of the component."""
    if t.is_output_path(annotation):
        type_arg = annotation.type
        name = t.type_name(type_arg) if type_arg is not None else "String"
        if not t.is_artifact_class(type_arg) and t.ir_parameter_type(name):
            return IOSpec(type=name, kind="output_path")
        return _artifact_spec(t.artifact_class_for(type_arg), "output_path")
    return _artifact_spec(t.unwrap_marker(annotation), "artifact")


def _input_spec(annotation: Any, where: str, name: str) -> IOSpec:
    if t.is_input_path(annotation):
        return _artifact_spec(t.artifact_class_for(annotation.type), "input_path")
    inner = t.unwrap_marker(annotation)
    list_inner = t.artifact_list_inner(inner)
    if t.marker_of(annotation) == "input" or t.is_artifact_class(inner) or list_inner:
        return _artifact_spec(list_inner or inner, "artifact", is_list=bool(list_inner))
    type_name = t.type_name(annotation)
    if t.ir_parameter_type(type_name) is None:
        raise TypeError(f"{where}: parameter {name!r} has unsupported type {type_name!r}")
    return IOSpec(type=type_name)


def signature_of(func: Callable[..., Any], *, container: bool = False) -> Signature:
    """Read a component's inputs and outputs from its Python signature and docstring."""
    where = f"component {func.__name__!r}"
    sig = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)
    result = Signature()
    for name, param in sig.parameters.items():
        if name not in hints:
            raise TypeError(f"{where}: parameter {name!r} needs a type annotation")
        annotation, optional = t.strip_optional(hints[name])
        if t.marker_of(annotation) == "output" or t.is_output_path(annotation):
            result.outputs[name] = _output_spec(annotation)
            continue
        spec = _input_spec(annotation, where, name)
        # An exit task's final status is filled in by the engine, never passed.
        spec.optional = optional or is_final_status_input(spec)
        if param.default is not inspect.Parameter.empty:
            spec.optional = True
            spec.has_default = param.default is not None
            spec.default = param.default
        result.inputs[name] = spec
    if not container:
        result.outputs.update(_return_outputs(hints.get("return", sig.return_annotation),
                                              where))
    # Descriptions come from the docstring as kfp reads it: inputs from Args, outputs
    # from Args and Returns.
    doc = parse_docstring(inspect.getdoc(func))
    for name, spec in result.inputs.items():
        spec.description = doc.params.get(name)
    for name, spec in result.outputs.items():
        spec.description = doc.returns.get(name, doc.params.get(name))
    return result


def is_final_status_input(spec: IOSpec) -> bool:
    """Whether an input is the ``PipelineTaskFinalStatus`` of an exit task."""
    return not spec.is_artifact and str(spec.type) == "PipelineTaskFinalStatus"


class BaseComponent:
    """Something a pipeline can call to make a task."""

    def __init__(self, name: str, signature: Signature, description: str | None) -> None:
        self.name = name
        self.signature = signature
        self.description = description

    @property
    def inputs(self) -> dict[str, IOSpec]:
        """The component's inputs."""
        return self.signature.inputs

    @property
    def outputs(self) -> dict[str, IOSpec]:
        """The component's outputs."""
        return self.signature.outputs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ketch.pipelines.dsl._pipeline import Pipeline

        if args:
            raise TypeError(f"component {self.name!r} takes keyword arguments only "
                            f"(got {len(args)} positional)")
        pipeline = Pipeline.current()
        if pipeline is None:
            raise RuntimeError(
                f"component {self.name!r} was called outside a @dsl.pipeline function; "
                "call it inside a pipeline and run that with `ketch run`")
        return pipeline.add_task(self, kwargs)


class PythonComponent(BaseComponent):
    """A lightweight Python component (``@dsl.component``)."""

    def __init__(self, func: Callable[..., Any], *, base_image: str | None,
                 packages_to_install: list[str] | None, pip_index_urls: list[str] | None,
                 pip_trusted_hosts: list[str] | None = None,
                 target_image: str | None = None,
                 additional_funcs: list[Callable[..., Any]] | None = None) -> None:
        super().__init__(func.__name__, signature_of(func),
                         inspect.getdoc(func))
        self.python_func = func
        self.base_image = base_image or DEFAULT_BASE_IMAGE
        self.packages_to_install = list(packages_to_install or [])
        self.pip_index_urls = list(pip_index_urls or [])
        self.pip_trusted_hosts = pip_trusted_hosts
        self.target_image = target_image
        self.source = function_source(func)
        self.custom_imports = custom_artifact_imports(func, self.source)
        # Helper functions embedded before the component's own (kfp's additional_funcs).
        self.additional_sources = [function_source(f) for f in additional_funcs or []]
        functools.update_wrapper(self, func)


def function_source(func: Callable[..., Any]) -> str:
    """The function's own source: decorators dropped, dedented (what kfp embeds)."""
    try:
        lines = inspect.getsource(func)
    except (OSError, TypeError) as err:
        raise ValueError(f"component {func.__name__!r}: its source is not available "
                         f"({err}); define it in a .py file") from None
    text = textwrap.dedent(lines)
    out = text.splitlines(keepends=True)
    for index, line in enumerate(out):
        if line.lstrip().startswith(("def ", "async def ")):
            return "".join(out[index:])
    return text


def component(func: Callable[..., Any] | None = None, *, base_image: str | None = None,
              target_image: str | None = None, packages_to_install: list[str] | None = None,
              pip_index_urls: list[str] | None = None, output_component_file: str | None = None,
              install_kfp_package: bool = True, kfp_package_path: str | None = None,
              pip_trusted_hosts: list[str] | None = None,
              use_venv: bool = False,
              additional_funcs: list[Callable[..., Any]] | None = None) -> Any:
    """Make a lightweight Python component from a function (``@dsl.component``).

    ``base_image``, ``packages_to_install`` and ``pip_index_urls`` are recorded in the
    IR as kfp records them.
    """
    del output_component_file, install_kfp_package, kfp_package_path, use_venv

    def wrap(f: Callable[..., Any]) -> PythonComponent:
        return PythonComponent(f, base_image=base_image, packages_to_install=packages_to_install,
                               pip_index_urls=pip_index_urls,
                               pip_trusted_hosts=pip_trusted_hosts, target_image=target_image,
                               additional_funcs=additional_funcs)

    return wrap(func) if func is not None else wrap


@dataclass
class ContainerSpec:
    """What a container component runs: ``image``, ``command`` and ``args``."""

    image: str
    command: list[Any] | None = None
    args: list[Any] | None = None


class ContainerComponent(BaseComponent):
    """A component that runs a command line (``@dsl.container_component``)."""

    def __init__(self, func: Callable[..., Any]) -> None:
        super().__init__(func.__name__, signature_of(func, container=True),
                         inspect.getdoc(func))
        self.python_func = func
        arguments: dict[str, Any] = {}
        for name, spec in self.inputs.items():
            if spec.is_artifact_list:
                arguments[name] = Placeholder(f"{{{{$.inputs.artifacts['{name}']}}}}",
                                              io_name=name)
            elif spec.is_artifact:
                arguments[name] = _ArtifactPlaceholder("inputs", name)
            else:
                arguments[name] = Placeholder(f"{{{{$.inputs.parameters['{name}']}}}}",
                                              io_name=name)
        for name, spec in self.outputs.items():
            if spec.is_artifact:
                arguments[name] = _ArtifactPlaceholder("outputs", name)
            else:
                arguments[name] = Placeholder(
                    f"{{{{$.outputs.parameters['{name}'].output_file}}}}", io_name=name)
        spec_obj = func(**arguments)
        if not isinstance(spec_obj, ContainerSpec):
            raise TypeError(f"container component {self.name!r} must return "
                            f"dsl.ContainerSpec (got {type(spec_obj).__name__})")
        self.container = spec_obj
        functools.update_wrapper(self, func)


class _ArtifactPlaceholder(Placeholder):
    """An artifact argument of a container component: itself its ``.path``."""

    def __init__(self, side: str, name: str) -> None:
        super().__init__(f"{{{{$.{side}.artifacts['{name}'].path}}}}", io_name=name)
        self._side = side

    @property
    def path(self) -> Placeholder:
        """The artifact's local path, filled in when the step runs."""
        return Placeholder(f"{{{{$.{self._side}.artifacts['{self.io_name}'].path}}}}")

    @property
    def uri(self) -> Placeholder:
        """The artifact's URI, filled in when the step runs."""
        return Placeholder(f"{{{{$.{self._side}.artifacts['{self.io_name}'].uri}}}}")

    @property
    def metadata(self) -> Placeholder:
        """The artifact's metadata as JSON, filled in when the step runs."""
        return Placeholder(f"{{{{$.{self._side}.artifacts['{self.io_name}'].metadata}}}}")


def container_component(func: Callable[..., Any]) -> ContainerComponent:
    """Make a container component from a function returning ``dsl.ContainerSpec``."""
    return ContainerComponent(func)
