"""The ray backend's node agent: one detached actor per Ray node that runs units there.

A unit's resources are reserved on the cluster by a placement group (Ray's
scheduler picks the node, all-or-nothing for a gang); the agent of that node then
runs the unit's process with the local backend's machinery (``LocalExecutor``): the
``sh`` exit wrapper, a session of its own, the ``exit``/``reason``/``cancelled``
files, cancel of the whole tree, deadlines, memory limits, startup probes, log
caps, ``runtime_env`` venvs and the warm fork server for Python units. Its slots are
not the agent's business (the placement group holds them), so the local executor
here has no limit but memory enforcement.

The agent is named after its node and detached: a control plane that restarts finds
it by name and polls the units it runs, and if the agent itself is restarted the
files under its scratch directory still answer for them (the local backend's
adoption). Its methods take and return plain data, so they travel over Ray.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from ketch.core.artifacts import ArtifactStore
from ketch.core.executors import _local_proc as proc
from ketch.core.executors._base import Handle, ResourceRequest, UnitStatus, WorkUnit
from ketch.core.executors.local import LocalExecutor

__all__ = ["AGENT_PREFIX", "NodeAgent", "agent_name", "scratch_root"]

AGENT_PREFIX = "ketch-agent-"
# Beside the local handle: what the control plane's ray handle adds (node, reservation).
_META_FILE = "ray.json"
# The last exits kept for watchers that fell behind (a watcher further back resyncs).
_ENDED_KEPT = 10_000
_READ_CHUNK = 1 << 20
# As good as unlimited: Ray's placement groups are the slots on a cluster.
_UNLIMITED_CPUS = 1e9
_UNLIMITED_MEMORY = 1 << 62


def agent_name(node_id: str, artifacts_uri: str) -> str:
    """One agent per node and artifact store: control planes that share a store (a
    team's deployment) share agents; one with a store of its own gets its own, since
    an agent persists logs to the store it was started with."""
    return f"{AGENT_PREFIX}{node_id}-{_digest(artifacts_uri)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def scratch_root(node_id: str, artifacts_uri: str) -> Path:
    """Where an agent keeps its units' files on its host: ``KETCH_RAY_SCRATCH`` (on
    that node) or the system's temporary directory, one directory per node and store
    so that several nodes on one host never share one."""
    base = os.environ.get("KETCH_RAY_SCRATCH") or os.path.join(tempfile.gettempdir(),
                                                               "ketch-ray")
    return Path(base) / f"{node_id[:16]}-{_digest(artifacts_uri)}"


class NodeAgent:
    """The Ray actor class (wrapped with ``ray.remote`` by the backend)."""

    def __init__(self, node_id: str, node_ip: str, artifacts_uri: str,
                 log_max_bytes: int | None = None) -> None:
        root = scratch_root(node_id, artifacts_uri)
        root.mkdir(parents=True, exist_ok=True)
        self.node_id = node_id
        self.artifacts = ArtifactStore(artifacts_uri)
        self.local = LocalExecutor(root / "runs", self.artifacts, cpus=_UNLIMITED_CPUS,
                                   memory=_UNLIMITED_MEMORY, gpus=[],
                                   log_max_bytes=log_max_bytes, unit_host=node_ip)
        self._ended: deque[tuple[int, str]] = deque(maxlen=_ENDED_KEPT)
        self._cursor = 0
        self._changed = threading.Condition()
        self.local.subscribe(self._on_exit)

    def _on_exit(self, unit_id: str) -> None:
        with self._changed:
            self._cursor += 1
            self._ended.append((self._cursor, unit_id))
            self._changed.notify_all()

    # ------------------------------------------------------------------ calls

    def ping(self) -> str:
        return self.node_id

    def can_read(self, key: str) -> str | None:
        """None when this node reads ``key`` from the artifact store, else why not."""
        try:
            self.artifacts.read_bytes(key)
        except Exception as err:
            return f"{type(err).__name__}: {err}"
        return None

    def submit(self, unit: WorkUnit, gpu_ids: list[str] | None,
               meta: dict[str, Any]) -> Handle:
        """Start ``unit`` here; ``gpu_ids`` are the GPUs Ray reserved for it (None on a
        node without GPUs); ``meta`` is what the control plane's handle adds."""
        env = dict(unit.env)
        if gpu_ids is not None:
            # "" hides every GPU from a unit that asked for none, as locally.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        here = replace(unit, env=env, resources=ResourceRequest(
            cpu=0.0, memory=unit.resources.memory))
        handle = self.local.submit(here)
        proc.atomic_write(Path(handle["dir"]) / _META_FILE, json.dumps(meta))
        return handle

    def lookup(self, unit_id: str) -> tuple[Handle, dict[str, Any]] | None:
        handle = self.local.lookup(unit_id)
        if handle is None:
            return None
        return handle, proc.load_json(Path(handle["dir"]) / _META_FILE) or {}

    def poll(self, handle: Handle) -> UnitStatus:
        return self.local.poll(handle)

    def polls(self, handles: list[Handle]) -> list[UnitStatus]:
        return [self.local.poll(h) for h in handles]

    def read_log(self, handle: Handle, offset: int) -> tuple[bytes, bool] | None:
        """Up to 1 MiB of the live log from ``offset``, and whether the unit has ended;
        None once ``finalize`` moved the log to the artifact store."""
        path = Path(handle["dir"]) / "output.log"
        done = self.local.poll(handle).done  # before reading: nothing is written after
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(0 if size < offset else offset)  # trimmed: the kept tail from 0
                return f.read(_READ_CHUNK), done
        except FileNotFoundError:
            return None

    def cancel(self, handle: Handle, grace_seconds: float) -> None:
        self.local.cancel(handle, grace_seconds=grace_seconds)

    def finalize(self, handle: Handle) -> None:
        self.local.finalize(handle)

    def forget(self, handle: Handle) -> None:
        self.local.forget(handle)

    # -- the warm path's units (Ray tasks, _ray_task), by unit id

    def read_warm(self, unit_id: str, offset: int) -> bytes | None:
        """Up to 1 MiB of a warm unit's live log from ``offset``; None if not here."""
        from ketch.core.executors._ray_task import log_path

        try:
            with open(log_path(self.node_id, self.artifacts.root_uri, unit_id), "rb") as f:
                f.seek(offset)
                return f.read(_READ_CHUNK)
        except FileNotFoundError:
            return None

    def stop_warm(self, unit_id: str, grace_seconds: float) -> bool:
        """Stop every process a warm unit started (not the Ray worker that runs it:
        the backend cancels that task); whether the unit runs here."""
        from ketch.core.executors._ray_task import pid_path

        try:
            worker = int(pid_path(self.node_id, self.artifacts.root_uri, unit_id).read_text())
        except (OSError, ValueError):
            return False
        import psutil

        try:
            children = psutil.Process(worker).children(recursive=True)
        except psutil.Error:
            return True
        # Signalled one by one, never by group: they share the Ray worker's group.
        for sig in ("terminate", "kill"):
            for child in children:
                with contextlib.suppress(psutil.Error):
                    getattr(child, sig)()
            _, children = psutil.wait_procs(children, timeout=grace_seconds if
                                            sig == "terminate" else 5.0)
            if not children:
                break
        return True

    def finish_warm(self, unit_id: str, log_key: str | None) -> bool:
        """A warm unit that was killed left its log here: keep it in the store (at
        ``log_key``) and remove its files; whether there was anything."""
        from ketch.core.executors._ray_task import log_path, pid_path

        log = log_path(self.node_id, self.artifacts.root_uri, unit_id)
        pid_path(self.node_id, self.artifacts.root_uri, unit_id).unlink(missing_ok=True)
        if not log.exists():
            return False
        if log_key:
            self.artifacts.put_file(str(log), log_key)
        log.unlink(missing_ok=True)
        return True

    def wait_ended(self, cursor: int | None, timeout: float) -> tuple[int, list[str]]:
        """Unit ids that ended after ``cursor`` (blocking up to ``timeout`` for one),
        and the cursor to pass next. ``None``: start from now."""
        deadline = time.monotonic() + timeout
        with self._changed:
            if cursor is None:
                return self._cursor, []
            while self._cursor <= cursor:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._cursor, []
                self._changed.wait(left)
            return self._cursor, [u for n, u in self._ended if n > cursor]
