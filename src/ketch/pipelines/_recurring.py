"""The ``RecurringRun`` kind (``pipelines.ketch.dev/v1``) and its controller: KFP's
recurring runs, which create a ``PipelineRun`` on a cron or interval trigger.

Each run is named ``<recurring-run>-<scheduled time as YYYYMMDDhhmmss>``, labelled
``pipelines.ketch.dev/recurring-run: <name>`` (see ``label_value`` for names over 63
characters), and its spec is the ``runTemplate``
plus ``scheduledTime``. Because the name follows from the scheduled time, a
controller that crashed after creating a run and before recording it in
``status.lastScheduledTime`` finds the run already there on restart and moves on:
no scheduled time ever gets two runs. A run is active until its phase is
Succeeded, Failed, Cancelled or Error (or it is deleted); at most ``maxConcurrency``
are active. ``status.activeRuns`` names them; a run created just before a crash and
not yet recorded there is added when the restarted controller finds it by name.
When the schedule is behind (the server was down, the schedule was disabled),
missed times are run oldest first unless ``noCatchup`` (see ``_schedule``).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import AlreadyExistsError, InvalidError, NotFoundError
from ketch.core.kinds import Column, KindInfo
from ketch.core.resources import KetchModel, Resource, set_condition
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.pipelines._catalog import EXPERIMENT
from ketch.pipelines._kind import PIPELINE_RUN, PipelineRunSpec
from ketch.pipelines._schedule import (
    Schedule,
    decide,
    format_time,
    parse_cron,
    parse_every,
    parse_time,
)

__all__ = [
    "RECURRING_LABEL",
    "RECURRING_RUN",
    "RecurringRunController",
    "RecurringRunSpec",
    "RecurringRunStatus",
    "Trigger",
    "label_value",
    "run_name",
]

log = logging.getLogger("ketch.pipelines.recurring")

RECURRING_LABEL = "pipelines.ketch.dev/recurring-run"
ACTIVE_UNTIL = ("Succeeded", "Failed", "Cancelled", "Error")
# How often a schedule that waits for a free slot looks at its runs again, and one
# held by an archived experiment at the experiment.
_BLOCKED_RECHECK = 1.0
_ARCHIVED_RECHECK = 5.0


class Trigger(KetchModel):
    """Exactly one of ``cron`` (5 fields, or 6 with seconds first as KFP writes them, or
    a descriptor such as ``@daily`` or ``@every 15m``; UTC) or ``intervalSeconds``."""

    cron: str | None = None
    interval_seconds: int | None = Field(default=None, ge=1)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and parse_every(value) is None:
            parse_cron(value)
        return value

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("set exactly one of 'cron' or 'intervalSeconds'")
        return self


def _time(value: str | None) -> str | None:
    if value is None:
        return None
    return format_time(parse_time(value))


class RecurringRunSpec(KetchModel):
    """A schedule and the run it starts."""

    trigger: Trigger
    run_template: PipelineRunSpec
    start_time: str | None = None
    end_time: str | None = None
    max_concurrency: int = Field(default=10, ge=1, le=1000)
    no_catchup: bool = False
    mode: Literal["Enable", "Disable"] = "Enable"
    description: str = Field(default="", max_length=10_000)

    @field_validator("start_time", "end_time")
    @classmethod
    def _times(cls, value: str | None) -> str | None:
        return _time(value)

    @field_validator("run_template")
    @classmethod
    def _template(cls, value: PipelineRunSpec) -> PipelineRunSpec:
        if value.scheduled_time is not None or value.cancel:
            raise ValueError("scheduledTime and cancel are set by the schedule, not in the "
                             "template")
        return value

    @model_validator(mode="after")
    def _window(self) -> RecurringRunSpec:
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            raise ValueError("endTime must be after startTime")
        return self

    def schedule(self) -> Schedule:
        return Schedule(cron=self.trigger.cron, interval_seconds=self.trigger.interval_seconds,
                        start=parse_time(self.start_time) if self.start_time else None,
                        end=parse_time(self.end_time) if self.end_time else None)


class RecurringRunStatus(KetchModel):
    last_scheduled_time: str | None = None
    next_scheduled_time: str | None = None
    last_run_name: str | None = None
    active: int = 0
    # The runs not finished yet, by name: checked one by one, so a schedule with
    # thousands of past runs does not list them all at every fire time.
    active_runs: list[str] = Field(default_factory=list)
    conditions: list[dict[str, Any]] = Field(default_factory=list)


RECURRING_RUN = KindInfo(
    group="pipelines.ketch.dev",
    version="v1",
    kind="RecurringRun",
    plural="recurringruns",
    spec_model=RecurringRunSpec,
    status_model=RecurringRunStatus,
    short_names=("rr",),
    conditions=("Enabled",),
    columns=(
        Column("CRON", "spec.trigger.cron"),
        Column("INTERVAL", "spec.trigger.intervalSeconds"),
        Column("MODE", "spec.mode"),
        Column("LAST", "status.lastScheduledTime"),
        Column("NEXT", "status.nextScheduledTime"),
        Column("ACTIVE", "status.active", wide_only=True),
        Column("LAST RUN", "status.lastRunName", wide_only=True),
    ),
)


def label_value(recurring: str) -> str:
    """The recurring-run label's value: the name, or for a name longer than a label
    value may be (63), its start and a digest of the whole."""
    if len(recurring) <= 63:
        return recurring
    digest = hashlib.sha256(recurring.encode()).hexdigest()[:10]
    return f"{recurring[:52].rstrip('-.')}-{digest}"


def run_name(recurring: str, scheduled: datetime) -> str:
    """The run for one scheduled time: the same name every time it is computed."""
    return f"{recurring}-{scheduled.astimezone(UTC):%Y%m%d%H%M%S}"


def _created(obj: Resource) -> datetime:
    stamp = obj.metadata.creation_timestamp
    return parse_time(stamp) if stamp else datetime.now(UTC)


class RecurringRunController(Controller):
    """Creates each ``RecurringRun``'s PipelineRuns when they are due."""

    kind = RECURRING_RUN
    workers = 2

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime
        self.service = ResourceService(runtime)

    def still_active(self, rr: Resource, names: list[str]) -> list[str]:
        """The runs of ``names`` that exist and have not finished."""
        active = []
        for name in names:
            try:
                run = self.rt.store.get(PIPELINE_RUN, rr.namespace, name)
            except NotFoundError:
                continue  # deleted: it no longer takes a slot
            if run.metadata.deletion_timestamp:
                continue  # being deleted: its steps are being stopped
            if (run.status or {}).get("phase") not in ACTIVE_UNTIL:
                active.append(name)
        return active

    def experiment_archived(self, rr: Resource, spec: RecurringRunSpec) -> bool:
        name = spec.run_template.experiment
        if not name:
            return False
        try:
            experiment = self.rt.store.get(EXPERIMENT, rr.namespace, name)
        except NotFoundError:
            return False  # runs may name an experiment that was never created
        return bool(experiment.spec.get("archived"))

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            rr = self.rt.store.get(RECURRING_RUN, key.namespace, key.name)
        except NotFoundError:
            return None
        if rr.metadata.deletion_timestamp:
            return None
        spec: RecurringRunSpec = RECURRING_RUN.parse_spec(rr)
        status = dict(rr.status or {})
        active = self.still_active(rr, list(status.get("activeRuns") or []))
        status["activeRuns"] = active
        status["active"] = len(active)
        if spec.mode == "Disable":
            set_condition(status, "Enabled", False, "Disabled", "mode is Disable")
            status.pop("nextScheduledTime", None)
            self._write(rr, status)
            return None
        if self.experiment_archived(rr, spec):
            # KFP disables an archived experiment's recurring runs; unarchiving resumes
            # them (with catch-up, as re-enabling does).
            set_condition(status, "Enabled", False, "ExperimentArchived",
                          f'experiment "{spec.run_template.experiment}" is archived')
            status.pop("nextScheduledTime", None)
            self._write(rr, status)
            return Result(requeue_after=_ARCHIVED_RECHECK)
        now = datetime.now(UTC)
        last = status.get("lastScheduledTime")
        decision = decide(spec.schedule(), last=parse_time(last) if last else None,
                          created=_created(rr), now=now, active=len(active),
                          max_concurrency=spec.max_concurrency, catchup=not spec.no_catchup)
        for scheduled in decision.fire:
            name = self._create_run(rr, spec, scheduled)
            status["lastScheduledTime"] = format_time(scheduled)
            status["lastRunName"] = name
            if name not in status["activeRuns"]:
                status["activeRuns"] = [*status["activeRuns"], name]
            status["active"] = len(status["activeRuns"])
            # Record progress run by run: a crash re-creates nothing already recorded,
            # and the deterministic name catches the one created but not recorded.
            rr = self._write(rr, status)
            status = dict(rr.status)
        if decision.next_fire is None:
            set_condition(status, "Enabled", False, "Ended",
                          "no fire time is left before endTime")
            status.pop("nextScheduledTime", None)
            self._write(rr, status)
            return None
        status["nextScheduledTime"] = format_time(decision.next_fire)
        if decision.blocked:
            set_condition(status, "Enabled", True, "WaitingForConcurrency",
                          f"{len(active) + len(decision.fire)} runs active; maxConcurrency "
                          f"is {spec.max_concurrency}")
        else:
            set_condition(status, "Enabled", True, "Scheduled")
        self._write(rr, status)
        if decision.blocked:
            return Result(requeue_after=_BLOCKED_RECHECK)
        wait = (decision.next_fire - datetime.now(UTC)).total_seconds()
        return Result(requeue_after=max(0.01, wait))

    def _create_run(self, rr: Resource, spec: RecurringRunSpec, scheduled: datetime) -> str:
        name = run_name(rr.name, scheduled)
        body = {
            "apiVersion": PIPELINE_RUN.api_version, "kind": PIPELINE_RUN.kind,
            "metadata": {
                "name": name, "namespace": rr.namespace,
                "labels": {RECURRING_LABEL: label_value(rr.name)},
                "ownerReferences": [{"apiVersion": RECURRING_RUN.api_version,
                                     "kind": RECURRING_RUN.kind, "name": rr.name,
                                     "uid": rr.metadata.uid, "controller": True}],
            },
            "spec": {**spec.run_template.to_wire(), "scheduledTime": format_time(scheduled)},
        }
        try:
            self.service.create(PIPELINE_RUN, body)
            log.info("recurring run %s/%s started %s", rr.namespace, rr.name, name)
        except AlreadyExistsError:
            pass  # created before a crash (or by another control plane): done
        except InvalidError as err:
            # A template that no longer validates (say, a label value too long):
            # surface it instead of retrying forever.
            status = dict(rr.status or {})
            set_condition(status, "Enabled", False, "InvalidRunTemplate", err.message)
            self._write(rr, status)
            raise
        return name

    def _write(self, rr: Resource, status: dict[str, Any]) -> Resource:
        """Write status guarded by resourceVersion. A ``ConflictError`` makes the
        controller re-read and decide again; runs already created are found by name."""
        if status == rr.status:
            return rr
        return self.rt.store.update_status(RECURRING_RUN,
                                           rr.model_copy(update={"status": status}))
