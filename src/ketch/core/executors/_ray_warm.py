"""The control plane's side of the ray backend's warm path (see ``_ray_task``).

A plain Python unit is one Ray task, placed by Ray's scheduler with the unit's CPU
and custom resources and run in a warm Ray worker. This control plane owns the task,
so the unit ends with the control plane that started it (Ray stops the tasks of an
owner that died): a restarted control plane finds no such unit (``lookup`` is None)
and a caller starts the attempt again, as a pipeline does with a step that was never
recorded. Within one process every executor instance shares the tasks (they share
the process's connection to Ray).

Completion is heard from the task's own future, not by polling.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import NotFoundError
from ketch.core.executors._base import Handle, UnitState, UnitStatus, WorkUnit

__all__ = ["WarmTasks", "takes_warm_path"]

_OWNER = f"{socket.gethostname()}-{os.getpid()}"


def takes_warm_path(unit: WorkUnit) -> bool:
    """A Python entry that needs nothing only a process of its own gives."""
    runtime = unit.runtime_env
    return (unit.python is not None and not unit.command and not unit.serves
            and unit.timeout_seconds is None and unit.resources.memory == 0
            and unit.resources.gpu == 0
            and (runtime is None or (not runtime.packages and not runtime.working_dir_uri)))


@dataclass
class _Task:
    handle: Handle
    ref: Any
    log_key: str | None
    status: UnitStatus | None = None
    cancelled: bool = False
    node: str | None = None


_TASKS: dict[str, _Task] = {}
_LOCK = threading.Lock()


class WarmTasks:
    """Starts and follows warm units; ``on_end(unit_id)`` when one ends."""

    def __init__(self, artifacts: ArtifactStore, selector: Mapping[str, str],
                 agents: Callable[[], dict[str, Any]], call: Callable[..., Any],
                 on_end: Callable[[str], None]) -> None:
        import ray

        from ketch.core.executors._ray_task import run

        self._ray = ray
        self.artifacts = artifacts
        self._selector = dict(selector)
        self._agents = agents
        self._call = call
        self._on_end = on_end
        self._run = ray.remote(run)
        self._options: dict[tuple[Any, ...], Any] = {}

    def submit(self, unit: WorkUnit) -> Handle:
        assert unit.python is not None
        entry = {"module": unit.python.module, "function": unit.python.function,
                 "argument": dict(unit.python.argument), "preload": list(unit.python.preload)}
        with _LOCK:
            old = _TASKS.get(unit.unit_id)
            if old is not None and old.status is None:
                from ketch.core.errors import ExecutorError

                raise ExecutorError(f"unit {unit.unit_id!r} is already running")
        ref = self._remote(unit).remote(
            unit.unit_id, entry, dict(unit.env), unit.working_dir, unit.log_key,
            self.artifacts.root_uri)
        handle: Handle = {"backend": "ray", "unitId": unit.unit_id, "task": ref.hex(),
                          "owner": _OWNER}
        task = _Task(handle, ref, unit.log_key)
        with _LOCK:
            _TASKS[unit.unit_id] = task
        ref.future().add_done_callback(lambda _f: self._ended(task))
        return handle

    def _remote(self, unit: WorkUnit) -> Any:
        """The task with the unit's resources; Ray's options() wrapper is built once
        per distinct request (building it costs a fair part of a warm unit)."""
        key = (unit.resources.cpu, tuple(sorted(unit.resources.custom.items())))
        remote = self._options.get(key)
        if remote is None:
            options: dict[str, Any] = {"num_cpus": unit.resources.cpu, "max_retries": 0}
            if unit.resources.custom:
                options["resources"] = {k: float(v) for k, v in unit.resources.custom.items()}
            if self._selector:
                options["label_selector"] = dict(self._selector)
            remote = self._options[key] = self._run.options(**options)
        return remote

    def _ended(self, task: _Task) -> None:
        with _LOCK:
            if task.status is not None:
                return  # heard already (cancel does not wait for the callback)
        exc = self._ray.exceptions
        try:
            code, node = self._ray.get(task.ref, timeout=0)
        except Exception as err:
            if task.cancelled or isinstance(err, exc.TaskCancelledError):
                status = UnitStatus(UnitState.FAILED, reason="Cancelled",
                                    message="cancelled on request")
            elif isinstance(err, exc.NodeDiedError):
                status = UnitStatus(UnitState.LOST, reason="NodeLost",
                                    message=f"the Ray node that ran the unit is gone: {err}")
            else:
                status = UnitStatus(UnitState.LOST, reason="ProcessLost",
                                    message=f"the Ray worker that ran the unit died: {err}")
        else:
            task.node = node
            status = (UnitStatus(UnitState.SUCCEEDED, exit_code=0, reason="Completed")
                      if code == 0 else
                      UnitStatus(UnitState.FAILED, exit_code=code, reason="Error",
                                 message=f"exited with code {code}"))
        with _LOCK:
            if task.status is not None:
                return
            task.status = status
        self._on_end(str(task.handle["unitId"]))

    def _task(self, handle: Handle) -> _Task | None:
        with _LOCK:
            task = _TASKS.get(str(handle.get("unitId")))
        return task if task is not None and task.handle.get("task") == handle.get("task") \
            else None

    def lookup(self, unit_id: str) -> Handle | None:
        with _LOCK:
            task = _TASKS.get(unit_id)
        return dict(task.handle) if task is not None else None

    def poll(self, handle: Handle) -> UnitStatus:
        task = self._task(handle)
        if task is None:
            return UnitStatus(UnitState.LOST, reason="ProcessLost", message=(
                f"the unit ran as a Ray task of control plane {handle.get('owner')}, "
                "and ended with it"))
        return task.status or UnitStatus(UnitState.RUNNING)

    def logs(self, handle: Handle, *, follow: bool) -> Iterator[bytes]:
        import time

        task = self._task(handle)
        offset = 0
        while task is not None and task.status is None:
            chunk = self._read_live(str(handle["unitId"]), offset, task.node)
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            if not follow:
                return
            time.sleep(0.1)
        if task is None:
            return
        data = self._stored(task) if task.log_key else None
        if data is None:  # no key, or killed before it could keep its log: on its node
            while chunk := self._read_live(str(handle["unitId"]), offset, task.node):
                offset += len(chunk)
                yield chunk
            return
        if data[offset:]:
            yield data[offset:]

    def _stored(self, task: _Task) -> bytes | None:
        try:
            return self.artifacts.read_bytes(str(task.log_key))
        except NotFoundError:
            return None

    def _read_live(self, unit_id: str, offset: int, node: str | None = None) -> bytes:
        agents = self._agents()
        chosen = [agents[node]] if node in agents else list(agents.values())
        refs = [a.read_warm.remote(unit_id, offset) for a in chosen]
        for ref in refs:
            try:
                got = self._call(ref)
            except Exception:
                continue
            if got is not None:
                return bytes(got)
        return b""

    def cancel(self, handle: Handle, grace_seconds: float) -> None:
        task = self._task(handle)
        if task is None or task.status is not None:
            return
        task.cancelled = True
        refs = {n: a.stop_warm.remote(handle["unitId"], grace_seconds)
                for n, a in self._agents().items()}
        for node, ref in refs.items():
            try:
                if self._call(ref, timeout=grace_seconds + 60):
                    task.node = node
            except Exception:
                continue
        self._ray.cancel(task.ref, force=True)
        self._ray.wait([task.ref], timeout=grace_seconds + 30)
        self._ended(task)  # ended by now: say so before returning

    def finalize(self, handle: Handle) -> None:
        """A unit that ended normally uploaded its own log; a killed one left it on
        its node, where its agent keeps it in the store now."""
        task = self._task(handle)
        if task is None or task.status is None or task.status.reason != "Cancelled":
            return
        self._finish_on_node(task, task.log_key)

    def _finish_on_node(self, task: _Task, log_key: str | None) -> None:
        agents = self._agents()
        chosen = {task.node: agents[task.node]} if task.node in agents else agents
        refs = [a.finish_warm.remote(task.handle["unitId"], log_key)
                for a in chosen.values()]
        for ref in refs:
            try:
                self._call(ref)
            except Exception:
                continue

    def forget(self, handle: Handle, grace_seconds: float) -> None:
        self.cancel(handle, grace_seconds)
        self.finalize(handle)
        task = self._task(handle)
        if task is not None and not task.log_key:
            self._finish_on_node(task, None)  # its log stayed on the node: remove it
        with _LOCK:
            task = _TASKS.get(str(handle.get("unitId")))
            if task is not None and task.handle.get("task") == handle.get("task"):
                _TASKS.pop(str(handle["unitId"]), None)

    def node(self, handle: Handle) -> str | None:
        task = self._task(handle)
        return task.node if task is not None else None
