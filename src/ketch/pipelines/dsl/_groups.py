"""Control-flow groups: ``If``/``Elif``/``Else``/``Condition``, ``ParallelFor``,
``ExitHandler``, and the ``condition-branches`` group that wraps an If/Elif/Else chain.

Names follow kfp: ``<kind>-<n>`` with one counter per pipeline, so the IR task names
(``condition-1``, ``for-loop-2``...) match what the real SDK emits.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ketch.pipelines.dsl._channels import (
    ConditionOperation,
    LoopArgument,
    LoopArgumentVariable,
    PipelineChannel,
    has_channel,
)

if TYPE_CHECKING:
    from ketch.pipelines.dsl._pipeline import Pipeline
    from ketch.pipelines.dsl._task import PipelineTask

__all__ = [
    "Condition",
    "ConditionBranches",
    "Elif",
    "Else",
    "ExitHandler",
    "If",
    "ParallelFor",
    "TasksGroup",
    "branches_of",
]


def _pipeline() -> Pipeline:
    from ketch.pipelines.dsl._pipeline import Pipeline

    current = Pipeline.current()
    if current is None:
        raise RuntimeError("control-flow groups (dsl.If, dsl.ParallelFor...) can only be "
                           "used inside a @dsl.pipeline function")
    return current


class TasksGroup:
    """A group of tasks and sub-groups that compiles to a sub-DAG."""

    kind = "group"

    def __init__(self, name: str | None = None) -> None:
        self.display_name = name
        self.name = ""
        self.tasks: list[PipelineTask] = []
        self.groups: list[TasksGroup] = []
        self.parent: TasksGroup | None = None

    def _make_name(self, pipeline: Pipeline) -> None:
        self.name = f"{self.kind}-{pipeline.next_group_id()}"

    def __enter__(self) -> Any:
        pipeline = _pipeline()
        self._make_name(pipeline)
        pipeline.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _pipeline().pop_group()

    def walk(self) -> list[TasksGroup]:
        """This group and every group below it, parents first."""
        result: list[TasksGroup] = [self]
        for group in self.groups:
            result.extend(group.walk())
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class RootGroup(TasksGroup):
    """The pipeline's own top-level DAG."""

    kind = "pipeline"


class ConditionBranches(TasksGroup):
    """Wraps an If/Elif/Else chain; a ``dsl.OneOf`` reads its output."""

    kind = "condition-branches"

    def __init__(self) -> None:
        super().__init__()
        self._oneof_count = 0

    def next_oneof_id(self) -> int:
        """A fresh number for the next ``OneOf`` over this chain."""
        self._oneof_count += 1
        return self._oneof_count


def _check_condition(condition: Any, what: str) -> ConditionOperation:
    if isinstance(condition, bool):
        raise ValueError(f"{what}: got the constant {condition}; the condition was evaluated "
                         "at compile time. Compare a task output or pipeline parameter")
    if not isinstance(condition, ConditionOperation):
        raise TypeError(f"{what}: expected a comparison such as task.output > 3, "
                        f"got {condition!r}")
    return condition


class _ConditionGroup(TasksGroup):
    kind = "condition"

    def __init__(self, conditions: list[ConditionOperation], name: str | None) -> None:
        super().__init__(name)
        self.conditions = conditions
        self.negated_chain: list[ConditionOperation] = []

    def condition_channels(self) -> list[PipelineChannel]:
        """Every channel the conditions read."""
        found: list[PipelineChannel] = []
        for op in self.conditions:
            for channel in op.channels():
                if not has_channel(found, channel):
                    found.append(channel)
        return found


class If(_ConditionGroup):
    """Run the tasks inside only when ``condition`` holds at run time."""

    def __init__(self, condition: Any, name: str | None = None) -> None:
        op = _check_condition(condition, "dsl.If")
        super().__init__([op], name)
        self.negated_chain = [op.negated()]


class Condition(If):
    """Deprecated spelling of :class:`If`."""

    def __enter__(self) -> Any:
        result = super().__enter__()
        warnings.warn("dsl.Condition is deprecated. Please use dsl.If instead.",
                      category=DeprecationWarning, stacklevel=2)
        return result


def _previous_condition(what: str) -> _ConditionGroup:
    pipeline = _pipeline()
    current = pipeline.current_group()
    previous = current.groups[-1] if current.groups else None
    if isinstance(previous, Else) or not isinstance(previous, _ConditionGroup):
        raise ValueError(f"{what} can only follow a dsl.If or dsl.Elif")
    return previous


def _enter_branch(group: _ConditionGroup) -> None:
    pipeline = _pipeline()
    current = pipeline.current_group()
    previous = current.groups[-1]
    if not isinstance(previous, Elif):
        # First Elif/Else after an If: wrap the If in a condition-branches group that
        # takes the If's number (the If gets the new one), as kfp numbers them.
        wrapper = ConditionBranches()
        wrapper._make_name(pipeline)
        wrapper.name, previous.name = (f"{wrapper.kind}-{previous.name.rsplit('-', 1)[1]}",
                                       f"{previous.kind}-{wrapper.name.rsplit('-', 1)[1]}")
        current.groups.pop()
        pipeline.push_group(wrapper)
        wrapper.groups.append(previous)
        previous.parent = wrapper
    group._make_name(pipeline)
    pipeline.push_group(group)


class Elif(_ConditionGroup):
    """Run the tasks inside when ``condition`` holds and no earlier branch ran."""

    def __init__(self, condition: Any, name: str | None = None) -> None:
        previous = _previous_condition("dsl.Elif")
        op = _check_condition(condition, "dsl.Elif")
        super().__init__([*previous.negated_chain, op], name)
        self.negated_chain = [*previous.negated_chain, op.negated()]

    def __enter__(self) -> Any:
        _enter_branch(self)
        return self


class Else(_ConditionGroup):
    """Run the tasks inside when no earlier If/Elif branch ran."""

    def __init__(self, name: str | None = None) -> None:
        previous = _previous_condition("dsl.Else")
        super().__init__(list(previous.negated_chain), name)

    def __enter__(self) -> Any:
        _enter_branch(self)
        return self

    def __exit__(self, *exc: object) -> None:
        pipeline = _pipeline()
        pipeline.pop_group()
        pipeline.pop_group()


def _item_type(items: list[Any]) -> str:
    if not items:
        raise ValueError("dsl.ParallelFor: got an empty list of items")
    first = items[0]
    if isinstance(first, dict):
        key, value = next(iter(first.items()))
        return f"Dict[{type(key).__name__}, {type(value).__name__}]"
    return type(first).__name__


def _list_item_type(type_text: str) -> str:
    if "[" in type_text and type_text.endswith("]"):
        return type_text.split("[", 1)[1][:-1].strip()
    return "String"


class ParallelFor(TasksGroup):
    """Run the tasks inside once per item of ``items``, ``parallelism`` at a time.

    ``items`` is a constant list or a list-valued task output / pipeline parameter.
    Entering yields the loop item (``item`` or ``item.field`` for dict items).
    """

    kind = "for-loop"

    def __init__(self, items: Any, name: str | None = None,
                 parallelism: int | None = None) -> None:
        super().__init__(name)
        self.parallelism = parallelism or 0
        if self.parallelism < 0:
            raise ValueError(f"dsl.ParallelFor: parallelism must be >= 0 (got {parallelism})")
        self.items = items
        if isinstance(items, LoopArgumentVariable):
            self.loop_argument = LoopArgument(items, f"{items.name}-loop-item", "String",
                                              task_name=items.task_name)
        elif isinstance(items, PipelineChannel):
            if items.is_artifact:
                if not items.is_artifact_list:
                    raise ValueError("dsl.ParallelFor over artifacts needs a list of "
                                     f"artifacts (got {items!r})")
                self.loop_argument = LoopArgument(items, f"{items.name}-loop-item",
                                                  items.channel_type,
                                                  task_name=items.task_name,
                                                  is_artifact=True)
            else:
                if items.ir_type not in ("LIST", None) and not isinstance(items, LoopArgument):
                    raise ValueError(
                        "dsl.ParallelFor: cannot iterate over a single parameter "
                        f"({items.full_name} is {items.channel_type}); pass a list")
                self.loop_argument = LoopArgument(
                    items, f"{items.name}-loop-item", _list_item_type(str(items.channel_type)),
                    task_name=items.task_name)
        elif isinstance(items, list | tuple):
            items = list(items)
            self.items = items
            code = _pipeline().next_group_id()
            self.loop_argument = LoopArgument(items, f"loop-item-param-{code}",
                                              _item_type(items))
        else:
            raise TypeError(f"dsl.ParallelFor: items must be a list or a task output "
                            f"(got {type(items).__name__})")

    def __enter__(self) -> Any:
        super().__enter__()
        return self.loop_argument


class ExitHandler(TasksGroup):
    """Run ``exit_task`` after the tasks inside finish, whether they succeeded or not."""

    kind = "exit-handler"

    def __init__(self, exit_task: PipelineTask, name: str | None = None) -> None:
        super().__init__(name)
        if exit_task.dependent_tasks or any(
                c.task is not None for c in exit_task.channel_inputs()):
            raise ValueError(f"dsl.ExitHandler: exit task {exit_task.name!r} cannot depend "
                             "on other tasks")
        pipeline = _pipeline()
        pipeline.remove_task_from_groups(exit_task)
        exit_task.is_exit_handler = True
        self.exit_task = exit_task

    def __enter__(self) -> Any:
        pipeline = _pipeline()
        if pipeline.current_group() is not pipeline.root:
            raise ValueError("dsl.ExitHandler can only be used at the top level of a "
                             "pipeline function")
        return super().__enter__()


def branches_of(channels: list[PipelineChannel]) -> ConditionBranches:
    """The If/Elif/Else chain whose branches produce ``channels`` (one per branch)."""
    pipeline = _pipeline()
    found: list[ConditionBranches] = []
    for channel in channels:
        group = pipeline.group_of_task(channel.task_name or "")
        while group is not None and not isinstance(group, ConditionBranches):
            group = group.parent
        if group is None:
            raise ValueError(f"dsl.OneOf: {channel.full_name} is not produced inside a "
                             "dsl.If/dsl.Elif/dsl.Else branch")
        found.append(group)
    if any(g is not found[0] for g in found):
        raise ValueError("dsl.OneOf: the outputs must come from branches of one "
                         "If/Elif/Else chain")
    chain = found[0]
    if not any(isinstance(g, Else) for g in chain.groups):
        raise ValueError("dsl.OneOf needs an If/Elif/Else chain that ends in dsl.Else, "
                         "so that exactly one branch runs")
    return chain
