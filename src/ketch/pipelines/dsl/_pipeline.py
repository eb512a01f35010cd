"""``@dsl.pipeline``: run the pipeline function once with channels for its parameters,
record the tasks and groups it creates, and compile the result to IR."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, ClassVar

from ketch.core.errors import FieldError, InvalidError
from ketch.pipelines.dsl._channels import PipelineChannel, has_channel
from ketch.pipelines.dsl._component import BaseComponent, IOSpec, signature_of
from ketch.pipelines.dsl._docstrings import parse_docstring
from ketch.pipelines.dsl._groups import RootGroup, TasksGroup
from ketch.pipelines.dsl._task import PipelineTask, sanitize_name
from ketch.pipelines.dsl._types import ir_parameter_type

__all__ = ["CompileError", "GraphComponent", "Pipeline", "channels_in", "pipeline"]

_CHANNEL_PATTERN = re.compile(r"\{\{channel:task=([^;]*);name=([^;]+);type=([^;]*);\}\}")


class CompileError(InvalidError):
    """A pipeline that cannot compile; names the task and parameter at fault."""

    def __init__(self, message: str, *, task: str | None = None,
                 parameter: str | None = None) -> None:
        path = ".".join(p for p in (task, parameter) if p)
        super().__init__("pipeline does not compile",
                         [FieldError(path, message)] if path else [FieldError("", message)])
        self.task = task
        self.parameter = parameter


class Pipeline:
    """The tasks and groups recorded while a pipeline function runs."""

    _stack: ClassVar[list[Pipeline]] = []

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: dict[str, PipelineTask] = {}
        self.root = RootGroup()
        self.root.name = name
        self._group_stack: list[TasksGroup] = [self.root]
        self._group_id = 0
        self.channels: dict[str, PipelineChannel] = {}

    @classmethod
    def current(cls) -> Pipeline | None:
        """The pipeline being built, if any."""
        return cls._stack[-1] if cls._stack else None

    def __enter__(self) -> Pipeline:
        Pipeline._stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        Pipeline._stack.pop()

    def next_group_id(self) -> int:
        """The next number for a group or a static loop item."""
        self._group_id += 1
        return self._group_id

    def current_group(self) -> TasksGroup:
        """The innermost open group."""
        return self._group_stack[-1]

    def push_group(self, group: TasksGroup) -> None:
        """Open ``group`` inside the current one."""
        parent = self.current_group()
        parent.groups.append(group)
        group.parent = parent
        self._group_stack.append(group)

    def pop_group(self) -> None:
        """Close the innermost group."""
        self._group_stack.pop()

    def group_of_task(self, task_name: str) -> TasksGroup | None:
        """The group that holds ``task_name`` directly."""
        for group in self.root.walk():
            if any(t.name == task_name for t in group.tasks):
                return group
        return None

    def remove_task_from_groups(self, task: PipelineTask) -> None:
        """Take ``task`` out of its group (an exit task lives outside the DAG)."""
        for group in self.root.walk():
            if task in group.tasks:
                group.tasks.remove(task)

    def register_channel(self, channel: PipelineChannel) -> None:
        """Remember a channel so that it can be found again inside f-strings."""
        self.channels[channel.pattern] = channel

    def add_task(self, component: BaseComponent, arguments: dict[str, Any]) -> PipelineTask:
        """Record a call of ``component`` as a new task."""
        name = sanitize_name(component.name) or "task"
        unique, index = name, 2
        while unique in self.tasks:
            unique, index = f"{name}-{index}", index + 1
        _check_arguments(component, arguments, unique)
        task = PipelineTask(component, arguments, unique)
        task.channel_registry = self.channels
        self.tasks[unique] = task
        self.current_group().tasks.append(task)
        for channel in task.outputs.values():
            self.register_channel(channel)
        return task


def _check_arguments(component: BaseComponent, arguments: dict[str, Any], task: str) -> None:
    for key in arguments:
        if key not in component.inputs:
            raise CompileError(f"component {component.name!r} has no input {key!r} "
                               f"(inputs: {', '.join(component.inputs) or 'none'})",
                               task=task, parameter=key)
    for key, spec in component.inputs.items():
        if key not in arguments and not spec.optional:
            raise CompileError(f"missing required argument {key!r} of component "
                               f"{component.name!r}", task=task, parameter=key)
        if key in arguments:
            _check_argument_type(spec, arguments[key], task, key)


def _type_label(spec_type: Any, is_artifact: bool) -> str:
    if is_artifact:
        return str(getattr(spec_type, "schema_title", spec_type))
    return ir_parameter_type(str(spec_type)) or str(spec_type)


def _check_argument_type(spec: IOSpec, value: Any, task: str, key: str) -> None:
    want = _type_label(spec.type, spec.is_artifact)
    if isinstance(value, PipelineChannel):
        got = _type_label(value.channel_type, value.is_artifact)
        if spec.is_artifact != value.is_artifact:
            kinds = ("an artifact", "a parameter")
            raise CompileError(
                f"argument type mismatch: {value.full_name} is "
                f"{kinds[0] if value.is_artifact else kinds[1]} ({got}) but input {key!r} "
                f"is {kinds[0] if spec.is_artifact else kinds[1]} ({want})",
                task=task, parameter=key)
        if spec.is_artifact:
            if want != "system.Artifact" and got not in ("system.Artifact", want):
                raise CompileError(f"argument type mismatch: {value.full_name} is {got}, "
                                   f"input {key!r} wants {want}", task=task, parameter=key)
            if value.is_artifact_list and not spec.is_artifact_list:
                raise CompileError(f"argument type mismatch: {value.full_name} is a list of "
                                   f"artifacts, input {key!r} takes one", task=task,
                                   parameter=key)
            return
        if value.ir_type is None or want == value.ir_type:
            return
        if (value.ir_type, want) in (("NUMBER_INTEGER", "NUMBER_DOUBLE"),
                                     ("TASK_FINAL_STATUS", "STRUCT")):
            return
        if getattr(value, "typed", True) is False:
            return  # loop items of an untyped list
        raise CompileError(f"argument type mismatch: {value.full_name} is {value.ir_type}, "
                           f"input {key!r} wants {want}", task=task, parameter=key)
    if spec.is_artifact:
        raise CompileError(f"input {key!r} is an artifact ({want}); pass a task output, "
                           f"not the constant {value!r}", task=task, parameter=key)
    if value is None:
        raise CompileError(f"None is not a value for input {key!r}; leave the argument out "
                           "to use its default", task=task, parameter=key)
    if channels_in(value):
        return
    python_types = {"STRING": (str,), "NUMBER_INTEGER": (int,), "NUMBER_DOUBLE": (int, float),
                    "BOOLEAN": (bool,), "LIST": (list, tuple), "STRUCT": (dict,),
                    "TASK_FINAL_STATUS": (dict,)}.get(want, (object,))
    bad = not isinstance(value, python_types) or (
        isinstance(value, bool) and want in ("NUMBER_INTEGER", "NUMBER_DOUBLE"))
    if bad:
        raise CompileError(f"argument type mismatch: {value!r} is {type(value).__name__}, "
                           f"input {key!r} wants {want}", task=task, parameter=key)


def channels_in(value: Any,
                registry: dict[str, PipelineChannel] | None = None) -> list[PipelineChannel]:
    """Channels inside an argument: itself, inside lists/dicts, or formatted into text.

    ``registry`` maps channel patterns to channels (default: the pipeline being built).
    """
    if isinstance(value, PipelineChannel):
        return [value]
    if registry is None:
        current = Pipeline.current()
        registry = current.channels if current else {}
    found: list[PipelineChannel] = []
    if isinstance(value, str):
        for match in _CHANNEL_PATTERN.finditer(value):
            channel = registry.get(match.group(0))
            if channel is not None and not has_channel(found, channel):
                found.append(channel)
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(c for c in channels_in(item, registry) if not has_channel(found, c))
    elif isinstance(value, dict):
        for item in list(value.keys()) + list(value.values()):
            found.extend(c for c in channels_in(item, registry) if not has_channel(found, c))
    return found


class GraphComponent(BaseComponent):
    """A pipeline: callable inside another pipeline as a component; ``pipeline_spec``
    holds its IR."""

    def __init__(self, func: Callable[..., Any], *, name: str | None,
                 description: str | None, display_name: str | None,
                 pipeline_root: str | None) -> None:
        signature = signature_of(func)
        pipeline_name = sanitize_name(name or func.__name__)
        super().__init__(pipeline_name, signature,
                         description or parse_docstring(inspect.getdoc(func)).description)
        self.pipeline_func = func
        self.python_func = func
        self.display_name = display_name
        self.pipeline_root = pipeline_root
        self.pipeline = Pipeline(pipeline_name)
        with self.pipeline:
            kwargs: dict[str, Any] = {}
            for key, spec in signature.inputs.items():
                channel = PipelineChannel(key, spec.type, is_artifact=spec.is_artifact,
                                          is_artifact_list=spec.is_artifact_list)
                self.pipeline.register_channel(channel)
                kwargs[key] = channel
            returned = func(**kwargs)
        self.returned = _pipeline_outputs(returned, signature.outputs, pipeline_name)
        from ketch.pipelines.compiler._builder import build_pipeline_spec

        self.pipeline_spec: dict[str, Any] = build_pipeline_spec(self)
        functools.update_wrapper(self, func)


def _pipeline_outputs(returned: Any, outputs: dict[str, IOSpec],
                      name: str) -> dict[str, PipelineChannel]:
    if returned is None:
        if outputs:
            raise CompileError(f"pipeline {name!r} declares outputs "
                               f"({', '.join(outputs)}) but returns nothing")
        return {}
    if isinstance(returned, PipelineTask):
        returned = returned.output
    if isinstance(returned, PipelineChannel):
        if set(outputs) != {"Output"}:
            raise CompileError(f"pipeline {name!r} returns a value; annotate its return "
                               "type (-> int, -> Dataset, ...)")
        return {"Output": returned}
    fields = getattr(returned, "_fields", None)
    if fields:
        return {f: getattr(returned, f) for f in fields}
    if isinstance(returned, dict) and set(returned) == set(outputs):
        return dict(returned)  # e.g. ``return task.outputs``
    if isinstance(returned, tuple) and len(returned) == len(outputs):
        return dict(zip(outputs, returned, strict=True))
    raise CompileError(f"pipeline {name!r} returns {returned!r}; return task outputs")


def pipeline(func: Callable[..., Any] | None = None, *, name: str | None = None,
             description: str | None = None, pipeline_root: str | None = None,
             display_name: str | None = None, pipeline_config: Any = None) -> Any:
    """Make a pipeline from a function (``@dsl.pipeline`` or ``@dsl.pipeline(name=...)``).

    The function runs once, now, to record its tasks; errors in the graph (a missing
    argument, a type mismatch, a cycle) are raised here as :class:`CompileError`.
    """
    del pipeline_config

    def wrap(f: Callable[..., Any]) -> GraphComponent:
        return GraphComponent(f, name=name, description=description,
                              display_name=display_name, pipeline_root=pipeline_root)

    return wrap(func) if func is not None else wrap
