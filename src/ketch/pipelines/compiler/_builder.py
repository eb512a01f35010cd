"""Pipeline graph -> IR ``PipelineSpec`` (a dict shaped as kfp 2.16.1 writes it).

The recorded pipeline is a tree of groups holding tasks. Each group becomes a
sub-DAG component. A value crossing a group boundary is passed explicitly: the
consuming side's groups get an input ``pipelinechannel--<task>-<output>`` ("punching a
hole"), and fan-in values (``dsl.Collected``, ``dsl.OneOf``) are surfaced as outputs of
the producing side's groups. Names, numbering and the order in which component names
are made unique follow kfp, so the two compilers' IR can be compared key by key.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ketch.pipelines.compiler._executors import container_executor, lightweight_executor
from ketch.pipelines.compiler._naming import unique_name
from ketch.pipelines.dsl._channels import (
    Collected,
    ConditionOperation,
    LoopArgument,
    LoopArgumentVariable,
    OneOf,
    PipelineChannel,
    has_channel,
    ir_input_name,
)
from ketch.pipelines.dsl._component import (
    BaseComponent,
    ContainerComponent,
    IOSpec,
    PythonComponent,
)
from ketch.pipelines.dsl._groups import (
    ExitHandler,
    ParallelFor,
    TasksGroup,
    _ConditionGroup,
)
from ketch.pipelines.dsl._pipeline import CompileError, GraphComponent, channels_in
from ketch.pipelines.dsl._task import PipelineTask
from ketch.pipelines.dsl._types import ir_parameter_type

__all__ = ["SCHEMA_VERSION", "build_pipeline_spec", "to_value"]

SCHEMA_VERSION = "2.1.0"
Node = PipelineTask | TasksGroup


def to_value(value: Any) -> Any:
    """A constant as protobuf ``Value`` JSON holds it (numbers become floats)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): to_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_value(v) for v in value]
    return str(value)


def _artifact_type(cls: Any) -> dict[str, str]:
    return {"schemaTitle": str(getattr(cls, "schema_title", "system.Artifact")),
            "schemaVersion": str(getattr(cls, "schema_version", "0.0.1"))}


def io_definitions(specs: dict[str, IOSpec], *, inputs: bool) -> dict[str, Any]:
    """``inputDefinitions``/``outputDefinitions`` for a component signature."""
    params: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}
    for name, spec in specs.items():
        if spec.is_artifact:
            entry: dict[str, Any] = {"artifactType": _artifact_type(spec.type)}
            if spec.is_artifact_list:
                entry["isArtifactList"] = True
            if inputs and spec.optional:
                entry["isOptional"] = True
            artifacts[name] = entry
        else:
            entry = {"parameterType": ir_parameter_type(str(spec.type)) or "STRING"}
            if inputs and spec.has_default:
                entry["defaultValue"] = to_value(spec.default)
            if inputs and spec.optional:
                entry["isOptional"] = True
            params[name] = entry
    result: dict[str, Any] = {}
    if artifacts:
        result["artifacts"] = artifacts
    if params:
        result["parameters"] = params
    return result


def _channel_definition(channel: PipelineChannel) -> tuple[str, dict[str, Any]]:
    if channel.is_artifact:
        entry: dict[str, Any] = {"artifactType": _artifact_type(channel.channel_type)}
        if channel.is_artifact_list:
            entry["isArtifactList"] = True
        return "artifacts", entry
    if isinstance(channel, Collected):
        return "parameters", {"parameterType": "LIST"}
    return "parameters", {"parameterType": channel.ir_type or "STRING"}


class _Ref:
    """Where a channel's value comes from, seen from outside: node name + output key."""

    def __init__(self, producer: str, key: str) -> None:
        self.producer = producer
        self.key = key

    @property
    def full_name(self) -> str:
        return f"{self.producer}-{self.key}"


class _Builder:
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
        self.refs: dict[int, _Ref] = {}
        self.group_inputs: dict[str, dict[str, PipelineChannel]] = {}
        self.group_outputs: dict[str, dict[str, dict[str, Any]]] = {}
        self.output_defs: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
        self.deps: dict[str, set[str]] = {}
        self.components: dict[str, Any] = {}
        self.executors: dict[str, Any] = {}
        self.group_specs: dict[str, dict[str, Any]] = {}

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

    def _tasks_under(self, group: TasksGroup) -> list[PipelineTask]:
        return [t for g in group.walk() for t in g.tasks]

    # --- fan-in outputs: Collected and OneOf ------------------------------------------

    def _surface(self, groups_inner_first: list[str], producer: str, key: str,
                 channel: PipelineChannel, *, as_list: bool) -> _Ref:
        for group in groups_inner_first:
            surfaced = ir_input_name(f"{producer}-{key}")
            kind, entry = _channel_definition(channel)
            if as_list:
                if channel.is_artifact:
                    entry = dict(entry, isArtifactList=True)
                else:
                    entry = {"parameterType": "LIST"}
            self.output_defs.setdefault(group, {})[surfaced] = (kind, entry)
            self.group_outputs.setdefault(group, {})[surfaced] = {
                "artifact": channel.is_artifact, "selectors": [(producer, key)]}
            producer, key = group, surfaced
        return _Ref(producer, key)

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
        kind, entry = _channel_definition(channel)
        self.output_defs.setdefault(branches.name, {})[channel.name] = (kind, entry)
        self.group_outputs.setdefault(branches.name, {})[channel.name] = {
            "artifact": channel.is_artifact, "selectors": selectors, "oneof": True}
        self.refs[id(channel)] = _Ref(branches.name, channel.name)

    def _ref(self, channel: PipelineChannel) -> _Ref | None:
        """Producer node and key of a task-produced channel; None for pipeline inputs."""
        if id(channel) in self.refs:
            return self.refs[id(channel)]
        if channel.task_name and not isinstance(channel, LoopArgument | LoopArgumentVariable):
            return _Ref(channel.task_name, channel.name)
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

    def _analyse(self) -> None:
        tasks = list(self.pipeline.tasks.values())
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
            for channel in task.channel_inputs() + conditions:
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
            if isinstance(group, ParallelFor) and isinstance(group.items, PipelineChannel):
                self._need(group.items, group.name)
                self._add_input(group.name, group.items,
                                ir_input_name(self._full_name(group.items)))
                if isinstance(group.items, LoopArgumentVariable):
                    pass
                elif group.items.task is not None:
                    ref = self._ref(group.items)
                    if ref is not None:
                        up, down = self._uncommon(ref.producer, group.name)
                        if up and down:
                            self.deps.setdefault(down[0], set()).add(up[0])
        self._check_cycles()

    def _full_name(self, channel: PipelineChannel) -> str:
        if isinstance(channel, LoopArgumentVariable):
            return channel.loop_argument.full_name
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

    # --- task specs ------------------------------------------------------------------------

    def _source(self, channel: PipelineChannel, dag: str, children: set[str]) -> dict[str, Any]:
        """How a task in ``dag`` reads ``channel``: from a sibling or from the DAG inputs."""
        artifact = channel.is_artifact
        if isinstance(channel, LoopArgumentVariable):
            return {"componentInputParameter": ir_input_name(channel.loop_argument.full_name),
                    "parameterExpressionSelector":
                        f'parseJson(string_value)["{channel.subvar_name}"]'}
        if isinstance(channel, LoopArgument):
            key = "componentInputArtifact" if artifact else "componentInputParameter"
            return {key: ir_input_name(channel.full_name)}
        ref = self._ref(channel)
        if ref is not None and ref.producer in children:
            if artifact:
                return {"taskOutputArtifact": {"producerTask": ref.producer,
                                               "outputArtifactKey": ref.key}}
            return {"taskOutputParameter": {"producerTask": ref.producer,
                                            "outputParameterKey": ref.key}}
        if ref is None and dag == self.root.name:
            name = channel.full_name
        else:
            name = ir_input_name(ref.full_name if ref else channel.full_name)
        return {"componentInputArtifact" if artifact else "componentInputParameter": name}

    def _task_inputs(self, task: PipelineTask, dag: str,
                     children: set[str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        for key, value in task.inputs.items():
            if value is None:
                continue
            spec = task.component.inputs[key]
            if spec.is_artifact and spec.type is not None and str(spec.type) != "":
                pass
            if isinstance(value, PipelineChannel):
                if str(spec.type) == "PipelineTaskFinalStatus":
                    continue
                source = self._source(value, dag, children)
                (artifacts if value.is_artifact else params)[key] = source
                continue
            constant = value
            for channel in channels_in(value, self.pipeline.channels):
                # A channel formatted into a string becomes an extra input of the task.
                extra = ir_input_name(self._full_name(channel))
                params[extra] = self._source(channel, dag, children)
                constant = _replace(constant, channel.pattern,
                                    f"{{{{$.inputs.parameters['{extra}']}}}}")
            params[key] = {"runtimeValue": {"constant": to_value(constant)}}
        for key, spec in task.component.inputs.items():
            if str(spec.type) == "PipelineTaskFinalStatus" and task.is_exit_handler:
                handler = next(g for g, t in self.exit_tasks if t is task)
                params[key] = {"taskFinalStatus": {"producerTask": handler.name}}
        result: dict[str, Any] = {}
        if artifacts:
            result["artifacts"] = artifacts
        if params:
            result["parameters"] = params
        return result

    def _caching(self, task: PipelineTask) -> dict[str, Any]:
        caching: dict[str, Any] = {"enableCache": True} if task.enable_caching else {}
        if task.cache_key:
            caching["cacheKey"] = task.cache_key
        return caching

    def _component_for_task(self, task: PipelineTask) -> dict[str, Any]:
        component = task.component
        if isinstance(component, GraphComponent):
            return self._merge_subpipeline(component.pipeline_spec)
        spec: dict[str, Any] = {}
        inputs = io_definitions(component.inputs, inputs=True)
        outputs = io_definitions(component.outputs, inputs=False)
        if inputs:
            spec["inputDefinitions"] = inputs
        if outputs:
            spec["outputDefinitions"] = outputs
        label = unique_name(f"exec-{task.name}", self.executors)
        if isinstance(component, PythonComponent):
            self.executors[label] = lightweight_executor(component, task)
        elif isinstance(component, ContainerComponent):
            try:
                self.executors[label] = container_executor(component, task)
            except ValueError as err:
                raise CompileError(str(err), task=task.name) from None
        else:
            raise CompileError(f"unsupported component type {type(component).__name__}",
                               task=task.name)
        spec["executorLabel"] = label
        return spec

    def _merge_subpipeline(self, sub: dict[str, Any]) -> dict[str, Any]:
        sub = copy.deepcopy(sub)
        executors = sub.get("deploymentSpec", {}).get("executors", {})
        for old, executor in executors.items():
            new = unique_name(old, self.executors)
            self.executors[new] = executor
            if new != old:
                for component in sub.get("components", {}).values():
                    if component.get("executorLabel") == old:
                        component["executorLabel"] = new
        taken = list(self.components)
        renames: dict[str, str] = {}
        for old in sub.get("components", {}):
            renames[old] = unique_name(old, taken + [n for pair in renames.items()
                                                     for n in pair])
        dags = [c["dag"] for c in sub.get("components", {}).values() if "dag" in c]
        dags.append(sub["root"]["dag"])
        for old, new in reversed(list(renames.items())):
            if old == new:
                continue
            for dag in dags:
                for task_spec in dag.get("tasks", {}).values():
                    if task_spec["componentRef"]["name"] == old:
                        task_spec["componentRef"]["name"] = new
        for old, component in sub.get("components", {}).items():
            self.components[renames[old]] = component
        return dict(sub["root"])

    def _group_task(self, group: TasksGroup, dag: str, children: set[str]) -> dict[str, Any]:
        spec: dict[str, Any] = {"taskInfo": {"name": group.display_name or group.name}}
        params: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        own_item = group.loop_argument if isinstance(group, ParallelFor) else None
        for name, channel in self.group_inputs.get(group.name, {}).items():
            if channel is own_item:
                continue
            if isinstance(channel, LoopArgument):
                source = {("componentInputArtifact" if channel.is_artifact
                           else "componentInputParameter"): name}
            else:
                source = self._source(channel, dag, children)
                if dag == self.root.name and self._ref(channel) is None:
                    key = next(iter(source))
                    source = {key: channel.full_name}
                elif "componentInputParameter" in source or "componentInputArtifact" in source:
                    key = next(iter(source))
                    source = {key: name}
            (artifacts if channel.is_artifact else params)[name] = source
        if artifacts:
            spec.setdefault("inputs", {})["artifacts"] = artifacts
        if params:
            spec.setdefault("inputs", {})["parameters"] = params
        if isinstance(group, _ConditionGroup):
            spec["triggerPolicy"] = {"condition": " && ".join(
                cel_condition(op) for op in group.conditions)}
        if isinstance(group, ParallelFor):
            item = ir_input_name(group.loop_argument.full_name)
            if isinstance(group.items, PipelineChannel):
                items_input = ir_input_name(self._full_name(group.items))
                if group.loop_argument.is_artifact:
                    spec["artifactIterator"] = {"itemInput": item,
                                                "items": {"inputArtifact": items_input}}
                else:
                    spec["parameterIterator"] = {"itemInput": item,
                                                 "items": {"inputParameter": items_input}}
            else:
                spec["parameterIterator"] = {"itemInput": item, "items": {
                    "raw": json.dumps(group.items, sort_keys=True)}}
            if group.parallelism > 0:
                spec["iteratorPolicy"] = {"parallelismLimit": group.parallelism}
        return spec

    def _group_component(self, group: TasksGroup) -> dict[str, Any]:
        spec: dict[str, Any] = {"dag": {"tasks": {}}}
        params: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        for name, channel in self.group_inputs.get(group.name, {}).items():
            kind, entry = _channel_definition(channel)
            if isinstance(channel, LoopArgument) and not channel.is_artifact:
                entry = {"parameterType": ir_parameter_type(str(channel.channel_type))
                         or "STRING"}
            (artifacts if kind == "artifacts" else params)[name] = entry
        defs: dict[str, Any] = {}
        if artifacts:
            defs["artifacts"] = artifacts
        if params:
            defs["parameters"] = params
        if defs:
            spec["inputDefinitions"] = defs
        outputs = self.output_defs.get(group.name, {})
        if outputs:
            out_defs: dict[str, Any] = {}
            for name, (kind, entry) in outputs.items():
                out_defs.setdefault(kind, {})[name] = entry
            spec["outputDefinitions"] = out_defs
            spec["dag"]["outputs"] = _dag_outputs(self.group_outputs[group.name])
        return spec

    def _build_group(self, group: TasksGroup, target: dict[str, Any]) -> None:
        children_nodes: list[Node] = [*group.groups, *group.tasks]
        children = {n.name for n in children_nodes}
        tasks = target["dag"].setdefault("tasks", {})
        for node in children_nodes:
            if isinstance(node, PipelineTask):
                spec: dict[str, Any] = {"taskInfo": {"name": node.display_name or node.name},
                                        "cachingOptions": self._caching(node)}
                inputs = self._task_inputs(node, group.name, children)
                if inputs:
                    spec["inputs"] = inputs
                if node.retry_policy:
                    spec["retryPolicy"] = dict(node.retry_policy)
                if node.ignore_upstream_failure_flag:
                    spec["triggerPolicy"] = {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
                component = self._component_for_task(node)
            else:
                spec = self._group_task(node, group.name, children)
                component = self._group_component(node)
                self.group_specs[node.name] = component
            if self.deps.get(node.name):
                spec["dependentTasks"] = sorted(self.deps[node.name])
            name = unique_name(f"comp-{node.name}", self.components)
            spec["componentRef"] = {"name": name}
            self.components[name] = component
            tasks[node.name] = spec

    def _build_exit_tasks(self, root: dict[str, Any]) -> None:
        for handler, task in self.exit_tasks:
            spec: dict[str, Any] = {"taskInfo": {"name": task.display_name or task.name},
                                    "cachingOptions": self._caching(task),
                                    "dependentTasks": [handler.name],
                                    "triggerPolicy": {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}}
            inputs = self._task_inputs(task, self.root.name, set())
            if inputs:
                spec["inputs"] = inputs
            if task.retry_policy:
                spec["retryPolicy"] = dict(task.retry_policy)
            component = self._component_for_task(task)
            name = unique_name(f"comp-{task.name}", self.components)
            spec["componentRef"] = {"name": name}
            self.components[name] = component
            root["dag"]["tasks"][task.name] = spec

    def build(self) -> dict[str, Any]:
        self._analyse()
        graph = self.graph
        root: dict[str, Any] = {"dag": {"tasks": {}}}
        inputs = io_definitions(graph.inputs, inputs=True)
        outputs = io_definitions(graph.outputs, inputs=False)
        if inputs:
            root["inputDefinitions"] = inputs
        if outputs:
            root["outputDefinitions"] = outputs
        for group in self.root.walk():
            target = root if group is self.root else self.group_specs[group.name]
            self._build_group(group, target)
        self._build_exit_tasks(root)
        returned: dict[str, dict[str, Any]] = {}
        for key, channel in graph.returned.items():
            ref = self._ref(channel)
            if ref is None:
                raise CompileError(f"pipeline output {key!r} must be a task output")
            returned[key] = {"artifact": channel.is_artifact,
                             "selectors": [(ref.producer, ref.key)]}
            declared = graph.outputs.get(key)
            if declared is not None and declared.is_artifact != channel.is_artifact:
                raise CompileError(f"pipeline output {key!r} is declared "
                                   f"{'an artifact' if declared.is_artifact else 'a parameter'} "
                                   f"but {channel.full_name} is not")
        if returned:
            root["dag"]["outputs"] = _dag_outputs(returned)
        info: dict[str, Any] = {"name": graph.name}
        if graph.description:
            info["description"] = graph.description
        if graph.display_name:
            info["displayName"] = graph.display_name
        ir: dict[str, Any] = {
            "components": self.components,
            "deploymentSpec": {"executors": self.executors},
            "pipelineInfo": info,
            "root": root,
            "schemaVersion": SCHEMA_VERSION,
            "sdkVersion": _sdk_version(),
        }
        if not self.components:
            del ir["components"]
        return sort_keys(ir)  # type: ignore[no-any-return]


def _dag_outputs(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, out in outputs.items():
        if out["artifact"]:
            result.setdefault("artifacts", {})[name] = {"artifactSelectors": [
                {"producerSubtask": p, "outputArtifactKey": k} for p, k in out["selectors"]]}
        elif out.get("oneof"):
            result.setdefault("parameters", {})[name] = {"valueFromOneof": {
                "parameterSelectors": [{"producerSubtask": p, "outputParameterKey": k}
                                       for p, k in out["selectors"]]}}
        else:
            producer, key = out["selectors"][0]
            result.setdefault("parameters", {})[name] = {"valueFromParameter": {
                "producerSubtask": producer, "outputParameterKey": key}}
    return result


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list | tuple):
        return [_replace(v, old, new) for v in value]
    if isinstance(value, dict):
        return {_replace(k, old, new): _replace(v, old, new) for k, v in value.items()}
    return value


def _operand_type(operand: Any) -> str:
    if isinstance(operand, PipelineChannel):
        kind = operand.ir_type
        if kind in ("LIST", "STRUCT", None) or operand.is_artifact:
            raise CompileError(f"a condition compares primitive values; "
                               f"{ir_input_name(operand.full_name)} is "
                               f"{operand.channel_type}")
        return kind
    if isinstance(operand, bool):
        return "BOOLEAN"
    if isinstance(operand, int):
        return "NUMBER_INTEGER"
    if isinstance(operand, float):
        return "NUMBER_DOUBLE"
    if isinstance(operand, str):
        return "STRING"
    raise CompileError(f"a condition cannot compare {operand!r}")


def cel_condition(op: ConditionOperation) -> str:
    """One condition as the CEL text kfp writes (``int(inputs.parameter_values[...]) > 3``)."""
    kinds = {_operand_type(op.left), _operand_type(op.right)}
    if len(kinds) == 1:
        canonical = kinds.pop()
    elif "STRING" in kinds:
        canonical = "STRING"
    elif "BOOLEAN" in kinds:
        canonical = "BOOLEAN"
    else:
        canonical = "NUMBER_DOUBLE"
    texts = []
    for operand in (op.left, op.right):
        kind = _operand_type(operand)
        if isinstance(operand, PipelineChannel):
            text = f"inputs.parameter_values['{ir_input_name(operand.full_name)}']"
            if kind == "NUMBER_INTEGER":
                text = f"int({text})"
        elif isinstance(operand, str):
            text = f"'{operand}'"
        elif isinstance(operand, bool):
            text = str(operand).lower()
        else:
            text = str(operand)
        if kind != canonical:
            if canonical == "STRING":
                text = f"'{text}'"
            elif canonical == "BOOLEAN":
                text = "true" if float(text) == 0 else "false"
            else:
                text = f"double({text})"
        texts.append(text)
    condition = f"{texts[0]} {op.operator} {texts[1]}"
    return f"!({condition})" if op.negate else condition


def sort_keys(value: Any) -> Any:
    """The IR with mapping keys sorted, as kfp's YAML writer orders them."""
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"ketch-{version('ketch')}"
    except PackageNotFoundError:
        return "ketch"


def build_pipeline_spec(graph: GraphComponent) -> dict[str, Any]:
    """Compile a recorded pipeline to its IR ``PipelineSpec`` dict.

    Raises:
        CompileError: The graph is invalid (names the task and parameter).
    """
    return _Builder(graph).build()


def component_of(value: Any) -> BaseComponent | None:
    """The component behind ``value`` if it is one."""
    return value if isinstance(value, BaseComponent) else None
