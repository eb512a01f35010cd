"""The DAG engine: one step of a run, from its IR and its status to the next status.

``RunEngine.step`` is level-triggered like every reconcile: it polls the executor units
of running steps, records the outputs of those that ended, starts every task whose inputs
are ready as an executor unit (as far as the executor has room), and returns. It keeps
no state of its own between steps; ``status.tasks`` holds everything, so a restarted
control plane carries on from the last status written and never re-runs a task recorded
as finished.

Task status entries (the wire contract, camelCase): ``phase``, ``displayName``,
``attempts``, ``startTime``, ``completionTime``, ``cached``, ``cachedFrom``, ``inputs``,
``outputs`` ({parameters, artifacts}), ``message``, and for sub-DAGs ``tasks`` (nested) or
for loops ``iterations`` (each with ``index``, ``phase`` and ``tasks``). ``unit`` (the
running attempt's executor handle, opaque), ``outputUri``, ``launchTime`` and
``retryAt`` are the engine's bookkeeping.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketch.core.component_backoff import backoff_delay
from ketch.core.errors import InvalidError
from ketch.core.executors import ResourceRequest, RuntimeEnv, UnitState, WorkUnit
from ketch.core.resources import now, set_condition
from ketch.pipelines._inputs import (
    coerce_parameter,
    executor_input,
    resolve_placeholders,
    runtime_placeholders,
)
from ketch.pipelines._ir import ComponentSpec, PipelineSpec, TaskSpec, upstream_tasks
from ketch.pipelines._kind import flatten_tasks
from ketch.pipelines._launch import command_unit, log_key, python_unit, unit_id
from ketch.pipelines._packages import NOT_INSTALLED_ENV, requirements_of
from ketch.pipelines._paths import under
from ketch.pipelines._staging import is_remote
from ketch.pipelines._steps import (
    NotProduced,
    accelerators,
    cache_key,
    collect_outputs,
    condition_holds,
    cpu_request,
    failure_message,
    fill_constant,
    fill_strings,
    lightweight_entry,
    memory_limit,
    output_root,
    produced,
    read_location,
    select,
    with_accelerator,
)

if TYPE_CHECKING:
    from ketch.core.artifacts import ArtifactStore
    from ketch.core.executors import Executor, Handle, UnitStatus
    from ketch.pipelines._lineage import RunLineage

__all__ = ["RunContext", "RunEngine", "StepResult"]

DONE = ("Succeeded", "Failed", "Skipped", "Cancelled")
# How much of a failed step's log its message keeps.
_TAIL_BYTES = 4000
# Where a step's executor output and output parameter files go, per attempt, under
# its output URI ('.' keeps it apart from artifact names, which are identifiers).
META_DIR = ".ketch"
# SIGTERM-to-SIGKILL for a cancelled step: a cancel stops every running step in turn.
_CANCEL_GRACE = 2.0


@dataclass(frozen=True)
class RunContext:
    namespace: str
    name: str
    uid: str
    create_time: str
    schedule_time: str
    arguments: Mapping[str, Any]
    caching: bool
    artifact_root: str
    env: Mapping[str, str] = field(default_factory=dict)
    install_packages: bool = False


@dataclass
class StepResult:
    phase: str
    outputs: dict[str, Any]
    poll_after: float | None
    message: str | None = None


@dataclass
class _Scope:
    params: dict[str, Any]
    artifacts: dict[str, list[dict[str, Any]]]


class RunEngine:
    def __init__(self, spec: PipelineSpec, ctx: RunContext, tasks: dict[str, Any], *,
                 executor: Executor, artifacts: ArtifactStore, lineage: RunLineage | None,
                 cancel: bool = False) -> None:
        self.spec = spec
        self.ctx = ctx
        self.tasks = tasks
        self.executor = executor
        self.artifacts = artifacts
        self.lineage = lineage
        # Units of steps that ended in this pass: forgotten (their scratch removed) only
        # after the status that records their end is written (see the controller).
        self.ended: list[Handle] = []
        # Lineage writes wait for the end of the pass: the next step starts first, so a
        # database write is off the path from one step's exit to the next one's start.
        self._records: list[Callable[[], None]] = []
        self.cancel = cancel
        self.failed = False
        # Set when the executor had no room for a step: later steps of this pass wait
        # without resolving inputs or looking up the cache (a wide loop would do it N
        # times); the controller starts the run again when any unit ends.
        self.slots_full = False
        self.poll: float | None = None
        self.changed = False
        self._upstream: dict[int, tuple[str, ...]] = {}

    # -- the step ----------------------------------------------------------------

    def step(self, root_params: dict[str, Any]) -> StepResult:
        try:
            return self._step(root_params)
        finally:
            for record in self._records:
                record()
            self._records.clear()

    def _record(self, write: Callable[[RunLineage], None]) -> None:
        if self.lineage is not None:
            lineage = self.lineage
            self._records.append(lambda: write(lineage))

    def _step(self, root_params: dict[str, Any]) -> StepResult:
        self.failed = _any_failed(self.tasks)
        scope = _Scope(dict(root_params), {})
        phase = self._dag(self.spec.root, scope, self.tasks, "")
        if self.cancel:
            return StepResult("Cancelled", {}, None, "cancelled")
        if phase is None:
            return StepResult("Running", {}, self.poll)
        outputs = self._dag_outputs(self.spec.root, self.tasks) if phase == "Succeeded" else {}
        message = None if phase == "Succeeded" else _first_failure(self.tasks)
        return StepResult(phase, outputs, None, message)

    def _mark(self, st: dict[str, Any], phase: str, message: str | None = None) -> None:
        st["phase"] = phase
        if message:
            st["message"] = message
        if phase in DONE:
            st["completionTime"] = now()
        self.changed = True

    def _wake_in(self, seconds: float) -> None:
        self.poll = seconds if self.poll is None else min(self.poll, seconds)

    def _dag(self, comp: ComponentSpec, scope: _Scope, tasks: dict[str, Any],
             path: str) -> str | None:
        """Advance every task of one DAG; its phase once all are done, else None."""
        # Every pass looks at every task of the DAG, so what it does for a task that
        # has ended or still waits must cost next to nothing: a long chain is mostly
        # those, and their share grew each step's cost with the pipeline's length.
        progress = True
        while progress:
            progress = False
            for task in comp.tasks.values():
                st = tasks.get(task.name)
                if st is None:
                    st = tasks[task.name] = {"phase": "Pending",
                                             "displayName": task.display_name}
                before = st["phase"]
                if before in DONE or (before == "Pending" and not self.cancel
                                      and not self._upstream_done(task, tasks)):
                    continue
                self._task(task, scope, tasks, st, f"{path}/{task.name}".lstrip("/"))
                progress = progress or st["phase"] != before
        return _dag_phase([tasks[t] for t in comp.tasks])

    def _upstream_done(self, task: TaskSpec, siblings: dict[str, Any]) -> bool:
        upstream = self._upstream.get(id(task))
        if upstream is None:
            # Per pass (the engine lives for one), keyed by the task spec it holds.
            upstream = self._upstream[id(task)] = tuple(upstream_tasks(task))
        for name in upstream:
            sibling = siblings.get(name)
            if sibling is None or sibling.get("phase", "Pending") not in DONE:
                return False
        return True

    def _task(self, task: TaskSpec, scope: _Scope, siblings: dict[str, Any],
              st: dict[str, Any], path: str) -> None:
        component = self.spec.components[task.component]
        if self.cancel:
            self._cancel(st)
            return
        if st["phase"] == "Running":
            if component.is_dag:
                self._running_dag(task, component, st, path)
            else:
                self._running_step(task, st, path)
            return
        # Pending: wait for what it depends on.
        upstream = upstream_tasks(task)
        states = [siblings.get(name, {}).get("phase", "Pending") for name in upstream]
        if any(p not in DONE for p in states):
            return
        # A task between retry attempts has started, so its upstream succeeded: it goes
        # on as a running step does when another fails (Argo's fail-fast only stops new
        # tasks), and ends with its own outcome, never Skipped.
        retrying = bool(st.get("attempts"))
        if not task.run_after_failure and not retrying and (self.failed or any(
                p in ("Failed", "Cancelled") for p in states)):
            self._mark(st, "Skipped", "not run: an upstream task failed")
            st["reason"] = "UpstreamFailed"
            return
        if self.slots_full and not component.is_dag:
            return
        retry_at = st.get("retryAt")
        if retry_at and retry_at > time.time():
            self._wake_in(retry_at - time.time())
            return
        try:
            params, artifacts = self._resolve_inputs(task, component, scope, siblings, path)
        except NotProduced as missing:
            self._mark(st, "Skipped", f"not run: {missing}")
            return
        if task.condition and not condition_holds(task.condition, params):
            self._mark(st, "Skipped", "condition was false")
            st["reason"] = "ConditionFalse"
            return
        st.setdefault("startTime", now())
        st["inputs"] = {"parameters": params,
                        "artifacts": {k: v for k, v in artifacts.items()}}
        if component.is_dag:
            self._start_dag(task, component, st, _Scope(params, artifacts))
            self._running_dag(task, component, st, path)
        else:
            self._start_step(task, component, st, params, artifacts, path)

    # -- DAG tasks: conditions, nested pipelines, loops --------------------------------

    def _start_dag(self, task: TaskSpec, component: ComponentSpec, st: dict[str, Any],
                   scope: _Scope) -> None:
        self._mark(st, "Running")
        if task.iterator is None:
            st["tasks"] = {}
            return
        it = task.iterator
        if it.artifact:
            items: list[Any] = list(scope.artifacts.get(it.items_input or "", []))
        elif it.raw_items is not None:
            items = json.loads(it.raw_items)
        else:
            value = scope.params.get(it.items_input or "")
            items = json.loads(value) if isinstance(value, str) else list(value or [])
        st["iterations"] = [{"index": i, "phase": "Pending", "tasks": {}} for i in
                            range(len(items))]
        st["items"] = items

    def _running_dag(self, task: TaskSpec, component: ComponentSpec, st: dict[str, Any],
                     path: str) -> None:
        inputs = st.get("inputs") or {}
        params = dict(inputs.get("parameters") or {})
        artifacts = dict(inputs.get("artifacts") or {})
        if task.iterator is None:
            phase = self._dag(component, _Scope(params, artifacts), st["tasks"], path)
        else:
            phase = self._loop(task, component, st, params, artifacts, path)
        if phase is None:
            return
        if phase == "Succeeded":
            st["outputs"] = (self._loop_outputs(component, st) if task.iterator
                             else self._dag_outputs(component, st["tasks"]))
        self._mark(st, phase)
        if phase == "Skipped":
            st["reason"] = "UpstreamFailed"
        if phase == "Failed":
            self.failed = True

    def _loop(self, task: TaskSpec, component: ComponentSpec, st: dict[str, Any],
              params: dict[str, Any], artifacts: dict[str, Any], path: str) -> str | None:
        assert task.iterator is not None
        it = task.iterator
        limit = it.parallelism or len(st["iterations"]) or 1
        active = sum(1 for x in st["iterations"] if x["phase"] == "Running")
        for entry, item in zip(st["iterations"], st["items"], strict=True):
            if entry["phase"] in DONE:
                continue
            if entry["phase"] == "Pending":
                if active >= limit or (self.failed and not task.run_after_failure):
                    if self.failed:
                        self._mark(entry, "Skipped", "not run: an upstream task failed")
                        entry["reason"] = "UpstreamFailed"
                    continue
                entry["phase"] = "Running"
                active += 1
            scope = _Scope(dict(params), dict(artifacts))
            if it.artifact:
                scope.artifacts[it.item_input] = [item]
            else:
                scope.params[it.item_input] = item
            phase = self._dag(component, scope, entry["tasks"], f"{path}/{entry['index']}")
            if phase is not None:
                self._mark(entry, phase)
                if phase == "Skipped":
                    entry["reason"] = "UpstreamFailed"
                active -= 1
                if phase == "Failed":
                    self.failed = True
        return _dag_phase(st["iterations"])

    def _dag_outputs(self, component: ComponentSpec, tasks: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"parameters": {}, "artifacts": {}}
        for kind, spec in (("parameters", component.param_outputs),
                           ("artifacts", component.artifact_outputs)):
            for name, dag_out in spec.items():
                for producer, key in dag_out.selectors:
                    pst = tasks.get(producer) or {}
                    values = (pst.get("outputs") or {}).get(kind) or {}
                    if pst.get("phase") == "Succeeded" and key in values:
                        out[kind][name] = values[key]
                        break
        return out

    def _loop_outputs(self, component: ComponentSpec, st: dict[str, Any]) -> dict[str, Any]:
        """``dsl.Collected``: each loop output is the list of its iterations' values."""
        out: dict[str, Any] = {"parameters": {}, "artifacts": {}}
        per_iteration = [self._dag_outputs(component, x["tasks"]) for x in st["iterations"]]
        for kind in ("parameters", "artifacts"):
            names = (component.param_outputs if kind == "parameters"
                     else component.artifact_outputs)
            for name in names:
                values = [o[kind][name] for o in per_iteration if name in o[kind]]
                if kind == "artifacts":
                    values = [a for v in values for a in (v if isinstance(v, list) else [v])]
                out[kind][name] = values
        return out

    # -- container steps -----------------------------------------------------------

    def _start_step(self, task: TaskSpec, component: ComponentSpec, st: dict[str, Any],
                    params: dict[str, Any], artifacts: dict[str, list[dict[str, Any]]],
                    path: str) -> None:
        assert component.executor is not None
        executor = self.spec.executors[component.executor]
        key = cache_key(executor.digest, component, params, artifacts)
        if self.ctx.caching and task.cache and self.lineage is not None and executor.container:
            hit = self.lineage.lookup(key, component)
            if hit is not None:
                st.update(outputs=hit["outputs"], cached=True, cachedFrom=hit["origin"])
                self._record(lambda lineage: lineage.cached(path, st))
                self._mark(st, "Succeeded")
                return
        if executor.importer is not None:
            self._import(component, executor.importer, st, params, path)
            return
        container = executor.container
        assert container is not None
        lightweight = lightweight_entry(list(container.command), list(container.args))
        attempt = int(st.get("attempts") or 0) + 1
        unit = unit_id(self.ctx.uid, path, attempt)
        # The id is the claim: a control plane that died between submit and its status
        # write left this attempt's unit behind, and it is adopted, never started twice.
        handle = self.executor.lookup(unit)
        try:
            output_uri = under(self.ctx.artifact_root, path, where=f"task {path}")
            meta = under(output_uri, META_DIR, f"attempt-{attempt}", where=f"task {path}")
            inputs = executor_input(component, params, artifacts, meta, output_uri)
        except InvalidError as err:  # names are checked at load: only a hand-made status
            self._mark(st, "Failed", f"{err.message}: {err.fields[0].path}: "
                                     f"{err.fields[0].message}")
            self.failed = True
            return
        memory = memory_limit(container.resources)
        if handle is None:
            work = self._unit(unit, container, lightweight, inputs, meta, path, attempt, st)
            if work is None:
                return
            handle = self._submit(work, st)
            if handle is None:
                return
        if memory:
            st["memoryLimit"] = memory
        st.update(attempts=attempt, unit=handle, cacheKey=key, launchTime=time.time(),
                  outputUri=output_uri, cached=False)
        node = self.executor.node(handle)
        if node:
            st["node"] = node
        accelerator = accelerators(container.resources)
        if accelerator and self.executor.unschedulable(
                with_accelerator(ResourceRequest(cpu=0.0), *accelerator)) is not None:
            # The executor cannot grant it: say so rather than drop it.
            set_condition(st, "AcceleratorUnavailable", True, "NotScheduled",
                          f"requested {accelerator[1]} {accelerator[0]}; the executor has "
                          "no such resource, so the step runs without it")
        st.pop("retryAt", None)
        st.pop("message", None)
        self._mark(st, "Running")
        if container.image and lightweight is None:
            set_condition(st, "HostProcess", True, "NoContainerRuntime",
                          f"ran as a host process: no container runtime here, image "
                          f"{container.image!r} not used")

    def _unit(self, unit: str, container: Any, lightweight: tuple[str, str] | None,
              inputs: dict[str, Any], meta: str, path: str, attempt: int,
              st: dict[str, Any]) -> WorkUnit | None:
        """The executor unit of one attempt (None: the step failed before it started)."""
        remote = is_remote(self.ctx.artifact_root)
        if not remote:
            # A local store: the step writes its files in place, where a container's
            # command expects their directories to exist (KFP's launcher makes them).
            Path(meta, "outputs").mkdir(parents=True, exist_ok=True)
            for arts in inputs["outputs"]["artifacts"].values():
                Path(arts["artifacts"][0]["uri"]).parent.mkdir(parents=True, exist_ok=True)
        env = {**self.ctx.env, **container.env, "KETCH_PIPELINE_TASK": path}
        packages = self._packages(container.command, st) if lightweight else None
        if lightweight is not None and packages is None:
            # Its packages_to_install are not installed: an ImportError then says so.
            reqs = requirements_of(list(container.command))
            if reqs is not None:
                env[NOT_INSTALLED_ENV] = " ".join(reqs.packages)
        resources = ResourceRequest(cpu=cpu_request(container.resources),
                                    memory=memory_limit(container.resources))
        accelerator = accelerators(container.resources)
        if accelerator is not None:
            # An accelerator type is a resource name (Kubernetes: an extended resource):
            # a GPU, or a custom resource of the executor's nodes, where it has them.
            asked = with_accelerator(resources, *accelerator)
            if self.executor.unschedulable(asked) is None:
                resources = asked
        log = log_key(self.ctx.namespace, self.ctx.name, self.ctx.uid, path, attempt)
        store = self.ctx.artifact_root if remote else None
        if lightweight is not None:
            source, function = lightweight
            return python_unit(unit, {"executorInput": inputs, "store": store, "python": {
                "source": source, "function": function}}, env=env, resources=resources,
                log=log, packages=packages, preload=_preload(store))
        argv = [*container.command, *container.args]
        runtime = self._runtime(path.rsplit("/", 1)[-1], path)
        if remote:
            # Placeholders are resolved in the unit, against its own mount root.
            return python_unit(unit, {"executorInput": inputs, "store": store, "argv": argv,
                                      "runtime": runtime}, env=env, resources=resources,
                               log=log, preload=_preload(store))
        try:
            argv = resolve_placeholders(argv, inputs, runtime)
        except InvalidError as err:
            self._mark(st, "Failed", f"{err.message}: {err.fields[0].message}")
            self.failed = True
            return None
        return command_unit(unit, argv, env=env, resources=resources, log=log)

    def _submit(self, work: WorkUnit, st: dict[str, Any]) -> Handle | None:
        """Start ``work``; None when the executor has no room now (the run waits) or the
        step cannot start at all (it failed)."""
        from ketch.core.errors import ExecutorError, InsufficientResourcesError

        try:
            return self.executor.submit(work)
        except InsufficientResourcesError:
            total = self.executor.capacity()
            res = work.resources
            if res.memory > total.memory > 0:
                self._mark(st, "Failed", f"Unschedulable: the step's memory limit {res.memory} "
                                         f"is more than the executor has ({total.memory})")
                self.failed = True
                return None
            if res.cpu > total.cpu:
                # More cores than there are: the step takes them all, when they are free
                # (as the CPU slots did; Kubernetes would leave it Pending for ever).
                return self._submit(replace(work, resources=replace(res, cpu=total.cpu)), st)
            self.slots_full = True
            self._wake_in(1.0)
            return None
        except ExecutorError as err:
            self._mark(st, "Failed", f"the step could not start: {err}")
            self.failed = True
            return None

    def _packages(self, command: tuple[str, ...], st: dict[str, Any]) -> RuntimeEnv | None:
        """The venv a step asks for when the run installs packages: built by the
        executor where the unit runs, once per requirement set (``RuntimeEnv``)."""
        if not self.ctx.install_packages:
            return None
        reqs = requirements_of(list(command))
        if reqs is None:
            return None
        set_condition(st, "PackagesInstalled", False, "Installing",
                      "installing " + " ".join(reqs.packages))
        return RuntimeEnv(packages=reqs.packages, index_urls=reqs.index_urls)

    def _running_step(self, task: TaskSpec, st: dict[str, Any], path: str) -> None:
        attempts = int(st.get("attempts") or 1)
        handle = st.get("unit")
        if not self.executor.is_handle(handle):
            # Only the claim (or a status from before steps were units): find the unit.
            handle = self.executor.lookup(unit_id(self.ctx.uid, path, attempts))
        status = self._poll(handle)
        if not status.done:
            # The exit subscriber wakes the run when the unit ends; this is the backstop.
            self._wake_in(2.0)
            return
        tail = ""
        if handle is not None:
            if status.state is not UnitState.SUCCEEDED:
                tail = _tail(self.executor, handle)
            self.executor.finalize(handle)  # the log to the store, the slots back
            self.ended.append(handle)
            node = self.executor.node(handle)  # a backend that places units late knows now
            if node:
                st["node"] = node
        st.pop("unit", None)
        self.changed = True
        if any(c.get("type") == "PackagesInstalled" for c in st.get("conditions") or []):
            failed = status.reason == "RuntimeEnvFailed"
            set_condition(st, "PackagesInstalled", not failed,
                          "Failed" if failed else "Installed", status.message if failed
                          else "installed in the step's virtualenv")
        if status.state is UnitState.SUCCEEDED:
            try:
                meta = under(output_root(st), META_DIR, f"attempt-{attempts}",
                             where=f"task {path}")
                st["outputs"] = collect_outputs(meta, st, self.spec.components[
                    task.component], lambda where: read_location(self.artifacts, where))
            except (OSError, ValueError, InvalidError) as err:
                st["message"] = f"could not read the step's outputs: {err}"
            else:
                key = st.get("cacheKey")
                self._record(lambda lineage: lineage.completed(path, st, key))
                self._mark(st, "Succeeded")
                return
        why = st.get("message") or failure_message(tail, status.exit_code, status.reason,
                                                   status.message)
        if attempts <= task.retry.max_retries and not self.cancel:
            delay = backoff_delay(attempts, base=task.retry.backoff_seconds,
                                  cap=task.retry.backoff_max_seconds,
                                  factor=task.retry.backoff_factor)
            st.update(phase="Pending", retryAt=time.time() + delay, message=why)
            self.changed = True
            self._wake_in(delay)
            return
        self._mark(st, "Failed", why)
        self.failed = True
        self._record(lambda lineage: lineage.failed(path, st))

    def _poll(self, handle: Handle | None) -> UnitStatus:
        from ketch.core.executors import UnitStatus

        if handle is None:
            return UnitStatus(UnitState.LOST, reason="ProcessLost",
                              message="the step's unit was never started or is gone")
        return self.executor.poll(handle)

    def _import(self, component: ComponentSpec, importer: Mapping[str, Any],
                st: dict[str, Any], params: dict[str, Any], path: str) -> None:
        """``dsl.importer``: an existing URI becomes the task's output artifact."""
        uri_spec = importer.get("artifactUri") or {}
        uri = uri_spec.get("constant") if "constant" in uri_spec else params.get(
            uri_spec.get("runtimeParameter", ""))
        schema = (importer.get("typeSchema") or {}).get("schemaTitle", "system.Artifact")
        name = next(iter(component.output_artifacts), "artifact")
        # Metadata may hold the task's inputs as placeholders (kfp compiles task outputs
        # used in importer metadata to {{$.inputs.parameters['...']}}).
        runtime = self._runtime(path.rsplit("/", 1)[-1], path)
        metadata = fill_strings(dict(importer.get("metadata") or {}),
                                lambda text: fill_constant(text, runtime, params))
        st["outputs"] = {"parameters": {}, "artifacts": {name: {
            "name": name, "uri": str(uri), "type": schema, "metadata": metadata}}}
        self._record(lambda lineage: lineage.completed(st.get("displayName") or name, st,
                                                       None))
        self._mark(st, "Succeeded")

    def _cancel(self, st: dict[str, Any]) -> None:
        if st.get("phase") in DONE:
            return
        handle: Handle | None = st.get("unit")
        if handle is not None and st.get("phase") == "Running" and self.executor.is_handle(
                handle):
            self.executor.cancel(handle, grace_seconds=_CANCEL_GRACE)
            self.executor.finalize(handle)
            self.ended.append(handle)
            st.pop("unit", None)
        for sub in (st.get("tasks") or {}).values():
            self._cancel(sub)
        for entry in st.get("iterations") or []:
            for sub in entry["tasks"].values():
                self._cancel(sub)
            if entry["phase"] not in DONE:
                self._mark(entry, "Cancelled")
        self._mark(st, "Cancelled")

    # -- inputs ------------------------------------------------------------------

    def _runtime(self, task_name: str, path: str) -> dict[str, str]:
        """KFP's run-time placeholders (``{{$.pipeline_job_name}}``...) for the task at
        ``path``; its uuid is the one its step runs under (``<run uid>/<path>``)."""
        return runtime_placeholders(
            job_name=self.ctx.name, job_id=self.ctx.uid, task_name=task_name,
            task_id=f"{self.ctx.uid}/{path}", pipeline_root=self.ctx.artifact_root,
            create_time=self.ctx.create_time, schedule_time=self.ctx.schedule_time)

    def _resolve_inputs(self, task: TaskSpec, component: ComponentSpec, scope: _Scope,
                        siblings: dict[str, Any], path: str) -> tuple[dict[str, Any],
                                                           dict[str, list[dict[str, Any]]]]:
        params: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for name, src in task.params.items():
            if src.component_input is not None:
                if src.component_input not in scope.params:
                    continue  # an optional input left unset upstream
                value = scope.params[src.component_input]
            elif src.producer_task is not None:
                value = produced(siblings, src.producer_task, "parameters", src.output_key)
            elif src.final_status_of is not None:
                value = self._final_status(src.final_status_of, siblings)
            else:
                constants[name] = src.constant
                continue
            params[name] = select(value, src.selector) if src.selector else value
        # Constants last: an f-string constant refers to the task's other inputs.
        for name, constant in constants.items():
            params[name] = fill_constant(constant, self._runtime(task.name, path), params)
        for name, spec in component.input_params.items():
            if name not in params and "defaultValue" in spec:
                params[name] = fill_constant(spec["defaultValue"], self._runtime(task.name, path),
                                                 params)
            if name in params:
                # IR constants are protobuf numbers (10.0 for an int input): type them as
                # the component declares, as KFP's driver does.
                with contextlib.suppress(InvalidError):
                    params[name] = coerce_parameter(params[name], spec.get("parameterType"),
                                                    name)
        artifacts: dict[str, list[dict[str, Any]]] = {}
        for name, art in task.artifacts.items():
            if art.component_input is not None:
                if art.component_input not in scope.artifacts:
                    continue
                value = scope.artifacts[art.component_input]
            else:
                value = produced(siblings, art.producer_task or "", "artifacts", art.output_key)
            artifacts[name] = value if isinstance(value, list) else [value]
        return params, artifacts

    def _final_status(self, producer: str, siblings: dict[str, Any]) -> dict[str, Any]:
        pst = siblings.get(producer) or {}
        state = {"Succeeded": "SUCCEEDED", "Failed": "FAILED", "Cancelled": "CANCELLED",
                 "Skipped": "SKIPPED"}.get(pst.get("phase", ""), "FAILED")
        failed = state != "SUCCEEDED"
        return {"state": state,
                "pipelineJobResourceName": f"{self.ctx.namespace}/{self.ctx.name}",
                "pipelineTaskName": producer,
                "error": {"code": 1 if failed else 0,
                          "message": (_first_failure(self.tasks) or "") if failed else ""}}


def _dag_phase(children: list[dict[str, Any]]) -> str | None:
    """A DAG's phase from its children's: None while any runs. A DAG none of whose
    children ran because something upstream failed is itself Skipped, not Succeeded."""
    phases = [c["phase"] for c in children]
    if any(p not in DONE for p in phases):
        return None
    for phase in ("Cancelled", "Failed"):
        if phase in phases:
            return phase
    if children and all(p == "Skipped" for p in phases) and any(
            c.get("reason") == "UpstreamFailed" for c in children):
        return "Skipped"
    return "Succeeded"


def _any_failed(tasks: dict[str, Any]) -> bool:
    return any(st.get("phase") == "Failed" for _, st in flatten_tasks(tasks))


def _first_failure(tasks: dict[str, Any]) -> str | None:
    for path, st in flatten_tasks(tasks):
        if st.get("phase") == "Failed" and st.get("message"):
            return f"task {path.rsplit('/', 1)[-1]}: {st['message']}"
    return None


def _preload(store: str | None) -> tuple[str, ...]:
    """What a warm interpreter may import ahead of a step: the step's own modules (in
    every forked child they cost ~4.5 ms a step, hashlib's OpenSSL constructors and the
    executor's dataclasses, more than the rest of a trivial step), and for a staged step
    the remote store's filesystem (s3fs takes about a second to import)."""
    if store is None:
        return _STEP_MODULES
    return (*_STEP_MODULES, "ketch.pipelines._staging",
            *_FILESYSTEMS.get(store.split("://", 1)[0], ()))


_STEP_MODULES = ("ketch.pipelines._unit", "ketch.pipelines.executor")


_FILESYSTEMS = {"s3": ("s3fs",), "s3a": ("s3fs",), "gs": ("gcsfs",), "gcs": ("gcsfs",),
                "az": ("adlfs",), "abfs": ("adlfs",)}


def _tail(executor: Executor, handle: Handle) -> str:
    """The last few KB of a unit's log (a failed step's message ends with them)."""
    kept = b""
    for chunk in executor.logs(handle):
        kept = (kept + chunk)[-_TAIL_BYTES:]
    return kept.decode("utf-8", "replace")
