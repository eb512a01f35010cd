"""Runtime placeholders: the ``{{$...}}`` strings the engine substitutes per task.

The pipeline-level constants (``PIPELINE_JOB_NAME_PLACEHOLDER``...) may be passed as
arguments to any component; the structured ones (``ConcatPlaceholder``,
``IfPresentPlaceholder``) and the per-input/output placeholders build the command line
of a ``@dsl.container_component``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "KNOWN_RUNTIME_PLACEHOLDERS",
    "PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_JOB_ID_PLACEHOLDER",
    "PIPELINE_JOB_NAME_PLACEHOLDER",
    "PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER",
    "PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_ROOT_PLACEHOLDER",
    "PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER",
    "PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER",
    "PIPELINE_TASK_ID_PLACEHOLDER",
    "PIPELINE_TASK_NAME_PLACEHOLDER",
    "WORKSPACE_PATH_PLACEHOLDER",
    "ConcatPlaceholder",
    "IfPresentPlaceholder",
    "Placeholder",
    "placeholder_to_ir",
    "unknown_placeholders",
]

PIPELINE_JOB_NAME_PLACEHOLDER = "{{$.pipeline_job_name}}"
"""The run's name."""
PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER = "{{$.pipeline_job_resource_name}}"
"""The run's resource name (``namespace/name``)."""
PIPELINE_JOB_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
"""The run's uid."""
PIPELINE_TASK_NAME_PLACEHOLDER = "{{$.pipeline_task_name}}"
"""The IR name of the running task."""
PIPELINE_TASK_ID_PLACEHOLDER = "{{$.pipeline_task_uuid}}"
"""A unique id of the running task execution."""
PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER = "{{$.outputs.output_file}}"
"""Where the task writes its executor output JSON."""
PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
"""The whole executor input, as JSON."""
PIPELINE_ROOT_PLACEHOLDER = "{{$.pipeline_root}}"
"""The root URI under which the run's artifacts live."""
PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER = "{{$.pipeline_job_create_time_utc}}"
"""When the run was created (RFC 3339, UTC)."""
PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER = "{{$.pipeline_job_schedule_time_utc}}"
"""When a recurring run was scheduled to start (RFC 3339, UTC)."""
WORKSPACE_PATH_PLACEHOLDER = "{{$.workspace_path}}"
"""The shared workspace directory of the run."""

KNOWN_RUNTIME_PLACEHOLDERS = frozenset({
    PIPELINE_JOB_NAME_PLACEHOLDER, PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER,
    PIPELINE_JOB_ID_PLACEHOLDER, PIPELINE_TASK_NAME_PLACEHOLDER, PIPELINE_TASK_ID_PLACEHOLDER,
    PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER, PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
    PIPELINE_ROOT_PLACEHOLDER, PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
    PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER, WORKSPACE_PATH_PLACEHOLDER,
})

# Per-input/output placeholders a container command may hold.
_IO_PATTERNS = (
    re.compile(r"\{\{\$\.inputs\.parameters\['(?P<name>[^']+)'\]\}\}"),
    re.compile(r"\{\{\$\.inputs\.artifacts\['(?P<name>[^']+)'\](\.(path|uri|metadata))?\}\}"),
    re.compile(r"\{\{\$\.outputs\.parameters\['(?P<name>[^']+)'\]\.output_file\}\}"),
    re.compile(r"\{\{\$\.outputs\.artifacts\['(?P<name>[^']+)'\]\.(path|uri|metadata)\}\}"),
)
_ANY_PLACEHOLDER = re.compile(r"\{\{\$[^{}]*\}\}")


class Placeholder:
    """A typed ``{{$...}}`` string standing for an input or output of a container step."""

    def __init__(self, text: str, *, io_name: str | None = None) -> None:
        self.text = text
        self.io_name = io_name

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Placeholder({self.text!r})"


class ConcatPlaceholder:
    """Joins strings and placeholders into one command-line argument."""

    def __init__(self, items: list[Any]) -> None:
        self.items = list(items)

    def to_ir(self) -> dict[str, Any]:
        """The structure kfp writes (``{"Concat": [...]}``)."""
        return {"Concat": [placeholder_to_ir(i, nested=True) for i in self.items]}


class IfPresentPlaceholder:
    """Arguments used only when an optional input was given (``then``), else ``else_``."""

    def __init__(self, input_name: str, then: Any, else_: Any = None) -> None:
        self.input_name = input_name
        self.then = then
        self.else_ = else_

    def to_ir(self) -> dict[str, Any]:
        """The structure kfp writes (``{"IfPresent": {...}}``)."""
        def side(value: Any) -> Any:
            if isinstance(value, list):
                return [placeholder_to_ir(v, nested=True) for v in value]
            return placeholder_to_ir(value, nested=True)

        body: dict[str, Any] = {"InputName": self.input_name, "Then": side(self.then)}
        if self.else_ is not None:
            body["Else"] = side(self.else_)
        return {"IfPresent": body}


def placeholder_to_ir(value: Any, *, nested: bool = False) -> Any:
    """A command/args item as the IR holds it: structured placeholders become JSON text
    at the top level and objects when nested, as kfp writes them."""
    if isinstance(value, ConcatPlaceholder | IfPresentPlaceholder):
        structure = value.to_ir()
        return structure if nested else json.dumps(structure)
    if isinstance(value, Placeholder):
        return value.text
    return str(value)


def unknown_placeholders(text: str, inputs: set[str], outputs: set[str]) -> list[str]:
    """The ``{{$...}}`` placeholders in ``text`` that name nothing this component has."""
    bad = []
    for match in _ANY_PLACEHOLDER.finditer(text):
        token = match.group(0)
        if token in KNOWN_RUNTIME_PLACEHOLDERS:
            continue
        for index, pattern in enumerate(_IO_PATTERNS):
            hit = pattern.fullmatch(token)
            if hit:
                names = inputs if index < 2 else outputs
                if hit.group("name") not in names:
                    bad.append(token)
                break
        else:
            bad.append(token)
    return bad
