"""A pipeline step as a core executor unit: its id, log key, resources and entry.

Every step runs on the runtime's executor (ADR 007), so Jobs and steps share one
budget and one place that starts, watches, limits and logs work. What a step needs
from the executor is spelled here once:

* the unit id is ``<run uid>-<task path with '.' for '/'>-<attempt>``: one path
  component of safe characters (task names are checked at load), stable for an
  attempt, so a control plane that crashed between ``submit`` and its status write
  finds the unit again with ``executor.lookup`` before it would start another;
* the log key is under ``logs/<namespace>/pipelineruns/<run>-<uid8>/`` in the
  artifact store, where ``finalize`` moves the log;
* a lightweight step (and any staged step) is a ``PythonEntry`` of
  :func:`ketch.pipelines._unit.run_step`, a container step on a local store a
  command unit of its own argv.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ketch.core.executors import PythonEntry, ResourceRequest, RuntimeEnv, WorkUnit

__all__ = ["ENTRY_MODULE", "command_unit", "log_key", "python_unit", "unit_id"]

ENTRY_MODULE = "ketch.pipelines._unit"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Longer ids are hashed: a unit id names a directory (255 bytes at most on most disks).
_MAX_ID = 200


def unit_id(run_uid: str, path: str, attempt: int) -> str:
    name = _SAFE.sub("_", path.replace("/", "."))
    found = f"{run_uid}-{name}-{attempt}"
    if len(found) <= _MAX_ID:
        return found
    digest = hashlib.sha256(path.encode()).hexdigest()[:24]
    return f"{run_uid}-{name[:80]}-{digest}-{attempt}"


def run_of(unit: str) -> str:
    """The run uid a step's unit id starts with (a uuid: 36 characters)."""
    return unit[:36]


def log_key(namespace: str, run: str, uid: str, path: str, attempt: int) -> str:
    """Where an attempt's log lives in the artifact store once the step ended."""
    return f"logs/{namespace}/pipelineruns/{run}-{uid[:8]}/{path}/attempt-{attempt}.log"


def python_unit(unit: str, argument: Mapping[str, Any], *, env: Mapping[str, str],
                resources: ResourceRequest, log: str, packages: RuntimeEnv | None = None,
                preload: tuple[str, ...] = ()) -> WorkUnit:
    """The step as a call of ``_unit.run_step(argument)``, which the backend may fork
    from a warm interpreter that imported the executor (and ``preload``) already.
    ``packages``: the venv it runs in, which the backend builds where the unit runs."""
    return WorkUnit(unit_id=unit, env=dict(env), resources=resources, log_key=log,
                    runtime_env=packages,
                    python=PythonEntry(module=ENTRY_MODULE, function="run_step",
                                       argument=dict(argument),
                                       preload=("ketch.pipelines.executor", *preload)))


def command_unit(unit: str, argv: list[str], *, env: Mapping[str, str],
                 resources: ResourceRequest, log: str) -> WorkUnit:
    return WorkUnit(unit_id=unit, command=list(argv), env=dict(env), resources=resources,
                    log_key=log)
