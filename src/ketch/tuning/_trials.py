"""The Trial controller: run each Trial's runSpec as one executor unit and read its
metrics when it ends.

    (created) --claim--> active={unitId} --submit--> Running --exit 0, metric--> Succeeded
                                                       |  --exit 0, no metric--> MetricsUnavailable
                                                       |  --exit != 0---------> Failed
    any --label ketch.dev/stop=EarlyStopped|Killed--> unit cancelled, that condition
    any --delete--> unit cancelled, log removed, finalizer dropped

The claim is written before the process starts (as for Jobs), so two control planes
never start one trial twice; the unit id is ``<trial uid>-1``, so a control plane that
died between the claim and writing the handle finds the process by lookup.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import ExecutorError, InsufficientResourcesError, InvalidError, NotFoundError
from ketch.core.executors import Handle, ResourceRequest, UnitState, UnitStatus, WorkUnit
from ketch.core.resources import Resource, now, set_condition
from ketch.core.runtime import LEASE_TTL, Runtime
from ketch.tuning._kinds import EXPERIMENT, TRIAL, TrialSpec, TrialStatus
from ketch.tuning._metrics import DEFAULT_FILE, file_wrapper, observe
from ketch.tuning._template import run_parts

__all__ = ["EXPERIMENT_LABEL", "STOP_LABEL", "TRIAL_LABEL", "TrialController", "log_key",
           "trial_state"]

log = logging.getLogger("ketch.tuning")

FINALIZER = "clean-metrics-in-db"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
TRIAL_LABEL = "katib.kubeflow.org/trial"
# Set by the experiment controller to stop a running trial: EarlyStopped or Killed.
STOP_LABEL = "ketch.dev/stop"
_RUNNING_RECHECK = 5.0
# How often a trial with early-stopping rules has its output so far read.
_RULE_RECHECK = 0.5
_FINAL = ("Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable")


# Experiments one of whose trials ended since their controller last looked, in this
# process: the experiment controller skips a reconcile that only its own status write
# caused (see ExperimentController.reconcile) unless a trial ended meanwhile.
_ENDED: set[tuple[str, str]] = set()
_ENDED_LOCK = threading.Lock()


def take_trial_ended(namespace: str, experiment: str) -> bool:
    """Whether a trial of the experiment ended since the last call (and forget it)."""
    with _ENDED_LOCK:
        found = (namespace, experiment) in _ENDED
        _ENDED.discard((namespace, experiment))
    return found


def log_key(trial: Resource) -> str:
    return f"logs/{trial.namespace}/trials/{trial.name}/{trial.metadata.uid}.log"


def trial_state(status: dict[str, Any]) -> str:
    """Katib's state of a trial: its final condition if it has one, else Running or
    Created (Pending)."""
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    for state in _FINAL:
        if conditions.get(state) == "True":
            return state
    return "Running" if conditions.get("Running") == "True" else "Created"


class TrialController(Controller):
    kind = TRIAL
    workers = 4

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime
        self._units: dict[str, ObjectKey] = {}
        runtime.executor.subscribe(self._on_exit)

    def _on_exit(self, unit_id: str) -> None:
        key = self._units.pop(unit_id, None)
        if key is not None:
            self.enqueue(key)

    def _write(self, trial: Resource, status: TrialStatus) -> Resource:
        wire = status.to_wire()
        version = self.rt.store.write_status(TRIAL, trial.model_copy(update={"status": wire}))
        meta = trial.metadata.model_copy(update={"resource_version": version})
        return trial.model_copy(update={"status": wire, "metadata": meta})

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            trial = self.rt.store.get(TRIAL, key.namespace, key.name)
        except NotFoundError:
            return None
        status = TrialStatus.model_validate(trial.status)
        if trial.metadata.deletion_timestamp:
            return self._delete(trial, status)
        if trial_state(trial.status) in _FINAL:
            return None
        if status.active is not None and status.control_plane != self.rt.id:
            if self.rt.is_alive(status.control_plane):
                return Result(requeue_after=LEASE_TTL / 2)
            status.control_plane = self.rt.id  # adopt a dead plane's trial
            trial = self._write(trial, status)
        stop = trial.metadata.labels.get(STOP_LABEL)
        if stop in ("EarlyStopped", "Killed"):
            return self._stop(trial, status, stop)
        spec: TrialSpec = TRIAL.parse_spec(trial)
        if status.active is None:
            return self._start(trial, status, spec)
        return self._observe(trial, status, spec)

    # -- start -------------------------------------------------------------------

    def _start(self, trial: Resource, status: TrialStatus, spec: TrialSpec) -> Result | None:
        if not status.conditions:
            status.start_time = now()
            _condition(status, "Created", True, "TrialCreated", "Trial is created")
        try:
            parts = run_parts(spec.run_spec, spec.primary_container_name)
        except (InvalidError, ValueError) as err:
            return self._end(trial, status, "Failed", "TrialFailed", f"cannot run: {err}")
        request = ResourceRequest(cpu=parts.cpu, memory=parts.memory, gpu=parts.gpu)
        executor = self.rt.executor
        if not executor.fits(request):
            never = executor.unschedulable(request)
            if never is not None:
                return self._end(trial, status, "Failed", "TrialFailed", never)
            self._write(trial, status)
            return Result(requeue_after=1.0)
        unit_id = f"{trial.metadata.uid}-1"
        status.control_plane = self.rt.id
        status.active = {"unitId": unit_id}
        status.image = parts.image
        trial = self._write(trial, status)  # the claim
        env = {**parts.env, "KATIB_TRIAL_NAME": trial.name,
               "KETCH_TRIAL_NAME": trial.name, "KETCH_TRIAL_NAMESPACE": trial.namespace}
        command = parts.command
        if _collector(spec) == "File":
            katib_path, _ = _file_source(spec)
            own = f"/tmp/ketch-trials/{trial.metadata.uid}/{katib_path.rsplit('/', 1)[-1]}"
            command = file_wrapper(command, katib_path, own)
            env["KATIB_METRICS_FILE"] = own
        unit = WorkUnit(unit_id=unit_id, command=command, env=env,
                        working_dir=parts.working_dir, resources=request,
                        timeout_seconds=parts.deadline, log_key=log_key(trial))
        self._units[unit_id] = ObjectKey(trial.namespace, trial.name)
        try:
            handle = executor.submit(unit)
        except InsufficientResourcesError:
            status.active = None
            self._write(trial, status)
            return Result(requeue_after=0.5)
        except ExecutorError as err:
            status.active = None
            return self._end(trial, status, "Failed", "TrialFailed", f"cannot start: {err}")
        status.active = dict(handle)
        status.node = executor.node(handle)
        image = f" (image {parts.image} recorded, not pulled: ketch runs no containers)" \
            if parts.image else ""
        _condition(status, "Running", True, "TrialRunning", f"Trial is running{image}")
        self._write(trial, status)
        return Result(requeue_after=_RUNNING_RECHECK)

    # -- running -----------------------------------------------------------------

    def _handle(self, trial: Resource, status: TrialStatus) -> Handle | None:
        active = status.active or {}
        if self.rt.executor.is_handle(active):
            return dict(active)
        return self.rt.executor.lookup(str(active.get("unitId")))

    def _observe(self, trial: Resource, status: TrialStatus, spec: TrialSpec) -> Result | None:
        handle = self._handle(trial, status)
        if handle is None:  # claimed, never started: start it now
            status.active = None
            return self._start(self._write(trial, status), status, spec)
        self._units[str(handle["unitId"])] = ObjectKey(trial.namespace, trial.name)
        result = self.rt.executor.poll(handle)
        if result.state is UnitState.RUNNING:
            if not spec.early_stopping_rules:
                return Result(requeue_after=_RUNNING_RECHECK)
            broken = self._broken_rule(handle, spec)
            if broken is not None:
                return self._stop(trial, status, "EarlyStopped", broken)
            return Result(requeue_after=_RULE_RECHECK)
        self.rt.executor.finalize(handle)
        self._finish(trial, status, spec, result)
        self.rt.executor.forget(handle)
        return None

    def _broken_rule(self, handle: Handle, spec: TrialSpec) -> str | None:
        """The early-stopping rule the trial's output so far breaks, described; None
        while it keeps them. A rule applies from its ``startStep``-th report of the
        metric on; ``less`` stops a value below the rule's, ``greater`` one above."""
        text = b"".join(self.rt.executor.logs(handle, follow=False)).decode("utf-8", "replace")
        names = [rule.name for rule in spec.early_stopping_rules]
        observed = observe(text, names, _filters(spec), push=_collector(spec) == "Push",
                           file=_file_source(spec)[1] if _collector(spec) == "File" else None)
        for rule in spec.early_stopping_rules:
            seen = [v for _, v in observed.values.get(rule.name, [])]
            if len(seen) < (rule.start_step or 1):
                continue
            limit, latest = float(rule.value), seen[-1]
            if (rule.comparison == "less" and latest < limit) or (
                    rule.comparison == "greater" and latest > limit) or (
                    rule.comparison == "equal" and latest == limit):
                return (f"{rule.name}={latest!r} at report {len(seen)} is {rule.comparison} "
                        f"than {rule.value} (the median of completed trials)")
        return None

    def _read_observation(self, trial: Resource, status: TrialStatus,
                          spec: TrialSpec) -> list[dict[str, str]]:
        """The metrics in the trial's kept log, recorded in ``status.observation``."""
        key = log_key(trial)
        status.log_uri = self.rt.artifacts.uri(key)
        text = (self.rt.artifacts.read_bytes(key).decode("utf-8", "replace")
                if self.rt.artifacts.exists(key) else "")
        objective = spec.objective
        names = [objective.objective_metric_name, *objective.additional_metric_names]
        observed = observe(text, names, _filters(spec), push=_collector(spec) == "Push",
                           file=_file_source(spec)[1] if _collector(spec) == "File" else None)
        metrics = observed.metrics(names)
        status.observation = _observation(metrics)
        return metrics

    def _finish(self, trial: Resource, status: TrialStatus, spec: TrialSpec,
                result: UnitStatus) -> Result | None:
        metrics = self._read_observation(trial, status, spec)
        objective = spec.objective
        kind = _collector(spec)
        if result.state is not UnitState.SUCCEEDED:
            return self._end(trial, status, "Failed", "TrialFailed",
                      f"the trial's process failed: {result.reason or 'Error'}: "
                      f"{result.message}".rstrip(": "))
        if not any(m["name"] == objective.objective_metric_name for m in metrics):
            return self._end(trial, status, "MetricsUnavailable", "MetricsUnavailable",
                      f"the trial reported no value of the objective metric "
                      f"{objective.objective_metric_name!r} ({kind} collector)")
        return self._end(trial, status, "Succeeded", "TrialSucceeded", "Trial has succeeded")

    def _end(self, trial: Resource, status: TrialStatus, state: str, reason: str,
             message: str) -> Result | None:
        status.active = None
        status.completion_time = now()
        if state != "Created":
            _condition(status, "Running", False, reason, message)
        _condition(status, state, True, reason, message)
        self._write(trial, status)
        experiment = trial.metadata.labels.get(EXPERIMENT_LABEL)
        if experiment:
            with _ENDED_LOCK:
                _ENDED.add((trial.namespace, experiment))
            self.rt.notify(EXPERIMENT, trial.namespace, experiment)
        return None

    def _stop(self, trial: Resource, status: TrialStatus, state: str,
              why: str = "") -> Result | None:
        handle = self._handle(trial, status) if status.active else None
        if handle is not None:
            self.rt.executor.cancel(handle, grace_seconds=2.0)
            self.rt.executor.finalize(handle)
            self.rt.executor.forget(handle)
        if state == "EarlyStopped":  # what it reported until then is its observation
            self._read_observation(trial, status, TRIAL.parse_spec(trial))
        reason = "TrialEarlyStopped" if state == "EarlyStopped" else "TrialKilled"
        message = (f"Trial is early stopped{': ' + why if why else ''}"
                   if state == "EarlyStopped" else "Trial is killed: its experiment ended")
        return self._end(trial, status, state, reason, message)

    def _delete(self, trial: Resource, status: TrialStatus) -> Result | None:
        owner = status.control_plane
        if status.active and owner != self.rt.id and self.rt.is_alive(owner):
            return Result(requeue_after=1.0)  # its owner kills the work
        handle = self._handle(trial, status) if status.active else None
        if handle is None:
            handle = self.rt.executor.lookup(f"{trial.metadata.uid}-1")
        if handle is not None:
            self.rt.executor.cancel(handle, grace_seconds=2.0)
            self.rt.executor.forget(handle)
        self.rt.artifacts.delete(log_key(trial))
        meta = trial.metadata.model_copy(update={
            "finalizers": [f for f in trial.metadata.finalizers if f != FINALIZER]})
        self.rt.store.update(TRIAL, trial.model_copy(update={"metadata": meta}))
        return None


def _collector(spec: TrialSpec) -> str:
    collector = spec.metrics_collector
    return collector.collector.kind if collector and collector.collector else "StdOut"


def _file_source(spec: TrialSpec) -> tuple[str, str]:
    """The File collector's path as the template names it, and its format."""
    collector = spec.metrics_collector
    source = collector.source.file_system_path if collector and collector.source else None
    return ((source.path if source and source.path else DEFAULT_FILE),
            (source.format if source and source.format else "TEXT"))


def _filters(spec: TrialSpec) -> list[str]:
    collector = spec.metrics_collector
    if collector and collector.source and collector.source.filter:
        return list(collector.source.filter.metrics_format)
    return []


def _observation(metrics: list[dict[str, str]]) -> Any:
    from ketch.tuning._kinds import Observation

    return Observation.model_validate({"metrics": metrics})


def _condition(status: TrialStatus, type_: str, value: bool, reason: str, message: str) -> None:
    holder: dict[str, Any] = {"conditions": status.conditions}
    set_condition(holder, type_, value, reason, message)
    status.conditions = holder["conditions"]
