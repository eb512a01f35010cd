"""Pipeline graph -> IR ``PipelineSpec`` (a dict shaped as kfp 2.16.1 writes it).

The recorded pipeline is a tree of groups holding tasks; each group becomes a sub-DAG
component (:mod:`._analysis` works out what flows between them). Names, numbering and
the order in which component names are made unique follow kfp, so the two compilers' IR
can be compared key by key.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ketch.pipelines.compiler._analysis import GraphAnalysis
from ketch.pipelines.compiler._conditions import cel_condition
from ketch.pipelines.compiler._executors import (
    container_executor,
    importer_executor,
    lightweight_executor,
)
from ketch.pipelines.compiler._ir_parts import (
    channel_definition,
    dag_outputs,
    io_definitions,
    present,
    replace_text,
    sort_keys,
    to_value,
)
from ketch.pipelines.compiler._naming import unique_name
from ketch.pipelines.dsl._channels import (
    LoopArgument,
    LoopArgumentVariable,
    PipelineChannel,
    ir_input_name,
)
from ketch.pipelines.dsl._component import ContainerComponent, PythonComponent
from ketch.pipelines.dsl._groups import ParallelFor, TasksGroup, _ConditionGroup
from ketch.pipelines.dsl._importer import ImporterComponent
from ketch.pipelines.dsl._pipeline import CompileError, GraphComponent, channels_in
from ketch.pipelines.dsl._task import PipelineTask
from ketch.pipelines.dsl._types import ir_parameter_type
from ketch.pipelines.dsl.components import YamlComponent

__all__ = ["SCHEMA_VERSION", "build_pipeline_spec"]

SCHEMA_VERSION = "2.1.0"
# PipelineTask resource settings -> the task input kfp adds when one comes from a channel.
_RESOURCE_INPUTS = {"cpuLimit": "cpu_limit", "cpuRequest": "cpu_request",
                    "memoryLimit": "memory_limit", "memoryRequest": "memory_request",
                    "acceleratorType": "accelerator_type",
                    "acceleratorCount": "accelerator_count", "__image__": "base_image"}
Node = PipelineTask | TasksGroup


class _Builder(GraphAnalysis):
    def __init__(self, graph: GraphComponent) -> None:
        super().__init__(graph)
        self.components: dict[str, Any] = {}
        self.executors: dict[str, Any] = {}
        self.group_specs: dict[str, dict[str, Any]] = {}

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
                constant = replace_text(constant, channel.pattern,
                                    f"{{{{$.inputs.parameters['{extra}']}}}}")
            params[key] = {"runtimeValue": {"constant": to_value(constant)}}
        # Resources set from channels are passed as extra inputs, as kfp does.
        for key, input_name in _RESOURCE_INPUTS.items():
            value = task.resources.get(key, "")
            for channel in channels_in(value, self.pipeline.channels):
                extra = ir_input_name(self._full_name(channel))
                params[extra] = self._source(channel, dag, children)
                value = replace_text(value, channel.pattern,
                                     f"{{{{$.inputs.parameters['{extra}']}}}}")
                params[input_name] = {"runtimeValue": {"constant": value}}
        for key, spec in task.component.inputs.items():
            if str(spec.type) == "PipelineTaskFinalStatus" and task.is_exit_handler:
                handler = next(g for g, t in self.exit_tasks if t is task)
                params[key] = {"taskFinalStatus": {"producerTask": handler.name}}
        return present(artifacts=artifacts, parameters=params)

    def _resources_of(self, task: PipelineTask) -> dict[str, str]:
        """The task's resource settings, channels replaced by input placeholders."""
        resolved = {}
        for key, value in task.resources.items():
            text = value
            for channel in channels_in(value, self.pipeline.channels):
                extra = ir_input_name(self._full_name(channel))
                text = text.replace(channel.pattern, f"{{{{$.inputs.parameters['{extra}']}}}}")
            resolved[key] = text
        return resolved

    def _caching(self, task: PipelineTask) -> dict[str, Any]:
        caching: dict[str, Any] = {"enableCache": True} if task.enable_caching else {}
        if task.cache_key:
            caching["cacheKey"] = task.cache_key
        return caching

    def _component_for_task(self, task: PipelineTask) -> dict[str, Any]:
        component = task.component
        sub_pipeline = getattr(component, "pipeline_spec", None)
        if isinstance(component, GraphComponent | YamlComponent) and sub_pipeline:
            return self._merge_subpipeline(sub_pipeline)
        spec = present(inputDefinitions=io_definitions(component.inputs, inputs=True),
                       outputDefinitions=io_definitions(component.outputs, inputs=False))
        label = unique_name(f"exec-{task.name}", self.executors)
        if isinstance(component, ImporterComponent):
            self.executors[label] = importer_executor(component)
        elif isinstance(component, PythonComponent):
            self.executors[label] = lightweight_executor(component, task,
                                                         self._resources_of(task))
        elif isinstance(component, ContainerComponent | YamlComponent):
            try:
                self.executors[label] = container_executor(component, task,
                                                           self._resources_of(task))
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
            elif isinstance(channel, LoopArgumentVariable):
                source = {"componentInputParameter":
                          ir_input_name(channel.loop_argument.full_name),
                          "parameterExpressionSelector":
                              f'parseJson(string_value)["{channel.subvar_name}"]'}
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
            kind, entry = channel_definition(channel)
            if isinstance(channel, LoopArgument) and not channel.is_artifact:
                entry = {"parameterType": ir_parameter_type(str(channel.channel_type))
                         or "STRING"}
            (artifacts if kind == "artifacts" else params)[name] = entry
        spec.update(present(inputDefinitions=present(artifacts=artifacts, parameters=params)))
        outputs = self.output_defs.get(group.name, {})
        if outputs:
            out_defs: dict[str, Any] = {}
            for name, (kind, entry) in outputs.items():
                out_defs.setdefault(kind, {})[name] = entry
            spec["outputDefinitions"] = out_defs
            spec["dag"]["outputs"] = dag_outputs(self.group_outputs[group.name])
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
        """The whole ``PipelineSpec`` dict, keys sorted as kfp writes them."""
        self.analyse()
        graph = self.graph
        root: dict[str, Any] = {"dag": {"tasks": {}}}
        root.update(present(inputDefinitions=io_definitions(graph.inputs, inputs=True),
                            outputDefinitions=io_definitions(graph.outputs, inputs=False)))
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
            root["dag"]["outputs"] = dag_outputs(returned)
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
        if graph.pipeline_root:
            ir["defaultPipelineRoot"] = graph.pipeline_root
        if not self.components:
            del ir["components"]
        return sort_keys(ir)  # type: ignore[no-any-return]


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
