"""The Experiment controller: one Optuna study per Experiment, trials as Trial objects.

Each reconcile reads the Experiment's Trials (by Katib's experiment label), tells the
study what every finished one observed, decides whether the Experiment has ended
(goal reached, trial budget spent, too many failures, the grid exhausted) and if not
asks the study for as many new trials as ``parallelTrialCount`` leaves room for. The
study lives in the database (``_journal``): a restarted control plane opens the same
study, and a trial the study handed out before a crash but whose Trial object was
never written is written then, under the name derived from its number, so no trial
runs twice and none is lost.

One control plane at a time asks an Experiment's study for trials: the one named in
``status.controlPlane``, taken over only when that one is dead.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import AlreadyExistsError, ConflictError, NotFoundError
from ketch.core.resources import Resource, now, set_condition
from ketch.core.runtime import LEASE_TTL, Runtime
from ketch.core.service import ResourceService
from ketch.tuning._kinds import (
    EXPERIMENT,
    SUGGESTION,
    TRIAL,
    KatibExperimentSpec,
    KatibExperimentStatus,
)
from ketch.tuning._template import render
from ketch.tuning._trials import (
    EXPERIMENT_LABEL,
    STOP_LABEL,
    TRIAL_LABEL,
    take_trial_ended,
    trial_state,
)

__all__ = ["ExperimentController", "trial_name"]

log = logging.getLogger("ketch.tuning")

FINALIZER = "update-prometheus-metrics"
NUMBER_ANNOTATION = "ketch.dev/study-trial"
_DEFAULT_PARALLEL = 3
_RECHECK = 5.0
# How long after a full reconcile a wake-up with nothing new is skipped.
_QUIET = 1.0


def trial_name(experiment: Resource, number: int) -> str:
    """The Trial of study trial ``number``: Katib's ``<experiment>-<8 letters>``, the
    letters derived from the Experiment's uid and the number (stable over restarts)."""
    digest = hashlib.sha256(f"{experiment.metadata.uid}/{number}".encode()).digest()
    letters = "".join("bcdfghjklmnpqrstvwxz"[b % 20] for b in digest[:8])
    return f"{experiment.name}-{letters}"


@dataclass
class _Study:
    study: Any
    journal: Any  # its StoreJournal: an ask is one batch
    distributions: dict[str, Any]
    # Grid points in all (grid only): the study asks no more than there are, even
    # with several trials in flight (Optuna's GridSampler repeats points then).
    grid: int | None = None

    def exhausted(self) -> bool:
        return self.grid is not None and len(self.study.get_trials(deepcopy=False)) >= self.grid


class ExperimentController(Controller):
    kind = EXPERIMENT

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime
        self.service = ResourceService(runtime)
        self._studies: dict[str, _Study] = {}
        # uid -> (resourceVersion, when) of the last full reconcile's result.
        self._looked: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    # -- helpers -----------------------------------------------------------------

    def _write(self, exp: Resource, status: KatibExperimentStatus) -> Resource:
        wire = status.to_wire()
        version = self.rt.store.write_status(EXPERIMENT, exp.model_copy(update={"status": wire}))
        meta = exp.metadata.model_copy(update={"resource_version": version})
        return exp.model_copy(update={"status": wire, "metadata": meta})

    def _trials(self, exp: Resource) -> list[Resource]:
        from ketch.core.labels import LabelSelector

        selector = LabelSelector.parse(f"{EXPERIMENT_LABEL}={exp.name}")
        items = self.rt.store.list(TRIAL, exp.namespace, selector=selector).items
        uid = exp.metadata.uid
        return [t for t in items if any(r.uid == uid for r in t.metadata.owner_references)]

    def _study(self, exp: Resource, spec: KatibExperimentSpec) -> _Study:
        uid = str(exp.metadata.uid)
        with self._lock:
            found = self._studies.get(uid)
        if found is not None:
            return found
        from ketch.tuning._journal import StoreJournal, open_study
        from ketch.tuning._space import distributions, grid_size, sampler

        # A study opened again (a restart) gets a sampler seeded past what it used, so
        # a seeded sampler does not hand out its first suggestions a second time.
        logged = len(list(StoreJournal(self.rt.store, uid).read_logs(0)))
        salt = str(logged) if logged else ""
        study, journal = open_study(self.rt.store, uid, direction=spec.objective.type,
                                    sampler=sampler(spec, salt))
        found = _Study(study, journal, distributions(spec.parameters),
                       grid_size(spec) if spec.algorithm.algorithm_name == "grid" else None)
        with self._lock:
            self._studies[uid] = found
        return found

    # -- reconcile ---------------------------------------------------------------

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            exp = self.rt.store.get(EXPERIMENT, key.namespace, key.name)
        except NotFoundError:
            return None
        if self._nothing_new(exp):
            return Result(requeue_after=_RECHECK)
        status = KatibExperimentStatus.model_validate(exp.status)
        if exp.metadata.deletion_timestamp:
            return self._delete(exp)
        if _ended(status) and not self._restart(exp, status):
            return None
        if status.control_plane not in (None, self.rt.id):
            if self.rt.is_alive(status.control_plane):
                return Result(requeue_after=LEASE_TTL / 2)
            with self._lock:  # another plane asked meanwhile: read the study again
                self._studies.pop(str(exp.metadata.uid), None)
        status.control_plane = self.rt.id
        before = status.to_wire() if status.control_plane == exp.status.get("controlPlane") \
            else {}
        spec: KatibExperimentSpec = EXPERIMENT.parse_spec(exp)
        if not status.conditions:
            status.start_time = now()
            status.current_optimal_trial = _optimal(None)  # Katib writes it from the start
            _condition(status, "Created", True, "ExperimentCreated", "Experiment is created")
            exp = self._write(exp, status)
        self._ensure_suggestion(exp, spec)
        try:
            study = self._study(exp, spec)
        except Exception as err:  # a sampler that cannot be built (a missing library)
            log.exception("experiment %s: cannot open its study", key)
            _condition(status, "Running", False, "ExperimentFailed", str(err))
            _condition(status, "Failed", True, "ExperimentFailed",
                       f"cannot run algorithm {spec.algorithm.algorithm_name}: {err}")
            status.completion_time = now()
            self._write(exp, status)
            return None
        trials = self._trials(exp)
        self._tell(study, trials, spec)
        trials = self._adopt_asked(exp, spec, study, trials)
        self._count(status, trials, spec)
        ended = self._end_reason(status, spec, study, trials)
        if ended is not None:
            return self._finish(exp, status, trials, *ended)
        if self._ask(exp, spec, study, status, trials):
            self._record_suggestions(exp, trials)
        _condition(status, "Running", True, "ExperimentRunning", "Experiment is running")
        if any(c.get("type") == "Restarting" and c.get("status") == "True"
               for c in status.conditions):
            _condition(status, "Restarting", False, "ExperimentRunning", "Experiment is running")
        if status.to_wire() != before:  # an unchanged status is not written (nor re-read)
            exp = self._write(exp, status)
        with self._lock:
            self._looked[str(exp.metadata.uid)] = (exp.metadata.resource_version,
                                                   time.monotonic())
        return Result(requeue_after=_RECHECK)

    def _restart(self, exp: Resource, status: KatibExperimentStatus) -> bool:
        """Katib's resume: an Experiment that succeeded by spending its trial budget
        runs on when the budget is raised and its resumePolicy is not Never."""
        spec: KatibExperimentSpec = EXPERIMENT.parse_spec(exp)
        done = next((c for c in status.conditions if c.get("type") == "Succeeded"
                     and c.get("status") == "True"), None)
        if (done is None or done.get("reason") != "ExperimentMaxTrialsReached"
                or (spec.resume_policy or "Never") == "Never"
                or spec.max_trial_count is None or spec.max_trial_count <= status.trials):
            return False
        _condition(status, "Succeeded", False, "ExperimentRestarting", "Experiment is restarted")
        _condition(status, "Restarting", True, "ExperimentRestarting", "Experiment is restarted")
        status.completion_time = None
        self._write(exp, status)
        return True

    def _nothing_new(self, exp: Resource) -> bool:
        """Whether this reconcile was caused by our own last status write only: the
        object is as we left it a moment ago and none of its trials has ended since.
        (A full look still comes every _RECHECK seconds, and after any other change.)"""
        with self._lock:
            looked = self._looked.get(str(exp.metadata.uid))
        if looked is None or looked[0] != exp.metadata.resource_version:
            return False
        recent = time.monotonic() - looked[1] <= _QUIET
        return recent and not take_trial_ended(exp.namespace, exp.name)

    def _ensure_suggestion(self, exp: Resource, spec: KatibExperimentSpec) -> None:
        try:
            self.rt.store.get(SUGGESTION, exp.namespace, exp.name)
            return
        except NotFoundError:
            pass
        body = {"apiVersion": SUGGESTION.api_version, "kind": "Suggestion",
                "metadata": {"name": exp.name, "namespace": exp.namespace,
                             "labels": {EXPERIMENT_LABEL: exp.name},
                             "ownerReferences": [_owner(exp)]},
                "spec": {"algorithm": spec.algorithm.to_wire(), "requests": 0,
                         **({"earlyStopping": spec.early_stopping.to_wire()}
                            if spec.early_stopping else {}),
                         "resumePolicy": spec.resume_policy or "Never"}}
        with contextlib.suppress(AlreadyExistsError):
            self.service.create(SUGGESTION, body)

    def _tell(self, study: _Study, trials: list[Resource], spec: KatibExperimentSpec) -> None:
        """Give the study every finished trial's outcome it does not have yet."""
        from optuna.trial import TrialState

        state_of = {t.number: t.state for t in study.study.get_trials(deepcopy=False)}
        for trial in trials:
            number = _number(trial)
            if number is None or state_of.get(number) is not TrialState.RUNNING:
                continue
            state = trial_state(trial.status)
            if state == "Succeeded":
                value = objective_value(trial, spec)
                if value is not None:
                    study.study.tell(number, value)
                    continue
                study.study.tell(number, state=TrialState.FAIL)
            elif state == "EarlyStopped":
                study.study.tell(number, state=TrialState.PRUNED)
            elif state in ("Failed", "Killed", "MetricsUnavailable"):
                study.study.tell(number, state=TrialState.FAIL)

    def _adopt_asked(self, exp: Resource, spec: KatibExperimentSpec, study: _Study,
                     trials: list[Resource]) -> list[Resource]:
        """Trials the study handed out whose Trial objects were never written (the
        control plane died in between): write them now, with the study's values."""
        from optuna.trial import TrialState

        have = {_number(t) for t in trials}
        for frozen in study.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number in have:
                continue
            if set(frozen.params) != set(study.distributions):
                # Asked without the batch (an older journal) and cut short: never run.
                study.study.tell(frozen.number, state=TrialState.FAIL)
                continue
            if frozen.number not in have:
                trials.append(self._create_trial(exp, spec, frozen.number, frozen.params,
                                                 early_stopping_rules(spec, trials)))
        return trials

    def _ask(self, exp: Resource, spec: KatibExperimentSpec, study: _Study,
             status: KatibExperimentStatus, trials: list[Resource]) -> int:
        """Ask the study for the trials there is room for; how many were asked."""
        active = status.trials_running + status.trials_pending
        room = (spec.parallel_trial_count or _DEFAULT_PARALLEL) - active
        if spec.max_trial_count is not None:
            room = min(room, spec.max_trial_count - len(trials))
        asked = 0
        rules = early_stopping_rules(spec, trials)
        for _ in range(max(room, 0)):
            if study.exhausted():
                break
            with study.journal.batch():  # the trial and all its parameters, or nothing
                new = study.study.ask(study.distributions)
            trials.append(self._create_trial(exp, spec, new.number, new.params, rules))
            asked += 1
        self._count(status, trials, spec)
        return asked

    def _record_suggestions(self, exp: Resource, trials: list[Resource]) -> None:
        """The Suggestion shows what the study handed out, as Katib's does."""
        try:
            suggestion = self.rt.store.get(SUGGESTION, exp.namespace, exp.name)
        except NotFoundError:
            return
        ordered = sorted(trials, key=lambda t: _number(t) or 0)
        status = dict(suggestion.status or {})
        status.update(
            suggestionCount=len(ordered), lastReconcileTime=now(),
            startTime=status.get("startTime") or now(),
            suggestions=[{"name": t.name,
                          "parameterAssignments": t.spec.get("parameterAssignments") or [],
                          "labels": t.spec.get("labels") or {}} for t in ordered])
        holder: dict[str, Any] = {"conditions": status.get("conditions") or []}
        set_condition(holder, "Created", True, "SuggestionCreated", "Suggestion is created")
        set_condition(holder, "Running", True, "SuggestionRunning", "Suggestion is running")
        status["conditions"] = holder["conditions"]
        spec = {**suggestion.spec, "requests": len(ordered)}
        with contextlib.suppress(ConflictError):  # rewritten on the next ask
            updated = self.rt.store.update(SUGGESTION, suggestion.model_copy(
                update={"spec": spec}))
            self.rt.store.write_status(SUGGESTION, updated.model_copy(update={"status": status}))

    def _create_trial(self, exp: Resource, spec: KatibExperimentSpec, number: int,
                      params: dict[str, Any], rules: list[dict[str, Any]]) -> Resource:
        from ketch.tuning._space import from_optuna

        name = trial_name(exp, number)
        assignments = from_optuna(params)
        labels = {EXPERIMENT_LABEL: exp.name, TRIAL_LABEL: name}
        run = render(spec.trial_template, {a["name"]: a["value"] for a in assignments},
                     trial=name, namespace=exp.namespace, labels=labels)
        template = spec.trial_template
        body = {"apiVersion": TRIAL.api_version, "kind": "Trial",
                "metadata": {"name": name, "namespace": exp.namespace, "labels": labels,
                             "annotations": {NUMBER_ANNOTATION: str(number)},
                             "ownerReferences": [_owner(exp)]},
                "spec": {"objective": spec.objective.to_wire(),
                         "parameterAssignments": assignments, "runSpec": run,
                         "primaryContainerName": template.primary_container_name
                         or "training-container",
                         **({"metricsCollector": spec.metrics_collector_spec.to_wire()}
                            if spec.metrics_collector_spec else {}),
                         **({"successCondition": template.success_condition}
                            if template.success_condition else {}),
                         **({"failureCondition": template.failure_condition}
                            if template.failure_condition else {}),
                         **({"earlyStoppingRules": rules} if rules else {}),
                         "labels": labels}}
        try:
            return self.service.create(TRIAL, body)
        except AlreadyExistsError:
            return self.rt.store.get(TRIAL, exp.namespace, name)

    # -- status ------------------------------------------------------------------

    def _count(self, status: KatibExperimentStatus, trials: list[Resource],
               spec: KatibExperimentSpec) -> None:
        lists: dict[str, list[str]] = {s: [] for s in (
            "Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable",
            "Running", "Created")}
        for trial in trials:
            lists[trial_state(trial.status)].append(trial.name)
        for names in lists.values():
            names.sort()
        status.succeeded_trial_list = lists["Succeeded"] or None
        status.failed_trial_list = lists["Failed"] or None
        status.killed_trial_list = lists["Killed"] or None
        status.early_stopped_trial_list = lists["EarlyStopped"] or None
        status.metrics_unavailable_trial_list = lists["MetricsUnavailable"] or None
        status.running_trial_list = lists["Running"] or None
        status.pending_trial_list = lists["Created"] or None
        status.trials = len(trials)
        status.trials_succeeded = len(lists["Succeeded"])
        status.trials_failed = len(lists["Failed"])
        status.trials_killed = len(lists["Killed"])
        status.trials_early_stopped = len(lists["EarlyStopped"])
        status.trial_metrics_unavailable = len(lists["MetricsUnavailable"])
        status.trials_running = len(lists["Running"])
        status.trials_pending = len(lists["Created"])
        best = _best(trials, spec)
        if best is not None:
            status.current_optimal_trial = _optimal(best)

    def _end_reason(self, status: KatibExperimentStatus, spec: KatibExperimentSpec, study: _Study,
                    trials: list[Resource]) -> tuple[str, str, str] | None:
        """(condition, reason, message) when the Experiment has ended."""
        goal = spec.objective.goal
        best = _best(trials, spec)
        if goal is not None and best is not None:
            value = objective_value(best, spec)
            reached = value is not None and (value <= goal if spec.objective.type == "minimize"
                                             else value >= goal)
            if reached:
                return ("Succeeded", "ExperimentGoalReached",
                        "Experiment has succeeded because Objective goal has reached")
        failed = status.trials_failed + status.trial_metrics_unavailable
        if spec.max_failed_trial_count is not None and failed > spec.max_failed_trial_count:
            return ("Failed", "ExperimentFailed",
                    f"Experiment has failed because max failed count has reached "
                    f"({failed} failed trials, maxFailedTrialCount "
                    f"{spec.max_failed_trial_count})")
        active = status.trials_running + status.trials_pending
        done = len(trials) - active
        if spec.max_trial_count is not None and done >= spec.max_trial_count:
            return ("Succeeded", "ExperimentMaxTrialsReached",
                    "Experiment has succeeded because max trial count has reached")
        if active == 0 and study.exhausted():
            return ("Succeeded", "ExperimentSuggestionEndReached",
                    "Experiment has succeeded because suggestion service has reached the end")
        return None

    def _finish(self, exp: Resource, status: KatibExperimentStatus, trials: list[Resource],
                condition: str, reason: str, message: str) -> Result | None:
        for trial in trials:  # what still runs is killed, as Katib does
            if trial_state(trial.status) in ("Running", "Created"):
                self._stop_trial(trial, "Killed")
        status.completion_time = now()
        status.last_reconcile_time = status.completion_time
        _condition(status, "Running", False, reason, message)
        _condition(status, condition, True, reason, message)
        self._write(exp, status)
        with self._lock:
            self._studies.pop(str(exp.metadata.uid), None)
        return None

    def _stop_trial(self, trial: Resource, state: str) -> None:
        labels = {**trial.metadata.labels, STOP_LABEL: state}
        meta = trial.metadata.model_copy(update={"labels": labels})
        with contextlib.suppress(NotFoundError):
            self.rt.store.update(TRIAL, trial.model_copy(update={"metadata": meta}))

    def _delete(self, exp: Resource) -> Result | None:
        for trial in self._trials(exp):
            if not trial.metadata.deletion_timestamp:
                with contextlib.suppress(NotFoundError):
                    self.service.delete(TRIAL, trial.namespace, trial.name)
        if self._trials(exp):
            return Result(requeue_after=0.5)  # their units are stopped first
        from ketch.tuning._journal import delete_study

        delete_study(self.rt.store, str(exp.metadata.uid))
        with self._lock:
            self._studies.pop(str(exp.metadata.uid), None)
        with contextlib.suppress(NotFoundError):
            self.service.delete(SUGGESTION, exp.namespace, exp.name)
        meta = exp.metadata.model_copy(update={
            "finalizers": [f for f in exp.metadata.finalizers if f != FINALIZER]})
        self.rt.store.update(EXPERIMENT, exp.model_copy(update={"metadata": meta}))
        return None


def early_stopping_rules(spec: KatibExperimentSpec,
                         trials: list[Resource]) -> list[dict[str, Any]]:
    """Katib's median stop: once ``min_trials_required`` trials have succeeded, a new
    trial gets a rule to stop it, from its ``start_step``-th report on, when its
    objective is worse than the median of theirs."""
    stopping = spec.early_stopping
    if stopping is None or stopping.algorithm_name != "medianstop":
        return []
    settings = {s.name: s.value for s in stopping.algorithm_settings}
    values = sorted(v for t in trials if trial_state(t.status) == "Succeeded"
                    and (v := objective_value(t, spec)) is not None)
    if not values or len(values) < int(settings.get("min_trials_required", 3)):
        return []
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return [{"name": spec.objective.objective_metric_name, "value": repr(median),
             "comparison": "greater" if spec.objective.type == "minimize" else "less",
             "startStep": int(settings.get("start_step", 4))}]


def objective_value(trial: Resource, spec: KatibExperimentSpec) -> float | None:
    """The trial's objective under the metric's strategy (Katib's default: min when
    minimizing, max when maximizing)."""
    name = spec.objective.objective_metric_name
    strategy = next((s.value for s in spec.objective.metric_strategies if s.name == name),
                    "min" if spec.objective.type == "minimize" else "max")
    for metric in (trial.status.get("observation") or {}).get("metrics") or []:
        if metric.get("name") == name and metric.get(strategy) not in (None, ""):
            return float(metric[strategy])
    return None


def _best(trials: list[Resource], spec: KatibExperimentSpec) -> Resource | None:
    scored = [(v, t) for t in trials if trial_state(t.status) == "Succeeded"
              and (v := objective_value(t, spec)) is not None]
    if not scored:
        return None
    pick = min if spec.objective.type == "minimize" else max
    return pick(scored, key=lambda pair: pair[0])[1]


def _optimal(best: Resource | None) -> Any:
    from ketch.tuning._kinds import OptimalTrial

    if best is None:
        return OptimalTrial()
    return OptimalTrial.model_validate({
        "bestTrialName": best.name,
        "parameterAssignments": best.spec.get("parameterAssignments") or [],
        "observation": best.status.get("observation") or {"metrics": []}})


def _number(trial: Resource) -> int | None:
    text = trial.metadata.annotations.get(NUMBER_ANNOTATION)
    return int(text) if text and text.isdigit() else None


def _ended(status: KatibExperimentStatus) -> bool:
    return any(c.get("type") in ("Succeeded", "Failed") and c.get("status") == "True"
               for c in status.conditions)


def _owner(exp: Resource) -> dict[str, Any]:
    return {"apiVersion": EXPERIMENT.api_version, "kind": "Experiment", "name": exp.name,
            "uid": str(exp.metadata.uid), "controller": True, "blockOwnerDeletion": True}


def _condition(status: KatibExperimentStatus, type_: str, value: bool, reason: str,
               message: str) -> None:
    holder: dict[str, Any] = {"conditions": status.conditions}
    set_condition(holder, type_, value, reason, message)
    status.conditions = holder["conditions"]
