"""ketch's pipeline kinds in the KFP API server's v2beta1 JSON shapes.

Each function turns one resource into the body ``kfp_server_api`` 2.16.1 decodes as its
``V2beta1*`` model (field names as in its ``attribute_map``). Ids are the resources'
uids, so a run keeps its id for as long as it exists; a name the user picked is the
``display_name`` (a run's, which need not be a valid resource name, is kept in the
``pipelines.ketch.dev/display-name`` annotation).

Listing (:func:`listing`) filters, sorts and pages these bodies rather than the
resources, so a filter key is exactly a field name of the answer (``state``,
``created_at``, ``experiment_id``), as KFP's filters are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ketch.core.errors import FieldError, InvalidError
from ketch.core.resources import Resource
from ketch.pipelines._kfp_run import KFP_STATES
from ketch.pipelines._kind import flatten_tasks

__all__ = [
    "DISPLAY_NAME",
    "STORAGE_STATE",
    "experiment_body",
    "listing",
    "pipeline_body",
    "recurring_run_body",
    "run_body",
    "version_body",
]

DISPLAY_NAME = "pipelines.ketch.dev/display-name"
# A run's KFP storage state (AVAILABLE or ARCHIVED): PipelineRun has no field for it.
STORAGE_STATE = "pipelines.ketch.dev/storage-state"
_TASK_STATES = {**KFP_STATES, "Skipped": "SKIPPED"}


def _display(obj: Resource) -> str:
    shown = obj.metadata.annotations.get(DISPLAY_NAME) or obj.spec.get("displayName")
    return str(shown or obj.name)


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def run_body(run: Resource, experiment_ids: dict[str, str], *, details: bool = True,
             version_reference: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``V2beta1Run``. ``experiment_ids`` maps experiment names to their ids;
    ``version_reference`` is the ``pipeline_version_reference`` of a run of a version."""
    phase = str(run.status.get("phase") or "Pending")
    state = KFP_STATES.get(phase, "RUNTIME_STATE_UNSPECIFIED")
    if run.spec.get("cancel") and phase in ("Pending", "Running"):
        state = "CANCELING"
    experiment = run.spec.get("experiment")
    body: dict[str, Any] = {
        "run_id": run.metadata.uid,
        "display_name": _display(run),
        "experiment_id": experiment_ids.get(str(experiment)) if experiment else None,
        "storage_state": run.metadata.annotations.get(STORAGE_STATE, "AVAILABLE"),
        "description": run.metadata.annotations.get("pipelines.ketch.dev/description"),
        "pipeline_spec": run.spec.get("pipelineSpec"),
        "pipeline_version_reference": version_reference,
        "runtime_config": _drop_none({"parameters": run.spec.get("arguments") or {},
                                      "pipeline_root": run.spec.get("pipelineRoot")}),
        "created_at": run.metadata.creation_timestamp,
        "scheduled_at": run.status.get("startTime") or run.metadata.creation_timestamp,
        "finished_at": run.status.get("completionTime"),
        "state": state,
        "recurring_run_id": run.metadata.labels.get("pipelines.ketch.dev/recurring-run"),
    }
    if phase == "Failed":
        body["error"] = {"code": 2, "message": str(run.status.get("message") or ""),
                         "details": []}
    if details:
        body["run_details"] = {"task_details": task_details(run)}
    return _drop_none(body)


def task_details(run: Resource) -> list[dict[str, Any]]:
    """``V2beta1PipelineTaskDetail`` of every task, nested ones with ``parent_task_id``."""
    run_id = run.metadata.uid
    found: list[dict[str, Any]] = []
    tasks = list(flatten_tasks(run.status.get("tasks") or {}))
    paths = {path for path, _ in tasks}
    for path, st in tasks:
        # The nearest enclosing task: a loop iteration's tasks (``for-loop-1/0/train``)
        # belong to the loop, an iteration not being a task of its own.
        parent: str | None = path
        while parent and "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in paths:
                break
        else:
            parent = None
        detail = _drop_none({
            "run_id": run_id, "task_id": f"{run_id}.{path}",
            "display_name": path.rsplit("/", 1)[-1],
            "create_time": st.get("startTime") or run.metadata.creation_timestamp,
            "start_time": st.get("startTime"), "end_time": st.get("completionTime"),
            "state": _TASK_STATES.get(str(st.get("phase") or "Pending"),
                                      "RUNTIME_STATE_UNSPECIFIED"),
            "parent_task_id": f"{run_id}.{parent}" if parent else None,
        })
        if st.get("phase") == "Failed" and st.get("message"):
            detail["error"] = {"code": 2, "message": str(st["message"]), "details": []}
        found.append(detail)
    by_id = {d["task_id"]: d for d in found}
    for detail in found:
        parent_detail = by_id.get(detail.get("parent_task_id") or "")
        if parent_detail is not None:
            parent_detail.setdefault("child_tasks", []).append({"task_id": detail["task_id"]})
    return found


def experiment_body(exp: Resource) -> dict[str, Any]:
    """A ``V2beta1Experiment``."""
    return _drop_none({
        "experiment_id": exp.metadata.uid, "display_name": _display(exp),
        "description": exp.spec.get("description") or "",
        "created_at": exp.metadata.creation_timestamp, "namespace": exp.namespace,
        "storage_state": "ARCHIVED" if exp.spec.get("archived") else "AVAILABLE",
    })


def pipeline_body(pipeline: Resource) -> dict[str, Any]:
    """A ``V2beta1Pipeline``."""
    return _drop_none({
        "pipeline_id": pipeline.metadata.uid, "name": pipeline.name,
        "display_name": _display(pipeline),
        "description": pipeline.spec.get("description") or "",
        "created_at": pipeline.metadata.creation_timestamp, "namespace": pipeline.namespace,
    })


def version_body(version: Resource, pipeline_id: str | None) -> dict[str, Any]:
    """A ``V2beta1PipelineVersion`` (``pipeline_spec`` is the IR)."""
    return _drop_none({
        "pipeline_id": pipeline_id, "pipeline_version_id": version.metadata.uid,
        "name": version.name, "display_name": _display(version),
        "description": version.spec.get("description") or "",
        "created_at": version.metadata.creation_timestamp,
        "pipeline_spec": version.spec.get("pipelineSpec"),
    })


def recurring_run_body(rr: Resource, experiment_ids: dict[str, str]) -> dict[str, Any]:
    """A ``V2beta1RecurringRun``."""
    spec = rr.spec
    template = spec.get("runTemplate") or {}
    trigger = spec.get("trigger") or {}
    window = _drop_none({"start_time": spec.get("startTime"), "end_time": spec.get("endTime")})
    if trigger.get("cron") is not None:
        kfp_trigger = {"cron_schedule": {**window, "cron": trigger["cron"]}}
    else:
        # int64 fields are JSON strings in KFP's answers (protojson).
        seconds = str(trigger.get("intervalSeconds"))
        kfp_trigger = {"periodic_schedule": {**window, "interval_second": seconds}}
    experiment = template.get("experiment")
    enabled = spec.get("mode", "Enable") == "Enable"
    return _drop_none({
        "recurring_run_id": rr.metadata.uid, "display_name": _display(rr),
        "description": spec.get("description") or "",
        "pipeline_spec": template.get("pipelineSpec"),
        "runtime_config": _drop_none({"parameters": template.get("arguments") or {},
                                      "pipeline_root": template.get("pipelineRoot")}),
        "max_concurrency": str(spec.get("maxConcurrency", 10)),  # int64: a JSON string
        "trigger": kfp_trigger, "mode": "ENABLE" if enabled else "DISABLE",
        "created_at": rr.metadata.creation_timestamp,
        "updated_at": rr.status.get("lastScheduledTime") or rr.metadata.creation_timestamp,
        "status": "ENABLED" if enabled else "DISABLED",
        "no_catchup": bool(spec.get("noCatchup")), "namespace": rr.namespace,
        "experiment_id": experiment_ids.get(str(experiment)) if experiment else None,
    })


# -- filter, sort, page --------------------------------------------------------------

# KFP's Predicate.Operation, by number and name (protojson accepts either).
_OPERATIONS = {0: "UNSPECIFIED", 1: "EQUALS", 2: "NOT_EQUALS", 3: "GREATER_THAN",
               5: "GREATER_THAN_EQUALS", 6: "LESS_THAN", 7: "LESS_THAN_EQUALS", 8: "IN",
               9: "IS_SUBSTRING"}
# Filter keys KFP accepts beside the answer's own field names.
_ALIASES = {"name": "display_name", "id": "run_id", "experiment_id": "experiment_id"}
_VALUE_KEYS = ("string_value", "stringValue", "int_value", "intValue", "long_value",
               "longValue", "timestamp_value", "timestampValue", "bool_value", "boolValue")
_LIST_KEYS = ("string_values", "stringValues", "int_values", "intValues", "long_values",
              "longValues")


def _predicate(predicate: Any) -> Callable[[dict[str, Any]], bool]:
    if not isinstance(predicate, dict):
        raise InvalidError("invalid filter", [FieldError("filter", "a predicate must be an "
                                                                   "object")])
    op = predicate.get("operation")
    op = _OPERATIONS.get(op, str(op)) if isinstance(op, int) else str(op)
    key = str(predicate.get("key") or "")
    if op not in _OPERATIONS.values() or op == "UNSPECIFIED":
        raise InvalidError("invalid filter", [FieldError(
            "filter", f"operation {op!r}: use one of "
                      f"{', '.join(v for v in _OPERATIONS.values() if v != 'UNSPECIFIED')}")])
    if op == "IN":
        holder = next((predicate[k] for k in _LIST_KEYS if k in predicate), None)
        values = holder.get("values") if isinstance(holder, dict) else None
        if not isinstance(values, list):
            raise InvalidError("invalid filter", [FieldError(
                "filter", f"IN on {key!r} needs string_values: {{\"values\": [...]}}")])
        wanted = [str(v) for v in values]
        return lambda body: _field(body, key) in wanted
    value = next((predicate[k] for k in _VALUE_KEYS if k in predicate), None)
    if value is None:
        raise InvalidError("invalid filter", [FieldError(
            "filter", f"predicate on {key!r} has no value (string_value, int_value, ...)")])
    text = str(value).lower() if isinstance(value, bool) else str(value)
    compare: dict[str, Callable[[str, str], bool]] = {
        "EQUALS": lambda a, b: a == b, "NOT_EQUALS": lambda a, b: a != b,
        "GREATER_THAN": lambda a, b: _ordered(a) > _ordered(b),
        "GREATER_THAN_EQUALS": lambda a, b: _ordered(a) >= _ordered(b),
        "LESS_THAN": lambda a, b: _ordered(a) < _ordered(b),
        "LESS_THAN_EQUALS": lambda a, b: _ordered(a) <= _ordered(b),
        "IS_SUBSTRING": lambda a, b: b in a,
    }
    return lambda body: compare[op](_field(body, key), text)


def _ordered(text: str) -> tuple[int, float | str]:
    """Numbers and RFC 3339 times (``created_at``, a ``timestamp_value``) compare as
    numbers (a time as its epoch seconds, whatever its precision), the rest as text."""
    try:
        return (0, float(text))
    except ValueError:
        pass
    try:
        return (0, datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return (1, text)


def _field(body: dict[str, Any], key: str) -> str:
    value = body.get(key, body.get(_ALIASES.get(key, key)))
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def listing(items: list[dict[str, Any]], plural: str, *, filter_text: str | None,
            sort_by: str | None, page_size: int, page_token: str | None) -> dict[str, Any]:
    """``V2beta1List<Kind>Response``: ``{plural: [...], total_size, next_page_token}``.
    The page token is an offset (opaque to kfp, which only passes it back)."""
    if filter_text:
        try:
            doc = json.loads(filter_text)
        except ValueError:
            raise InvalidError("invalid filter", [FieldError(
                "filter", "expected a JSON Filter: {\"predicates\": [{\"operation\": "
                          "\"EQUALS\", \"key\": \"name\", \"string_value\": \"x\"}]}")]
                               ) from None
        predicates = doc.get("predicates") if isinstance(doc, dict) else None
        if not isinstance(predicates, list | None):
            raise InvalidError("invalid filter", [FieldError(
                "filter", "predicates must be a list")])
        for test in [_predicate(p) for p in (predicates or [])]:
            items = [body for body in items if test(body)]
    key, _, order = (sort_by or "created_at desc").strip().partition(" ")
    order = order.strip().lower()
    if order not in ("", "asc", "desc"):
        raise InvalidError("invalid sort_by", [FieldError(
            "sort_by", f"{sort_by!r}: expected '<field>' or '<field> desc'")])
    # Ties (creation times have one-second resolution) keep the store's creation order.
    items = sorted(items, key=lambda body: _field(body, key), reverse=order == "desc")
    try:
        start = int(page_token or 0)
    except ValueError:
        start = -1
    if not 0 <= start <= len(items):
        raise InvalidError("invalid page_token", [FieldError(
            "page_token", f"{page_token!r} is not a token this server returned")])
    size = page_size if page_size > 0 else 20
    end = start + size
    body: dict[str, Any] = {"total_size": len(items)}
    if items[start:end]:
        body[plural] = items[start:end]
    if end < len(items):
        body["next_page_token"] = str(end)
    return body
