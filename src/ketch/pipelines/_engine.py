"""The DAG engine: one step of a run, from its IR and its status to the next status.

``RunEngine.step`` is level-triggered like every reconcile: it reads which tasks have
ended (their exit-status files), records their outputs, starts every task whose inputs
are ready (as far as the CPU slots allow), and returns. It keeps no state of its own
between steps; ``status.tasks`` holds everything, so a restarted control plane carries on
from the last status written and never re-runs a task recorded as finished.

Task status entries (the wire contract, camelCase): ``phase``, ``displayName``,
``attempts``, ``startTime``, ``completionTime``, ``cached``, ``cachedFrom``, ``inputs``,
``outputs`` ({parameters, artifacts}), ``message``, and for sub-DAGs ``tasks`` (nested) or
for loops ``iterations`` (each with ``index``, ``phase`` and ``tasks``). ``dir``,
``retryAt`` and ``cpu`` are the engine's bookkeeping.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketch.core.errors import InvalidError
from ketch.core.resources import now, set_condition
from ketch.pipelines._inputs import (
    coerce_parameter,
    executor_input,
    resolve_placeholders,
    runtime_placeholders,
)
from ketch.pipelines._ir import ComponentSpec, PipelineSpec, TaskSpec, upstream_tasks
from ketch.pipelines._kind import flatten_tasks
from ketch.pipelines._packages import NOT_INSTALLED_ENV, requirements_of
from ketch.pipelines._paths import under
from ketch.pipelines._staging import MOUNT_ROOT_ENV
from ketch.pipelines._staging import plan as staging_plan
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
    produced,
    select,
)
from ketch.pipelines._worker import (
    TaskRunner,
    kill_task,
    read_exit_code,
    task_alive,
    task_rss,
)

if TYPE_CHECKING:
    from ketch.pipelines._lineage import RunLineage
    from ketch.pipelines._packages import VenvCache

__all__ = ["RunContext", "RunEngine", "Slots", "StepResult"]

DONE = ("Succeeded", "Failed", "Skipped", "Cancelled")
_LOST_AFTER = 30.0  # seconds with neither a pid nor an exit file: the fork never happened


class Slots:
    """CPU accounting shared by every run of one control plane. Thread-safe; keyed by
    task id so that adopting a running task after a restart is idempotent."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self._held: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, task_id: str, cpu: float, *, force: bool = False) -> bool:
        with self._lock:
            if task_id in self._held:
                return True
            used = sum(self._held.values())
            # One task always fits on an idle machine, whatever it asks for.
            if not force and self._held and used + cpu > self.capacity + 1e-9:
                return False
            self._held[task_id] = cpu
            return True

    def release(self, task_id: str) -> None:
        with self._lock:
            self._held.pop(task_id, None)


@dataclass(frozen=True)
class RunContext:
    namespace: str
    name: str
    uid: str
    create_time: str
    schedule_time: str
    arguments: Mapping[str, Any]
    caching: bool
    run_dir: Path
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
                 runner: TaskRunner, slots: Slots, lineage: RunLineage | None,
                 venvs: VenvCache | None = None, cancel: bool = False) -> None:
        self.spec = spec
        self.ctx = ctx
        self.tasks = tasks
        self.runner = runner
        self.slots = slots
        self.lineage = lineage
        # Lineage writes wait for the end of the pass: the next step starts first, so a
        # database write is off the path from one step's exit to the next one's start.
        self._records: list[Callable[[], None]] = []
        self.venvs = venvs
        self.cancel = cancel
        self.failed = False
        # Set when a step found no free CPU: later steps of this pass wait without
        # resolving inputs or looking up the cache (a wide loop would do it N times).
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
        python = self._step_python(container.command, st, path) if lightweight else None
        if python == "":
            return  # its packages are still being installed, or failed to
        cpu = cpu_request(container.resources)
        task_id = f"{self.ctx.uid}/{path}"
        if not self.slots.take(task_id, cpu):
            self.slots_full = True
            self._wake_in(1.0)
            return
        attempt = int(st.get("attempts") or 0) + 1
        try:
            task_dir = under(self.ctx.run_dir, path, f"attempt-{attempt}", where=f"task {path}")
            output_uri = under(self.ctx.artifact_root, path, where=f"task {path}")
            inputs = executor_input(component, params, artifacts, task_dir, output_uri)
        except InvalidError as err:  # names are checked at load: only a hand-made status
            self.slots.release(task_id)
            self._mark(st, "Failed", f"{err.message}: {err.fields[0].path}: "
                                     f"{err.fields[0].message}")
            self.failed = True
            return
        (task_dir / "outputs").mkdir(parents=True, exist_ok=True)
        # A remote store: the step works on local copies under its own mount root, and
        # its process moves them in and out (``_staging``). A local store: none of that.
        staging = staging_plan(self.ctx.artifact_root, str(task_dir), inputs)
        mount_root = staging["mountRoot"] if staging else None
        if staging is None:
            for arts in inputs["outputs"]["artifacts"].values():
                Path(arts["artifacts"][0]["uri"]).parent.mkdir(parents=True, exist_ok=True)
        env = {**self.ctx.env, **container.env, "KETCH_PIPELINE_TASK": path}
        if mount_root:
            env[MOUNT_ROOT_ENV] = mount_root
        if lightweight is not None and python is None:
            # Its packages_to_install are not installed: an ImportError then says so.
            reqs = requirements_of(list(container.command))
            if reqs is not None:
                env[NOT_INSTALLED_ENV] = " ".join(reqs.packages)
        runtime = self._runtime(task.name, path)
        if lightweight is not None and python is not None:
            source, function = lightweight
            (task_dir / "component.py").write_text(source, encoding="utf-8")
            self.runner.start(task_id, task_dir, env=env, argv=[
                python, "-m", "ketch.pipelines.executor", "--executor_input",
                json.dumps(inputs), "--function_to_execute", function,
                "--source", str(task_dir / "component.py")], staging=staging)
        elif lightweight is not None:
            source, function = lightweight
            self.runner.start(task_id, task_dir, env=env, python={
                "source": source, "function": function, "executorInput": inputs},
                staging=staging)
        else:
            try:
                argv = resolve_placeholders([*container.command, *container.args], inputs,
                                            runtime, mount_root=mount_root)
            except InvalidError as err:
                self.slots.release(task_id)
                self._mark(st, "Failed", f"{err.message}: {err.fields[0].message}")
                self.failed = True
                return
            self.runner.start(task_id, task_dir, env=env, argv=argv, staging=staging)
        memory = memory_limit(container.resources)
        if memory:
            st["memoryLimit"] = memory
        st.update(attempts=attempt, dir=str(task_dir), cpu=cpu, cacheKey=key,
                  launchTime=time.time(), outputUri=output_uri, cached=False)
        gpus = accelerators(container.resources)
        if gpus:
            # No GPU scheduling for pipeline steps yet: say so rather than drop it.
            set_condition(st, "AcceleratorUnavailable", True, "NotScheduled",
                          f"requested {gpus[1]} {gpus[0]}; pipeline steps run without "
                          "accelerator scheduling here")
        st.pop("retryAt", None)
        st.pop("message", None)
        self._mark(st, "Running")
        if container.image and lightweight is None:
            set_condition(st, "HostProcess", True, "NoContainerRuntime",
                          f"ran as a host process: no container runtime here, image "
                          f"{container.image!r} not used")

    def _step_python(self, command: tuple[str, ...], st: dict[str, Any],
                     path: str) -> str | None:
        """The interpreter for a step: None for the warm worker, a venv's python when the
        run installs packages, "" while that venv is being built (or it failed)."""
        if not self.ctx.install_packages or self.venvs is None:
            return None
        reqs = requirements_of(list(command))
        if reqs is None:
            return None
        python, error = self.venvs.python_for(reqs)
        if error is not None:
            self._mark(st, "Failed", error)
            self.failed = True
            self._record(lambda lineage: lineage.failed(path, st))
            return ""
        if python is None:
            if not any(c.get("type") == "PackagesInstalled" for c in st.get("conditions", [])):
                set_condition(st, "PackagesInstalled", False, "Installing",
                              "installing " + " ".join(reqs.packages))
                self.changed = True
            self._wake_in(1.0)
            return ""
        set_condition(st, "PackagesInstalled", True, "Installed", " ".join(reqs.packages))
        return python

    def _running_step(self, task: TaskSpec, st: dict[str, Any], path: str) -> None:
        task_dir = Path(st["dir"])
        task_id = f"{self.ctx.uid}/{path}"
        rc = read_exit_code(task_dir)
        if rc is None:
            forking = (not (task_dir / "pid").exists()
                       and time.time() - float(st.get("launchTime") or 0) < _LOST_AFTER)
            if task_alive(task_dir) or forking:
                self.slots.take(task_id, float(st.get("cpu") or 1.0), force=True)
                limit = int(st.get("memoryLimit") or 0)
                if limit and (used := task_rss(task_dir)) > limit:
                    # Enforced as Kubernetes does: over the limit, the step is killed.
                    kill_task(task_dir, signal.SIGKILL)
                    st["message"] = (f"OOMKilled: the step used {used} bytes, over its "
                                     f"memory limit of {limit}")
                    self.changed = True
                self._wake_in(0.5 if limit else 2.0)  # the exit message usually comes first
                return
            # It may have written its status and ended between the two looks.
            rc = read_exit_code(task_dir)
            if rc is None:
                rc = -9  # the process is gone and left no status: killed
                kill_task(task_dir, signal.SIGKILL)  # and whatever it left behind
        self.slots.release(task_id)
        if rc == 0:
            try:
                st["outputs"] = collect_outputs(task_dir, st, self.spec.components[
                    task.component])
            except (OSError, ValueError) as err:
                rc, st["message"] = 1, f"could not read the step's outputs: {err}"
            else:
                key = st.get("cacheKey")
                self._record(lambda lineage: lineage.completed(path, st, key))
                self._mark(st, "Succeeded")
                return
        attempts = int(st.get("attempts") or 1)
        why = st.get("message") or failure_message(task_dir, rc)
        if attempts <= task.retry.max_retries and not self.cancel:
            delay = min(task.retry.backoff_seconds * task.retry.backoff_factor ** (attempts - 1),
                        task.retry.backoff_max_seconds)
            st.update(phase="Pending", retryAt=time.time() + delay, message=why)
            self.changed = True
            self._wake_in(delay)
            return
        self._mark(st, "Failed", why)
        self.failed = True
        self._record(lambda lineage: lineage.failed(path, st))

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
        if st.get("dir") and st.get("phase") == "Running":
            kill_task(st["dir"])
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
