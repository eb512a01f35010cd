"""The ray backend's warm path: a Python unit as a plain Ray task, run in Ray's worker.

Ray keeps a pool of warm Python workers on every node and reuses them task after
task; that pool is this backend's warm pool, the analogue of the local backend's
fork server, so a pipeline step costs what a Ray task costs. The task (``run``)
takes the unit's env, working directory and ``PYTHONPATH`` for the duration of the
call, sends file descriptors 1 and 2 to the unit's log on its node (so output of
child processes is caught too), calls ``module.function(argument)``, then puts
everything back: modules the unit imported are dropped (a later unit imports its
own copy, as a forked child would), the environment and directory are restored.

While it runs, ``<scratch>/warm/<unit id>.pid`` names the worker, so that the
node's agent can stop what the unit started before the backend kills the worker
(cancel). At the end the task uploads its log to the artifact store at the
unit's log key (a unit without one keeps it on the node until it is forgotten)
and returns ``(exit code, node id)``.

Only units that need nothing a process boundary gives (no memory limit, no
deadline, no runtime_env, no GPU, not a server) take this path; the others run
as processes through the node agent.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ketch.core.executors import _entry
from ketch.core.executors._ray_agent import scratch_root

__all__ = ["log_path", "pid_path", "run"]


def _warm_dir(node_id: str, artifacts_uri: str) -> Path:
    return scratch_root(node_id, artifacts_uri) / "warm"


def log_path(node_id: str, artifacts_uri: str, unit_id: str) -> Path:
    return _warm_dir(node_id, artifacts_uri) / f"{unit_id}.log"


def pid_path(node_id: str, artifacts_uri: str, unit_id: str) -> Path:
    return _warm_dir(node_id, artifacts_uri) / f"{unit_id}.pid"


def run(unit_id: str, entry: Mapping[str, Any], env: Mapping[str, str],
        working_dir: str | None, log_key: str | None,
        artifacts_uri: str) -> tuple[int, str]:
    """The Ray task body: run the entry here; (exit code, this node's id)."""
    import importlib

    import ray

    for module in entry.get("preload") or ():
        # Imported for good: the next unit on this worker finds them loaded.
        with contextlib.suppress(Exception):
            importlib.import_module(str(module))

    node_id = ray.get_runtime_context().get_node_id()
    log = log_path(node_id, artifacts_uri, unit_id)
    if log.parent not in _MADE:
        log.parent.mkdir(parents=True, exist_ok=True)
        _MADE.add(log.parent)
    pid = pid_path(node_id, artifacts_uri, unit_id)
    pid.write_text(str(os.getpid()))
    try:
        with open(log, "wb") as out, _redirected(out.fileno()), _as_unit(env, working_dir):
            code = _entry.call(entry)
    finally:
        pid.unlink(missing_ok=True)
    if log_key:
        # Kept in the store at once (what finalize does for a process unit), so that a
        # step's end costs no call back to this node; without a key it stays here
        # for logs() until the unit is forgotten.
        _store(artifacts_uri).put_file(str(log), log_key)
        log.unlink(missing_ok=True)
    return code, node_id


_STORES: dict[str, Any] = {}
_MADE: set[Path] = set()


def _store(uri: str) -> Any:
    """The artifact store, opened once per worker (opening one costs more than a
    small unit's whole run)."""
    store = _STORES.get(uri)
    if store is None:
        from ketch.core.artifacts import ArtifactStore

        store = _STORES[uri] = ArtifactStore(uri)
    return store


@contextlib.contextmanager
def _redirected(fd: int) -> Iterator[None]:
    """Descriptors 1 and 2 to ``fd`` for the duration, as a spawned unit's would be."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for copy in saved:
            os.close(copy)


@contextlib.contextmanager
def _as_unit(env: Mapping[str, str], working_dir: str | None) -> Iterator[None]:
    """The unit's environment, directory, ``sys.path`` and modules, then the worker's."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    os.environ.update(env)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if working_dir:
        os.chdir(working_dir)
    # As `python -m` would: the working directory, then PYTHONPATH, before the rest.
    extra = [os.getcwd(), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    sys.path[:0] = extra
    try:
        yield
    finally:
        for name in set(sys.modules) - saved_modules:
            sys.modules.pop(name, None)
        sys.path[:] = saved_path
        os.chdir(saved_cwd)
        # The worker's environment back, touching only what changed (clearing and
        # refilling it would call putenv for every variable).
        for key in [k for k in os.environ if k not in saved_env]:
            del os.environ[key]
        for key, value in saved_env.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
