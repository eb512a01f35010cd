"""Pipeline channels: the placeholders for values that exist only at run time.

A channel is a task output or a pipeline parameter seen while the pipeline function
runs at compile time. Comparing one (``task.output > 3``) makes a condition for
``dsl.If``; ``ParallelFor`` yields a loop item channel; ``Collected`` fans loop outputs
in; ``OneOf`` picks the output of whichever ``If``/``Else`` branch ran.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ketch.pipelines.dsl._types import ir_parameter_type

if TYPE_CHECKING:
    from ketch.pipelines.dsl._groups import ConditionBranches
    from ketch.pipelines.dsl._task import PipelineTask

__all__ = [
    "Collected",
    "ConditionOperation",
    "LoopArgument",
    "LoopArgumentVariable",
    "OneOf",
    "PipelineChannel",
    "has_channel",
    "ir_input_name",
]


def has_channel(channels: list[PipelineChannel], channel: PipelineChannel) -> bool:
    """Whether ``channel`` itself is in ``channels`` (``==`` on channels builds a condition)."""
    return any(c is channel for c in channels)


def ir_input_name(full_name: str) -> str:
    """The name a channel takes as an input of a sub-DAG (``pipelinechannel--...``)."""
    return f"pipelinechannel--{full_name}"


class ConditionOperation:
    """``left <op> right`` where at least one side is a channel; ``negate`` for Else."""

    def __init__(self, operator: str, left: Any, right: Any, negate: bool = False) -> None:
        self.operator = operator
        self.left = left
        self.right = right
        self.negate = negate

    def negated(self) -> ConditionOperation:
        """A copy with ``negate`` set (the condition an Elif/Else inherits)."""
        return ConditionOperation(self.operator, self.left, self.right, negate=True)

    def channels(self) -> list[PipelineChannel]:
        """The channels this condition reads."""
        return [x for x in (self.left, self.right) if isinstance(x, PipelineChannel)]

    def __bool__(self) -> bool:
        raise TypeError("a pipeline condition has no value at compile time; use it in "
                        "dsl.If(...), not in a Python `if`")


class PipelineChannel:
    """A value produced at run time by a task output or a pipeline parameter.

    Attributes:
        name: The output key, or the pipeline parameter name.
        task_name: The producing task (None for pipeline parameters).
        channel_type: A parameter type name (``int``, ``List[int]``...) or, for
            artifacts, the artifact class.
        is_artifact: Whether this is an artifact rather than a parameter.
        is_artifact_list: Whether it carries a list of artifacts.
    """

    def __init__(self, name: str, channel_type: Any, *, task_name: str | None = None,
                 task: PipelineTask | None = None, is_artifact: bool = False,
                 is_artifact_list: bool = False, value: Any = None) -> None:
        self.name = name
        self.channel_type = channel_type
        self.task_name = task_name
        self.task = task
        self.is_artifact = is_artifact
        self.is_artifact_list = is_artifact_list
        self.value = value

    @property
    def full_name(self) -> str:
        """``task-output`` for task outputs, the name for pipeline parameters."""
        return f"{self.task_name}-{self.name}" if self.task_name else self.name

    @property
    def pattern(self) -> str:
        """How the channel appears when formatted into a string (f-strings)."""
        return (f"{{{{channel:task={self.task_name or ''};name={self.name};"
                f"type={self.type_text};}}}}")

    @property
    def type_text(self) -> str:
        """The channel type as text (artifact schema title for artifacts)."""
        if self.is_artifact:
            return str(getattr(self.channel_type, "schema_title", self.channel_type))
        return str(self.channel_type)

    @property
    def ir_type(self) -> str | None:
        """The IR ``parameterType`` of a parameter channel."""
        return ir_parameter_type(str(self.channel_type))

    def __str__(self) -> str:
        return self.pattern

    def __repr__(self) -> str:
        return f"PipelineChannel({self.full_name!r}, {self.type_text!r})"

    def __hash__(self) -> int:
        return hash(self.pattern)

    def _compare(self, operator: str, other: Any) -> ConditionOperation:
        return ConditionOperation(operator, self, other)

    def __eq__(self, other: object) -> ConditionOperation:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: object) -> ConditionOperation:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: Any) -> ConditionOperation:
        return self._compare("<", other)

    def __le__(self, other: Any) -> ConditionOperation:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> ConditionOperation:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> ConditionOperation:
        return self._compare(">=", other)


class LoopArgument(PipelineChannel):
    """The item a ``ParallelFor`` yields: ``item`` or ``item.field`` for dict items."""

    def __init__(self, items: Any, name: str, channel_type: Any, *,
                 task_name: str | None = None, is_artifact: bool = False) -> None:
        super().__init__(name, channel_type, task_name=task_name, is_artifact=is_artifact)
        self.items = items
        self.is_static = not isinstance(items, PipelineChannel)
        # The item type of an untyped list (``-> list``) is unknown: not type-checked.
        self.typed = str(channel_type) != "String"
        self._subvars: dict[str, LoopArgumentVariable] = {}

    def __getattr__(self, name: str) -> LoopArgumentVariable:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._subvars.setdefault(name, LoopArgumentVariable(self, name))


class LoopArgumentVariable(PipelineChannel):
    """One field of a dict loop item (``item.a``)."""

    def __init__(self, loop_argument: LoopArgument, subvar_name: str) -> None:
        match = re.fullmatch(r"(?:typing\.)?\w+\[\s*\w+\s*,\s*(.+)\]",
                             str(loop_argument.channel_type))
        # kfp types an unknown field as a string; such a field is not type-checked.
        super().__init__(f"{loop_argument.name}-subvar-{subvar_name}",
                         match.group(1).strip() if match else "String",
                         task_name=loop_argument.task_name)
        self.typed = match is not None
        self.loop_argument = loop_argument
        self.subvar_name = subvar_name


class Collected(PipelineChannel):
    """``dsl.Collected(task.output)``: every iteration's value of a loop output, as a list."""

    def __init__(self, output: PipelineChannel) -> None:
        if not isinstance(output, PipelineChannel) or output.task is None:
            raise ValueError("dsl.Collected takes the output of a task inside a "
                             f"dsl.ParallelFor (got {output!r})")
        super().__init__(output.name, output.channel_type if output.is_artifact else "List",
                         task_name=output.task_name, task=output.task,
                         is_artifact=output.is_artifact, is_artifact_list=output.is_artifact)
        self.output = output


class OneOf(PipelineChannel):
    """``dsl.OneOf(a.output, b.output)``: the output of whichever If/Elif/Else branch ran."""

    def __init__(self, *channels: PipelineChannel) -> None:
        from ketch.pipelines.dsl._groups import branches_of

        if len(channels) < 2:
            raise ValueError("dsl.OneOf takes at least two outputs, one per branch")
        for channel in channels:
            if not isinstance(channel, PipelineChannel) or channel.task is None:
                raise ValueError(f"dsl.OneOf takes task outputs (got {channel!r})")
            if isinstance(channel, Collected | OneOf):
                raise ValueError("dsl.OneOf cannot hold dsl.Collected or dsl.OneOf")
        kinds = {c.is_artifact for c in channels}
        if len(kinds) != 1:
            raise TypeError("dsl.OneOf outputs must be all parameters or all artifacts")
        first = channels[0]
        types = {c.type_text for c in channels}
        if len(types) != 1:
            raise TypeError(f"dsl.OneOf outputs must have one type (got {sorted(types)})")
        self.branches: ConditionBranches = branches_of(list(channels))
        name = ir_input_name(f"{self.branches.name}-oneof-{self.branches.next_oneof_id()}")
        super().__init__(name, first.channel_type, task_name=self.branches.name,
                         is_artifact=first.is_artifact)
        self.channels = list(channels)
