"""KFP's IR (``PipelineSpec``, schemaVersion 2.1.0) read into typed, frozen objects.

The engine runs from these, never from the raw dict, so that a malformed document
fails once, at submit time, with the field named (``root.dag.tasks.add.componentRef.name:
unknown component 'comp-ad'``) rather than half-way through a run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ketch.core.errors import FieldError, InvalidError

__all__ = [
    "ArtifactInput", "ComponentSpec", "ContainerSpec", "DagOutput", "ExecutorSpec",
    "IterSpec", "ParamInput", "PipelineSpec", "RetryPolicy", "TaskSpec", "parse_pipeline_spec",
    "upstream_tasks",
]


@dataclass(frozen=True)
class ParamInput:
    """Where one task input parameter comes from (exactly one source is set)."""

    component_input: str | None = None
    producer_task: str | None = None
    output_key: str | None = None
    constant: Any = None
    has_constant: bool = False
    final_status_of: str | None = None
    selector: str | None = None


@dataclass(frozen=True)
class ArtifactInput:
    component_input: str | None = None
    producer_task: str | None = None
    output_key: str | None = None


@dataclass(frozen=True)
class IterSpec:
    """A ParallelFor: items from a constant list or an input; each item bound to ``item_input``."""

    item_input: str
    raw_items: str | None = None
    items_input: str | None = None
    artifact: bool = False
    parallelism: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 0
    backoff_seconds: float = 0.0
    backoff_factor: float = 2.0
    backoff_max_seconds: float = 3600.0


@dataclass(frozen=True)
class TaskSpec:
    name: str
    component: str
    display_name: str
    dependencies: tuple[str, ...]
    params: Mapping[str, ParamInput]
    artifacts: Mapping[str, ArtifactInput]
    condition: str | None = None
    run_after_failure: bool = False
    iterator: IterSpec | None = None
    cache: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class DagOutput:
    """A DAG output: the first selector whose producer ran (``OneOf``), else the only one."""

    selectors: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: Mapping[str, str]
    resources: Mapping[str, Any]


@dataclass(frozen=True)
class ExecutorSpec:
    container: ContainerSpec | None = None
    importer: Mapping[str, Any] | None = None
    # sha256 of the executor as written: the component's identity in cache keys.
    digest: str = ""


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    input_params: Mapping[str, Mapping[str, Any]]
    input_artifacts: Mapping[str, Mapping[str, Any]]
    output_params: Mapping[str, Mapping[str, Any]]
    output_artifacts: Mapping[str, Mapping[str, Any]]
    executor: str | None = None
    tasks: Mapping[str, TaskSpec] = field(default_factory=dict)
    param_outputs: Mapping[str, DagOutput] = field(default_factory=dict)
    artifact_outputs: Mapping[str, DagOutput] = field(default_factory=dict)

    @property
    def is_dag(self) -> bool:
        return self.executor is None


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    description: str
    root: ComponentSpec
    components: Mapping[str, ComponentSpec]
    executors: Mapping[str, ExecutorSpec]
    default_root: str | None
    raw: Mapping[str, Any]


# The names kfp's compiler writes: tasks, components (comp-...) and executors (exec-...)
# are Kubernetes-style names (kfp.dsl.utils.maybe_rename_for_k8s); outputs are Python
# identifiers, or kfp's pipelinechannel--<task>-<output> for a DAG's outputs. The
# engine makes directories and artifact URIs of them, so nothing else is accepted: no
# '/', '.', or '..' can reach a path.
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_OUTPUT_NAME = re.compile(r"[A-Za-z_][-A-Za-z0-9_]*")


def _check_name(name: str, kind: str, path: str) -> None:
    pattern = _OUTPUT_NAME if kind == "output" else _K8S_NAME
    if pattern.fullmatch(name) is None:
        rule = ("letters, digits, '_' and '-', starting with a letter or '_'"
                if kind == "output" else
                "lowercase letters, digits and '-', starting and ending with a letter "
                "or digit")
        raise _bad(path, f"invalid {kind} name {name!r}: KFP {kind} names are {rule}")


def _dict(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _bad(path: str, message: str) -> InvalidError:
    return InvalidError("invalid pipeline spec", [FieldError(path, message)])


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(path, "expected a non-empty string")
    return value


def _duration(value: Any, path: str) -> float:
    if value in (None, ""):
        return 0.0
    text = str(value)
    try:
        return float(text[:-1]) if text.endswith("s") else float(text)
    except ValueError:
        raise _bad(path, f"expected a duration such as '30s', got {value!r}") from None


def _param_input(raw: Any, path: str) -> ParamInput:
    raw = _dict(raw, path)
    selector = raw.get("parameterExpressionSelector")
    if "componentInputParameter" in raw:
        return ParamInput(component_input=_str(raw["componentInputParameter"], path),
                          selector=selector)
    if "taskOutputParameter" in raw:
        src = _dict(raw["taskOutputParameter"], f"{path}.taskOutputParameter")
        return ParamInput(
            producer_task=_str(src.get("producerTask"), f"{path}.taskOutputParameter.producerTask"),
            output_key=_str(src.get("outputParameterKey"),
                            f"{path}.taskOutputParameter.outputParameterKey"),
            selector=selector)
    if "runtimeValue" in raw:
        const = _dict(raw["runtimeValue"], f"{path}.runtimeValue")
        if "constant" not in const:
            raise _bad(f"{path}.runtimeValue.constant", "missing")
        return ParamInput(constant=const["constant"], has_constant=True, selector=selector)
    if "taskFinalStatus" in raw:
        src = _dict(raw["taskFinalStatus"], f"{path}.taskFinalStatus")
        return ParamInput(final_status_of=_str(src.get("producerTask"),
                                               f"{path}.taskFinalStatus.producerTask"))
    raise _bad(path, "expected one of componentInputParameter, taskOutputParameter, "
                     "runtimeValue or taskFinalStatus")


def _artifact_input(raw: Any, path: str) -> ArtifactInput:
    raw = _dict(raw, path)
    if "componentInputArtifact" in raw:
        return ArtifactInput(component_input=_str(raw["componentInputArtifact"], path))
    if "taskOutputArtifact" in raw:
        src = _dict(raw["taskOutputArtifact"], f"{path}.taskOutputArtifact")
        return ArtifactInput(
            producer_task=_str(src.get("producerTask"), f"{path}.taskOutputArtifact.producerTask"),
            output_key=_str(src.get("outputArtifactKey"),
                            f"{path}.taskOutputArtifact.outputArtifactKey"))
    raise _bad(path, "expected componentInputArtifact or taskOutputArtifact")


def _iterator(raw: dict[str, Any], path: str) -> IterSpec | None:
    policy = _dict(raw.get("iteratorPolicy"), f"{path}.iteratorPolicy")
    parallelism = int(policy.get("parallelismLimit") or 0)
    if "parameterIterator" in raw:
        it = _dict(raw["parameterIterator"], f"{path}.parameterIterator")
        items = _dict(it.get("items"), f"{path}.parameterIterator.items")
        if "raw" not in items and "inputParameter" not in items:
            raise _bad(f"{path}.parameterIterator.items", "expected raw or inputParameter")
        return IterSpec(item_input=_str(it.get("itemInput"), f"{path}.parameterIterator.itemInput"),
                        raw_items=items.get("raw"), items_input=items.get("inputParameter"),
                        parallelism=parallelism)
    if "artifactIterator" in raw:
        it = _dict(raw["artifactIterator"], f"{path}.artifactIterator")
        items = _dict(it.get("items"), f"{path}.artifactIterator.items")
        return IterSpec(item_input=_str(it.get("itemInput"), f"{path}.artifactIterator.itemInput"),
                        items_input=_str(items.get("inputArtifact"),
                                         f"{path}.artifactIterator.items.inputArtifact"),
                        artifact=True, parallelism=parallelism)
    return None


def _retry(raw: Any, path: str) -> RetryPolicy:
    raw = _dict(raw, path)
    if not raw:
        return RetryPolicy()
    policy = RetryPolicy(
        max_retries=int(raw.get("maxRetryCount") or 0),
        backoff_seconds=_duration(raw.get("backoffDuration"), f"{path}.backoffDuration"),
        backoff_factor=_number(raw.get("backoffFactor") or 2.0, f"{path}.backoffFactor"),
        backoff_max_seconds=_duration(raw.get("backoffMaxDuration") or "3600s",
                                      f"{path}.backoffMaxDuration"))
    # Refused at load, as the retry's delay (core's backoff_delay) would refuse them
    # at the first failure, mid-run.
    if policy.backoff_factor <= 0:
        raise _bad(f"{path}.backoffFactor", f"must be positive, got {policy.backoff_factor:g}")
    for name, value in (("backoffDuration", policy.backoff_seconds),
                         ("backoffMaxDuration", policy.backoff_max_seconds)):
        if value < 0:
            raise _bad(f"{path}.{name}", f"must not be negative, got {value:g}s")
    return policy


def _number(value: Any, path: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad(path, f"expected a number, got {value!r}") from None


def _task(name: str, raw: Any, path: str) -> TaskSpec:
    raw = _dict(raw, path)
    ref = _dict(raw.get("componentRef"), f"{path}.componentRef")
    inputs = _dict(raw.get("inputs"), f"{path}.inputs")
    params = {k: _param_input(v, f"{path}.inputs.parameters.{k}")
              for k, v in _dict(inputs.get("parameters"), f"{path}.inputs.parameters").items()}
    arts = {k: _artifact_input(v, f"{path}.inputs.artifacts.{k}")
            for k, v in _dict(inputs.get("artifacts"), f"{path}.inputs.artifacts").items()}
    trigger = _dict(raw.get("triggerPolicy"), f"{path}.triggerPolicy")
    deps = raw.get("dependentTasks") or []
    if not isinstance(deps, list):
        raise _bad(f"{path}.dependentTasks", "expected a list of task names")
    caching = _dict(raw.get("cachingOptions"), f"{path}.cachingOptions")
    info = _dict(raw.get("taskInfo"), f"{path}.taskInfo")
    return TaskSpec(
        name=name,
        component=_str(ref.get("name"), f"{path}.componentRef.name"),
        display_name=str(info.get("name") or name),
        dependencies=tuple(str(d) for d in deps),
        params=params,
        artifacts=arts,
        condition=trigger.get("condition") or None,
        run_after_failure=trigger.get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED",
        iterator=_iterator(raw, path),
        # Read as KFP's driver does (GetCachingOptions().GetEnableCache(), protobuf
        # defaults): absent or empty is off. kfp and ketch write {} for
        # set_caching_options(False) and {enableCache: true} otherwise.
        cache=caching.get("enableCache") is True,
        retry=_retry(raw.get("retryPolicy"), f"{path}.retryPolicy"),
    )


def _dag_outputs(raw: dict[str, Any], kind: str, path: str) -> dict[str, DagOutput]:
    out = {}
    for key, raw_spec in _dict(raw.get(kind), f"{path}.{kind}").items():
        where = f"{path}.{kind}.{key}"
        spec = _dict(raw_spec, where)
        if kind == "parameters":
            if "valueFromParameter" in spec:
                src = _dict(spec["valueFromParameter"], f"{where}.valueFromParameter")
                sels = [src]
            else:
                oneof = _dict(spec.get("valueFromOneof"), f"{where}.valueFromOneof")
                sels = oneof.get("parameterSelectors") or []
            pairs = tuple((_str(s.get("producerSubtask"), f"{where}.producerSubtask"),
                           _str(s.get("outputParameterKey"), f"{where}.outputParameterKey"))
                          for s in sels)
        else:
            sels = spec.get("artifactSelectors") or []
            pairs = tuple((_str(s.get("producerSubtask"), f"{where}.producerSubtask"),
                           _str(s.get("outputArtifactKey"), f"{where}.outputArtifactKey"))
                          for s in sels)
        if not pairs:
            raise _bad(where, "no producer selected")
        out[key] = DagOutput(pairs)
    return out


def _component(name: str, raw: Any, path: str) -> ComponentSpec:
    raw = _dict(raw, path)
    ins = _dict(raw.get("inputDefinitions"), f"{path}.inputDefinitions")
    outs = _dict(raw.get("outputDefinitions"), f"{path}.outputDefinitions")
    dag = raw.get("dag")
    tasks: dict[str, TaskSpec] = {}
    param_outputs: dict[str, DagOutput] = {}
    artifact_outputs: dict[str, DagOutput] = {}
    executor = raw.get("executorLabel")
    if dag is not None:
        dag = _dict(dag, f"{path}.dag")
        raw_tasks = _dict(dag.get("tasks"), f"{path}.dag.tasks")
        for k in raw_tasks:
            _check_name(str(k), "task", f"{path}.dag.tasks.{k}")
        tasks = {k: _task(k, v, f"{path}.dag.tasks.{k}") for k, v in raw_tasks.items()}
        dag_outs = _dict(dag.get("outputs"), f"{path}.dag.outputs")
        param_outputs = _dag_outputs(dag_outs, "parameters", f"{path}.dag.outputs")
        artifact_outputs = _dag_outputs(dag_outs, "artifacts", f"{path}.dag.outputs")
    elif not isinstance(executor, str) or not executor:
        raise _bad(path, "a component needs either 'dag' or 'executorLabel'")
    for kind in ("parameters", "artifacts"):
        for key in _dict(outs.get(kind), f"{path}.outputDefinitions.{kind}"):
            _check_name(str(key), "output", f"{path}.outputDefinitions.{kind}.{key}")
    return ComponentSpec(
        name=name,
        input_params=_dict(ins.get("parameters"), f"{path}.inputDefinitions.parameters"),
        input_artifacts=_dict(ins.get("artifacts"), f"{path}.inputDefinitions.artifacts"),
        output_params=_dict(outs.get("parameters"), f"{path}.outputDefinitions.parameters"),
        output_artifacts=_dict(outs.get("artifacts"), f"{path}.outputDefinitions.artifacts"),
        executor=None if dag is not None else executor,
        tasks=tasks, param_outputs=param_outputs, artifact_outputs=artifact_outputs)


def _executor(raw: Any, path: str) -> ExecutorSpec:
    raw = _dict(raw, path)
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    if "container" in raw:
        c = _dict(raw["container"], f"{path}.container")
        env = {}
        for i, raw_item in enumerate(c.get("env") or []):
            item = _dict(raw_item, f"{path}.container.env[{i}]")
            env[_str(item.get("name"), f"{path}.container.env[{i}].name")] = str(
                item.get("value", ""))
        for key in ("command", "args"):
            if not isinstance(c.get(key) or [], list):
                raise _bad(f"{path}.container.{key}", "expected a list of strings")
        return ExecutorSpec(container=ContainerSpec(
            image=str(c.get("image") or ""),
            command=tuple(str(x) for x in c.get("command") or []),
            args=tuple(str(x) for x in c.get("args") or []),
            env=env,
            resources=_dict(c.get("resources"), f"{path}.container.resources")), digest=digest)
    if "importer" in raw:
        return ExecutorSpec(importer=_dict(raw["importer"], f"{path}.importer"), digest=digest)
    raise _bad(path, "expected 'container' or 'importer' (a 'resolver' needs a cluster)")


def parse_pipeline_spec(doc: Any) -> PipelineSpec:
    """Read a ``PipelineSpec`` (or a ``PipelineJob`` holding one under ``pipelineSpec``).

    Raises ``InvalidError`` naming the first wrong field; references between tasks,
    components and executors are checked too.
    """
    doc = _dict(doc, "pipelineSpec")
    if "pipelineSpec" in doc and "root" not in doc:
        doc = _dict(doc["pipelineSpec"], "pipelineSpec")
    for key in ("pipelineInfo", "root"):
        if key not in doc:
            raise _bad(key, "missing: not a KFP pipeline spec (IR YAML)")
    info = _dict(doc["pipelineInfo"], "pipelineInfo")
    root = _component("root", doc["root"], "root")
    raw_components = _dict(doc.get("components"), "components")
    for k in raw_components:
        _check_name(str(k), "component", f"components.{k}")
    components = {k: _component(k, v, f"components.{k}") for k, v in raw_components.items()}
    deployment = _dict(doc.get("deploymentSpec"), "deploymentSpec")
    raw_executors = _dict(deployment.get("executors"), "deploymentSpec.executors")
    for k in raw_executors:
        _check_name(str(k), "executor", f"deploymentSpec.executors.{k}")
    executors = {k: _executor(v, f"deploymentSpec.executors.{k}")
                 for k, v in raw_executors.items()}
    spec = PipelineSpec(name=_str(info.get("name"), "pipelineInfo.name"),
                        description=str(info.get("description") or ""),
                        root=root, components=components, executors=executors,
                        default_root=doc.get("defaultPipelineRoot"), raw=doc)
    _check_references(spec)
    return spec


def _check_references(spec: PipelineSpec) -> None:
    for comp in (spec.root, *spec.components.values()):
        where = "root" if comp is spec.root else f"components.{comp.name}"
        if comp.executor is not None and comp.executor not in spec.executors:
            raise _bad(f"{where}.executorLabel",
                       f"unknown executor {comp.executor!r} (not in deploymentSpec.executors)")
        for task in comp.tasks.values():
            tpath = f"{where}.dag.tasks.{task.name}"
            if task.component not in spec.components:
                raise _bad(f"{tpath}.componentRef.name", f"unknown component {task.component!r}")
            for dep in task.dependencies:
                if dep not in comp.tasks:
                    raise _bad(f"{tpath}.dependentTasks", f"unknown task {dep!r}")
            for key, src in [*task.params.items(), *task.artifacts.items()]:
                producer = getattr(src, "producer_task", None) or getattr(
                    src, "final_status_of", None)
                if producer is not None and producer not in comp.tasks:
                    raise _bad(f"{tpath}.inputs.{key}", f"unknown producer task {producer!r}")
        _check_acyclic(comp, where)


def _check_acyclic(comp: ComponentSpec, where: str) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name):], name])
            raise _bad(f"{where}.dag.tasks", f"dependency cycle: {cycle}")
        state[name] = 1
        for dep in upstream_tasks(comp.tasks[name]):
            if dep in comp.tasks:
                visit(dep, [*trail, name])
        state[name] = 2

    for name in comp.tasks:
        visit(name, [])


def upstream_tasks(task: TaskSpec) -> set[str]:
    """Every task this one waits for: explicit dependencies and data producers."""
    deps = set(task.dependencies)
    for src in task.params.values():
        if src.producer_task:
            deps.add(src.producer_task)
        if src.final_status_of:
            deps.add(src.final_status_of)
    for art in task.artifacts.values():
        if art.producer_task:
            deps.add(art.producer_task)
    return deps


