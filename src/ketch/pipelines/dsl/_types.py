"""Type annotations a component signature may use, and their IR types.

``Input[Dataset]``/``Output[Model]`` mark artifacts, ``InputPath``/``OutputPath`` give a
file path instead of an object, everything else is a parameter (``str``, ``int``,
``float``, ``bool``, ``list``, ``dict``, their ``typing`` forms and ``Optional``).
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar, Union

from ketch.pipelines.dsl._artifacts import SCHEMA_TITLE_TO_TYPE, Artifact

__all__ = [
    "Input",
    "InputPath",
    "Output",
    "OutputPath",
    "PipelineTaskFinalStatus",
    "artifact_class_for",
    "ir_parameter_type",
    "is_artifact_class",
    "strip_optional",
]

T = TypeVar("T")


class _InputMarker:
    """The metadata ``Input[...]`` attaches to an artifact annotation."""


class _OutputMarker:
    """The metadata ``Output[...]`` attaches to an artifact annotation."""


class Input(Generic[T]):
    """``Input[Dataset]``: the step reads this artifact (an object with ``.path``)."""

    def __class_getitem__(cls, item: Any) -> Any:
        return Annotated[item, _InputMarker]


class Output(Generic[T]):
    """``Output[Model]``: the step writes this artifact (an object with ``.path``)."""

    def __class_getitem__(cls, item: Any) -> Any:
        return Annotated[item, _OutputMarker]


class InputPath:
    """``InputPath('Dataset')``: the step receives the local path of an input artifact."""

    def __init__(self, type: Any = None) -> None:
        self.type = type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputPath) and other.type == self.type

    def __hash__(self) -> int:
        return hash(("InputPath", str(self.type)))


class OutputPath:
    """``OutputPath(str)`` or ``OutputPath('Model')``: the step writes to this path."""

    def __init__(self, type: Any = None) -> None:
        self.type = type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputPath) and other.type == self.type

    def __hash__(self) -> int:
        return hash(("OutputPath", str(self.type)))


@dataclass
class PipelineTaskFinalStatus:
    """What an exit task learns about the tasks it guarded (``dsl.ExitHandler``)."""

    state: str
    pipeline_job_resource_name: str
    pipeline_task_name: str
    error_code: int | None
    error_message: str | None


def strip_optional(annotation: Any) -> tuple[Any, bool]:
    """``Optional[X]`` -> ``(X, True)``; anything else -> ``(annotation, False)``."""
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


# kfp's own markers, recognised by name so that components written against the real
# kfp (installed beside ketch) run in ketch's executor too.
_KFP_MARKERS = {"InputAnnotation": "input", "OutputAnnotation": "output"}


def marker_of(annotation: Any) -> str | None:
    """'input' / 'output' for ``Input[...]``/``Output[...]`` annotations, else None."""
    if typing.get_origin(annotation) is Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if meta is _InputMarker:
                return "input"
            if meta is _OutputMarker:
                return "output"
            if isinstance(meta, type) and meta.__name__ in _KFP_MARKERS:
                return _KFP_MARKERS[meta.__name__]
    return None


def is_input_path(annotation: Any) -> bool:
    """``InputPath(...)``, ketch's or kfp's."""
    return isinstance(annotation, InputPath) or (
        type(annotation).__name__ == "InputPath" and hasattr(annotation, "type"))


def is_output_path(annotation: Any) -> bool:
    """``OutputPath(...)``, ketch's or kfp's."""
    return isinstance(annotation, OutputPath) or (
        type(annotation).__name__ == "OutputPath" and hasattr(annotation, "type"))


def unwrap_marker(annotation: Any) -> Any:
    """The type inside ``Input[...]``/``Output[...]``."""
    if typing.get_origin(annotation) is Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def is_artifact_class(obj: Any) -> bool:
    """Whether ``obj`` is an artifact class (ours, kfp-aliased, or a custom one)."""
    if isinstance(obj, type):
        if issubclass(obj, Artifact):
            return True
        return isinstance(getattr(obj, "schema_title", None), str) and hasattr(
            obj, "schema_version")
    return False


def artifact_list_inner(annotation: Any) -> Any | None:
    """``List[Dataset]`` -> ``Dataset``; None when not a list of artifacts."""
    if typing.get_origin(annotation) in (list, typing.List):  # noqa: UP006
        args = typing.get_args(annotation)
        if args and is_artifact_class(args[0]):
            return args[0]
    return None


def artifact_class_for(type_name: Any) -> type[Artifact]:
    """The artifact class for an ``InputPath``/``OutputPath`` type argument."""
    if is_artifact_class(type_name):
        return type_name  # type: ignore[no-any-return]
    name = str(type_name or "Artifact")
    for title, cls in SCHEMA_TITLE_TO_TYPE.items():
        if name.lower() in (title.lower(), title.split(".", 1)[1].lower()):
            return cls
    return Artifact


# Parameter type names kfp accepts (Python and legacy v1 names) -> IR parameterType.
_PARAMETER_NAMES = {
    "str": "STRING", "string": "STRING", "text": "STRING",
    "int": "NUMBER_INTEGER", "integer": "NUMBER_INTEGER",
    "float": "NUMBER_DOUBLE", "double": "NUMBER_DOUBLE",
    "bool": "BOOLEAN", "boolean": "BOOLEAN",
    "list": "LIST", "jsonarray": "LIST", "sequence": "LIST",
    "dict": "STRUCT", "jsonobject": "STRUCT", "mapping": "STRUCT",
    "pipelinetaskfinalstatus": "TASK_FINAL_STATUS",
}


def type_name(annotation: Any) -> str:
    """A parameter annotation as kfp writes its type name (``int``, ``List[int]``...)."""
    if isinstance(annotation, str):
        return annotation
    if annotation is PipelineTaskFinalStatus or getattr(
            annotation, "__name__", "") == "PipelineTaskFinalStatus":
        return "PipelineTaskFinalStatus"
    origin = typing.get_origin(annotation)
    if origin is not None:
        args = typing.get_args(annotation)
        base = {list: "List", dict: "Dict"}.get(origin, getattr(origin, "__name__", "List"))
        if args:
            return f"{base}[{', '.join(type_name(a) for a in args)}]"
        return base
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def ir_parameter_type(name: str) -> str | None:
    """IR ``parameterType`` for a type name (``List[int]`` -> ``LIST``); None if unknown."""
    base = re.sub(r"^typing\.", "", name.strip()).split("[", 1)[0].strip().lower()
    return _PARAMETER_NAMES.get(base)
