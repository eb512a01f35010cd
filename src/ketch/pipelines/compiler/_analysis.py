"""Where every value of a recorded pipeline flows: which groups need which inputs,
which groups surface fan-in outputs (``dsl.Collected``, ``dsl.OneOf``), and which tasks
depend on which, with the topology errors kfp reports.

A value crossing a group boundary is passed explicitly: the consuming side's groups get
an input ``pipelinechannel--<task>-<output>`` ("punching a hole"), and fan-in values are
surfaced as outputs of the producing side's groups, as kfp's compiler does.
"""

from __future__ import annotations

from typing import Any

from ketch.pipelines.compiler._ir_parts import channel_definition
from ketch.pipelines.dsl._channels import (
    Collected,
    LoopArgument,
    LoopArgumentVariable,
    OneOf,
    PipelineChannel,
    has_channel,
    ir_input_name,
)
from ketch.pipelines.dsl._component import is_final_status_input
from ketch.pipelines.dsl._groups import ExitHandler, ParallelFor, TasksGroup, _ConditionGroup
from ketch.pipelines.dsl._pipeline import CompileError, GraphComponent, channels_in
from ketch.pipelines.dsl._task import PipelineTask

__all__ = ["GraphAnalysis", "Ref"]

class Ref:
    """Where a channel's value comes from, seen from outside: node name + output key."""

    def __init__(self, producer: str, key: str) -> None:
        self.producer = producer
        self.key = key

    @property
    def full_name(self) -> str:
        """``producer-key``: what the value is called once it crosses into a sub-DAG."""
        return f"{self.producer}-{self.key}"


class GraphAnalysis:
    """The flow of values through one pipeline's groups (see the module docstring)."""

    def __init__(self, graph: GraphComponent) -> None:
        self.graph = graph
        self.pipeline = graph.pipeline
        self.root = self.pipeline.root
        self.chains: dict[str, list[str]] = {}
        self.groups: dict[str, TasksGroup] = {}
        self._index(self.root, [])
        self.exit_tasks: list[tuple[ExitHandler, PipelineTask]] = [
            (g, g.exit_task) for g in self.root.groups if isinstance(g, ExitHandler)]
        for _, task in self.exit_tasks:
            self.chains[task.name] = [self.root.name, task.name]
        self.refs: dict[int, Ref] = {}
        self.group_inputs: dict[str, dict[str, PipelineChannel]] = {}
        self.group_outputs: dict[str, dict[str, dict[str, Any]]] = {}
        self.output_defs: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
        self.deps: dict[str, set[str]] = {}

    # --- the tree -----------------------------------------------------------------------

    def _index(self, group: TasksGroup, above: list[str]) -> None:
        chain = [*above, group.name]
        self.chains[group.name] = chain
        self.groups[group.name] = group
        for task in group.tasks:
            self.chains[task.name] = [*chain, task.name]
        for sub in group.groups:
            self._index(sub, chain)

    def _uncommon(self, upstream: str, downstream: str) -> tuple[list[str], list[str]]:
        a, b = self.chains[upstream], self.chains[downstream]
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        return a[common:], b[common:]

    # --- fan-in outputs: Collected and OneOf ------------------------------------------

    def _surface(self, groups_inner_first: list[str], producer: str, key: str,
                 channel: PipelineChannel, *, as_list: bool) -> Ref:
        # One key at every level, named after the original producer (as kfp names it).
        surfaced = ir_input_name(f"{producer}-{key}")
        for group in groups_inner_first:
            kind, entry = channel_definition(channel)
            if as_list:
                if channel.is_artifact:
                    entry = dict(entry, isArtifactList=True)
                else:
                    entry = {"parameterType": "LIST"}
            self.output_defs.setdefault(group, {})[surfaced] = (kind, entry)
            self.group_outputs.setdefault(group, {})[surfaced] = {
                "artifact": channel.is_artifact, "selectors": [(producer, key)]}
            producer, key = group, surfaced
        return Ref(producer, key)

    def _resolve_collected(self, channel: Collected, consumer: str) -> None:
        producer = channel.task_name or ""
        up, _ = self._uncommon(producer, consumer)
        loops = [g for g in up[:-1] if isinstance(self.groups.get(g), ParallelFor)]
        if not loops:
            raise CompileError(
                f"dsl.Collected can only fan in outputs of a task inside a dsl.ParallelFor "
                f"to a task outside it; {producer} is not in a loop that {consumer} is "
                "outside of", task=consumer)
        outer = self.groups.get(up[0])
        if isinstance(outer, _ConditionGroup | ExitHandler):
            raise CompileError(
                f"the dsl.ParallelFor producing {producer} is inside {up[0]}; move "
                f"{consumer} into that group too", task=consumer)
        self.refs[id(channel)] = self._surface(list(reversed(up[:-1])), producer,
                                               channel.name, channel, as_list=True)

    def _resolve_oneof(self, channel: OneOf) -> None:
        if id(channel) in self.refs:
            return
        branches = channel.branches
        selectors = []
        for inner in channel.channels:
            chain = self.chains[inner.task_name or ""]
            between = chain[chain.index(branches.name) + 1:-1]
            ref = self._surface(list(reversed(between)), inner.task_name or "", inner.name,
                                inner, as_list=False)
            selectors.append((ref.producer, ref.key))
        kind, entry = channel_definition(channel)
        self.output_defs.setdefault(branches.name, {})[channel.name] = (kind, entry)
        self.group_outputs.setdefault(branches.name, {})[channel.name] = {
            "artifact": channel.is_artifact, "selectors": selectors, "oneof": True}
        self.refs[id(channel)] = Ref(branches.name, channel.name)

    def _ref(self, channel: PipelineChannel) -> Ref | None:
        """Producer node and key of a task-produced channel; None for pipeline inputs."""
        if id(channel) in self.refs:
            return self.refs[id(channel)]
        if channel.task_name and not isinstance(channel, LoopArgument | LoopArgumentVariable):
            return Ref(channel.task_name, channel.name)
        return None

    # --- inputs punched into groups -----------------------------------------------------

    def _loop_of(self, argument: LoopArgument) -> ParallelFor:
        for group in self.groups.values():
            if isinstance(group, ParallelFor) and group.loop_argument is argument:
                return group
        raise CompileError(f"loop item {argument.full_name} is used outside its "
                           "dsl.ParallelFor")

    def _add_input(self, group: str, channel: PipelineChannel, name: str) -> None:
        if group == self.root.name:
            return
        self.group_inputs.setdefault(group, {}).setdefault(name, channel)

    def _need(self, channel: PipelineChannel, consumer: str) -> None:
        """Make ``channel`` reachable from ``consumer`` (a task or a group)."""
        if isinstance(channel, LoopArgumentVariable):
            channel = channel.loop_argument
        consumer_groups = self.chains[consumer][:-1]
        if isinstance(channel, LoopArgument):
            loop = self._loop_of(channel)
            if loop.name not in self.chains[consumer]:
                raise CompileError(f"loop item of {loop.name} is used outside that "
                                   "dsl.ParallelFor", task=consumer)
            start = consumer_groups.index(loop.name) if loop.name in consumer_groups else None
            if start is not None:
                for group in consumer_groups[start:]:
                    self._add_input(group, channel, ir_input_name(channel.full_name))
            return
        ref = self._ref(channel)
        if ref is None:
            for group in consumer_groups[1:]:
                self._add_input(group, channel, ir_input_name(channel.full_name))
            return
        _, down = self._uncommon(ref.producer, consumer)
        for group in down[:-1]:
            self._add_input(group, channel, ir_input_name(ref.full_name))

    def _condition_channels(self, task: PipelineTask) -> list[PipelineChannel]:
        found: list[PipelineChannel] = []
        for name in self.chains[task.name][:-1]:
            group = self.groups.get(name)
            if isinstance(group, _ConditionGroup):
                found.extend(c for c in group.condition_channels() if not has_channel(found, c))
        return found

    # --- dependencies -------------------------------------------------------------------

    def _depend(self, task: PipelineTask, upstream: str, *, data: bool,
                collected: bool = False) -> None:
        up, down = self._uncommon(upstream, task.name)
        if not up or not down:
            return
        outer = self.groups.get(up[0]) if len(up) > 1 else None
        if isinstance(outer, _ConditionGroup | ExitHandler):
            kind = "dsl.If/Elif/Else" if isinstance(outer, _ConditionGroup) else \
                "dsl.ExitHandler"
            raise CompileError(
                f"depends on task {upstream!r} inside {kind} group {up[0]!r}; a task "
                "outside a condition cannot use what a task inside it produces (use "
                "dsl.OneOf over If/Else branches)", task=task.name)
        if isinstance(outer, ParallelFor) and data and not collected:
            raise CompileError(
                f"uses an output of task {upstream!r} inside dsl.ParallelFor {up[0]!r}; "
                "wrap it in dsl.Collected(...) to fan the iterations in", task=task.name)
        self.deps.setdefault(down[0], set()).add(up[0])

    def analyse(self) -> None:
        """Fill in the inputs, outputs and dependencies of every group and task."""
        tasks = list(self.pipeline.tasks.values())
        for task in tasks:
            for key, spec in task.component.inputs.items():
                if is_final_status_input(spec) and not task.is_exit_handler:
                    raise CompileError("PipelineTaskFinalStatus is only given to the exit "
                                       "task of a dsl.ExitHandler", task=task.name,
                                       parameter=key)
        for task in tasks:
            for channel in task.channel_inputs():
                if isinstance(channel, Collected):
                    self._resolve_collected(channel, task.name)
                elif isinstance(channel, OneOf):
                    self._resolve_oneof(channel)
        for key, channel in self.graph.returned.items():
            self._resolve_pipeline_output(key, channel)
        for task in tasks:
            if task.is_exit_handler:
                continue
            conditions = self._condition_channels(task)
            # An image taken from a channel is an input like any other (kfp makes it a
            # dependency; channels in resource settings it does not).
            image = channels_in(task.resources.get("__image__", ""), self.pipeline.channels)
            for channel in task.channel_inputs() + conditions + image:
                self._need(channel, task.name)
                if isinstance(channel, OneOf):
                    for inner in channel.channels:
                        self._depend(task, inner.task_name or "", data=True)
                elif channel.task is not None and not isinstance(
                        channel, LoopArgument | LoopArgumentVariable):
                    self._depend(task, channel.task.name, data=True,
                                 collected=isinstance(channel, Collected))
            for name in task.dependent_tasks:
                self._depend(task, name, data=False)
        for group in self.groups.values():
            if isinstance(group, ParallelFor):
                # The iteration item is always an input of the loop's DAG, used or not.
                self._add_input(group.name, group.loop_argument,
                                ir_input_name(group.loop_argument.full_name))
            if isinstance(group, _ConditionGroup):
                # A dict-item field compared in a condition is an input of its own,
                # selected from the loop item.
                for channel in group.condition_channels():
                    if isinstance(channel, LoopArgumentVariable):
                        self._add_input(group.name, channel, ir_input_name(channel.full_name))
            if isinstance(group, ParallelFor) and isinstance(group.items, PipelineChannel):
                self._need(group.items, group.name)
                self._add_input(group.name, group.items,
                                ir_input_name(self._full_name(group.items)))
                if isinstance(group.items, LoopArgumentVariable):
                    # Looping over a field of an outer loop's item: the outer item comes in
                    # too, and the field is selected from it.
                    outer = group.items.loop_argument
                    self._add_input(group.name, outer, ir_input_name(outer.full_name))
                elif group.items.task is not None:
                    ref = self._ref(group.items)
                    if ref is not None:
                        up, down = self._uncommon(ref.producer, group.name)
                        if up and down:
                            self.deps.setdefault(down[0], set()).add(up[0])
        self._check_cycles()

    def _full_name(self, channel: PipelineChannel) -> str:
        if isinstance(channel, LoopArgumentVariable):
            return channel.full_name
        ref = self._ref(channel)
        return ref.full_name if ref else channel.full_name

    def _resolve_pipeline_output(self, key: str, channel: PipelineChannel) -> None:
        if isinstance(channel, Collected):
            chain = self.chains[channel.task_name or ""]
            self.refs[id(channel)] = self._surface(list(reversed(chain[1:-1])),
                                                   channel.task_name or "", channel.name,
                                                   channel, as_list=True)
        elif isinstance(channel, OneOf):
            self._resolve_oneof(channel)
        elif channel.task_name and len(self.chains.get(channel.task_name, [])) > 2:
            group = self.chains[channel.task_name][1]
            raise CompileError(f"pipeline output {key!r} comes from task "
                               f"{channel.task_name!r} inside {group!r}; pipeline outputs "
                               "may only be returned from the top level of the pipeline "
                               "function (use dsl.Collected or dsl.OneOf)")

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}

        def visit(node: str, path: list[str]) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                cycle = [*path[path.index(node):], node]
                raise CompileError(f"dependency cycle: {' -> '.join(cycle)}", task=node)
            state[node] = 1
            for upstream in sorted(self.deps.get(node, ())):
                visit(upstream, [*path, node])
            state[node] = 2

        for node in sorted(self.deps):
            visit(node, [])
