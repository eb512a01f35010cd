"""The ``local`` executor: work units as subprocesses of this machine.

Every unit gets a scratch directory ``<runs_dir>/<unit_id>/`` holding:

* ``handle.json``: the handle, so ``lookup`` works after a control-plane crash;
* ``output.log``: combined stdout/stderr (moved to the artifact store by ``finalize``);
* ``exit``: the exit code, written by a tiny ``sh`` wrapper around the command, so
  the code survives even when the control plane that spawned it is gone;
* ``reason``: why the executor killed the unit (``DeadlineExceeded``, ``OOMKilled``);
* ``cancelled``: a marker that ``cancel`` stopped the unit on request.

The files, not in-memory state, are the source of truth for ``poll``; memory only
tracks resource slots and which units a monitor thread must watch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import ExecutorError, InsufficientResourcesError, NotFoundError
from ketch.core.executors import _entry
from ketch.core.executors import _local_proc as proc
from ketch.core.executors import _local_startup as startup
from ketch.core.executors._base import (
    Executor,
    Handle,
    ResourceRequest,
    UnitState,
    UnitStatus,
    WorkUnit,
)
from ketch.core.executors._local_address import UNIT_HOST, free_port, unit_socket
from ketch.core.executors._run_as import RunAs
from ketch.core.executors._subscribers import ExitSubscribers
from ketch.core.executors._unit_index import UnitIndex

if TYPE_CHECKING:
    from ketch.core.executors._warm import WarmPool

__all__ = ["LocalExecutor"]

log = logging.getLogger(__name__)

# Runs the command, then records its exit code atomically in "$0" (the exit file).
# A shell costs about 1 ms to start where a Python shim would cost about 20 ms, and
# submit-to-start latency matters. The wrapper stays the parent of the command, so
# its pid (the handle's pid) is also the process group id.
_WRAPPER = '"$@"; code=$?; printf %s "$code" > "$0.tmp" && mv "$0.tmp" "$0"; exit $code'
_MONITOR_INTERVAL = 0.5
_FOLLOW_INTERVAL = 0.1
_EPSILON = 1e-9
# A unit's log is capped (its tail kept) so one chatty unit cannot fill the disk.
DEFAULT_LOG_MAX_BYTES = 64 << 20


# The control plane's secrets (API token, database URL with its password) and the
# way to them (KETCH_HOME holds server.json, the token file and ketch.db) are not a
# unit's business. A unit that calls the API gets KETCH_HOST, set by the server.
_PRIVATE_ENV = frozenset({"KETCH_TOKEN", "KETCH_DATABASE_URL", "KETCH_HOME"})
# A unit's working directory, when it comes from runtime_env.working_dir_uri.
_WORKDIR = "workdir"
# Server units of this backend listen on loopback: one host, nothing exposed.
@dataclass
class _Unit:
    """Bookkeeping for a unit whose slots this executor holds."""

    handle: Handle
    cpu: float
    memory: int
    gpu_ids: list[str]
    popen: subprocess.Popen[bytes] | None  # None when adopted after a restart
    exited: bool = False
    enforcing: bool = False  # a deadline or memory kill is under way
    startup_check: bool = False  # a server unit that must still answer (_local_startup)


class LocalExecutor(Executor):
    """Runs work units as local subprocesses with CPU, memory and GPU slots.

    Args:
        runs_dir: Where the per-unit scratch directories live.
        artifacts: Where ``finalize`` persists logs.
        cpus: CPU cores to hand out; defaults to ``os.cpu_count()``.
        memory: Memory bytes to hand out; defaults to the machine's total RAM.
        gpus: GPU ids to hand out; None detects them lazily with ``nvidia-smi -L``.
        kill_grace_seconds: SIGTERM-to-SIGKILL grace for deadline kills.
        log_max_bytes: Cap of each unit's log (its tail is kept); defaults to
            ``KETCH_LOG_MAX_BYTES`` or 64 MiB.
        run_as_user: OS user (name or uid) units run as; defaults to
            ``KETCH_RUN_AS_USER``, else the server's own user. Needs root.
        warm_pool: Fork Python units from a warm worker when they allow it
            (``_warm``); False starts every unit from a fresh interpreter.
        venvs_dir: The cache of ``runtime_env.packages`` venvs; defaults to
            ``venvs`` beside ``runs_dir``.
    """

    name = "local"

    def __init__(self, runs_dir: Path, artifacts: ArtifactStore, *,
                 cpus: float | None = None, memory: int | None = None,
                 gpus: list[str] | None = None, kill_grace_seconds: float = 5.0,
                 log_max_bytes: int | None = None, run_as_user: str | None = None,
                 warm_pool: bool = True, venvs_dir: Path | None = None,
                 unit_index: Path | None = None, unit_host: str = UNIT_HOST) -> None:
        self.runs_dir = Path(runs_dir)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        # Resolved once: handles carry absolute paths, and resolving per submit costs.
        self.runs_dir = self.runs_dir.resolve()
        self.artifacts = artifacts
        # Shared with the other control planes of this database on this host (None: the
        # database is this home's own, nobody else starts units for it).
        self._index = UnitIndex(unit_index) if unit_index is not None else None
        self._cpus = float(cpus if cpus is not None else (os.cpu_count() or 1))
        self._memory = int(memory if memory is not None else psutil.virtual_memory().total)
        self._gpus = list(gpus) if gpus is not None else None
        self._grace = kill_grace_seconds
        self.log_max_bytes = (log_max_bytes if log_max_bytes is not None
                              else _log_max_bytes_from_env())
        user = run_as_user if run_as_user is not None else os.environ.get(
            "KETCH_RUN_AS_USER", "").strip()
        self.run_as = RunAs.resolve(user) if user else None
        if self.run_as is not None:
            self.run_as.check_reaches(self.runs_dir)
        elif os.geteuid() == 0:
            # Said once at start, not silently: docs/security.md, "Process isolation".
            log.warning("units run as root and can read this server's token and database "
                        "(KETCH_HOME, /proc); set KETCH_RUN_AS_USER to run them as an "
                        "unprivileged user")
        self._host = socket.gethostname()
        # Where server units listen: loopback, unless a backend that runs this
        # executor on each node of a cluster (ray) needs them reachable from the others.
        self.unit_host = unit_host
        self._lock = threading.Lock()
        self._units: dict[str, _Unit] = {}
        self._subscribers = ExitSubscribers()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.warm_pool = warm_pool
        self._warm: WarmPool | None = None
        self.venvs_dir = (Path(venvs_dir) if venvs_dir is not None
                          else self.runs_dir.parent / "venvs")

    # ----------------------------------------------------------------- slots

    def _gpu_ids(self) -> list[str]:
        # Detected on first use: running nvidia-smi costs ~100 ms that an executor
        # which never sees a GPU request should not pay at construction.
        if self._gpus is None:
            detected = proc.detect_gpus()
            with self._lock:
                if self._gpus is None:
                    self._gpus = detected
        return list(self._gpus)

    def capacity(self) -> ResourceRequest:
        return ResourceRequest(cpu=self._cpus, memory=self._memory, gpu=len(self._gpu_ids()))

    def _free(self) -> tuple[float, int, list[str]]:
        """Free cpu, memory and GPU ids; the caller holds the lock."""
        cpu, memory = self._cpus, self._memory
        taken: set[str] = set()
        for unit in self._units.values():
            cpu -= unit.cpu
            memory -= unit.memory
            taken.update(unit.gpu_ids)
        return cpu, memory, [g for g in self._gpus or [] if g not in taken]

    def _shortfall(self, res: ResourceRequest) -> str | None:
        """Why ``res`` does not fit now, or None; the caller holds the lock."""
        cpu, memory, gpus = self._free()
        if res.cpu > cpu + _EPSILON:
            return (f"insufficient cpu: requested {res.cpu:g}, "
                    f"free {max(cpu, 0):g} of {self._cpus:g}")
        if res.memory > 0 and res.memory > memory:
            return (f"insufficient memory: requested {res.memory}, "
                    f"free {max(memory, 0)} of {self._memory}")
        if res.gpu > len(gpus):
            return (f"insufficient gpu: requested {res.gpu}, "
                    f"free {len(gpus)} of {len(self._gpus or [])}")
        for name, amount in sorted(res.custom.items()):
            if amount > 0:
                return (f"insufficient {name}: requested {amount:g}, this machine has "
                        "no such resource (custom resources come from a cluster's nodes)")
        return None

    def fits(self, resources: ResourceRequest) -> bool:
        if resources.gpu > 0:
            self._gpu_ids()
        with self._lock:
            return self._shortfall(resources) is None

    def _release(self, unit_id: str) -> None:
        with self._lock:
            self._units.pop(unit_id, None)

    # ---------------------------------------------------------------- submit

    def _dir(self, unit_id: str) -> Path:
        if not unit_id or "/" in unit_id or "\\" in unit_id or unit_id in (".", ".."):
            raise ExecutorError(f"bad unit id {unit_id!r}: must be one path component")
        return self.runs_dir / unit_id

    def submit(self, unit: WorkUnit) -> Handle:
        directory = self._dir(unit.unit_id)
        self._check_entry(unit)
        if unit.working_dir is not None and not os.path.isdir(unit.working_dir):
            raise ExecutorError(f"working directory does not exist: {unit.working_dir!r}")
        # A python unit, or one with a runtime_env, runs as the _entry program (or
        # forked warm); ``entry`` is what that program reads from the unit's directory.
        unit, entry = self._runner_of(unit, directory)
        # The control plane's own secrets (API token, database URL with its
        # password) are not the unit's business.
        env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
        if self.run_as is not None:
            env.update(HOME=self.run_as.home, USER=self.run_as.name, LOGNAME=self.run_as.name)
        env.update(unit.env)
        if "PYTHONUNBUFFERED" not in unit.env:
            env["PYTHONUNBUFFERED"] = "1"  # so logs stream while the unit runs
        endpoint = None
        if unit.serves:
            # The backend chooses a server unit's address; callers read it from the
            # handle (``endpoint``), never assume a socket path or a port of their own.
            port = free_port(self.unit_host)
            env.update(KETCH_UNIT_HOST=self.unit_host, KETCH_UNIT_PORT=str(port))
            endpoint = f"{self.unit_host}:{port}"
            # Not for units run as another user (the socket directory is ours), nor
            # for ones other hosts reach (the socket is this host's shortcut only).
            uds = (unit_socket(self.runs_dir, port)
                   if self.run_as is None and self.unit_host == UNIT_HOST else None)
            if uds is not None:
                env["KETCH_UNIT_UDS"] = uds
        try:
            exe = proc.resolve_executable(unit.command[0], env, unit.working_dir)
        except (OSError, ValueError) as err:
            raise ExecutorError(str(err)) from None
        reused = directory.is_dir()
        existing = self.lookup(unit.unit_id) if reused else None
        # Still running means alive with no recorded end (a wrapper lingers a few
        # milliseconds after writing its exit file; that unit has ended).
        if (existing is not None and proc.is_alive(existing["pid"], existing["createTime"])
                and proc.final_status(directory, alive=True) is None):
            raise ExecutorError(f"unit {unit.unit_id!r} is already running")
        res = unit.resources
        all_gpus = self._gpu_ids()

        with self._lock:
            if unit.unit_id in self._units:
                raise ExecutorError(f"unit {unit.unit_id!r} still holds slots; finalize it first")
            short = self._shortfall(res)
            if short is not None:
                raise InsufficientResourcesError(short)
            gpu_ids = self._free()[2][:res.gpu]
            record = _Unit(handle={}, cpu=res.cpu, memory=res.memory, gpu_ids=gpu_ids,
                           popen=None)
            self._units[unit.unit_id] = record  # reserve before spawning (no lock held then)

        if gpu_ids or all_gpus:
            # "" hides every GPU from a unit that asked for none.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        try:
            if self._index is not None:
                self._index.record(unit.unit_id, directory)  # before the process exists
            if entry is not None:
                handle = self._start_entry(unit, entry, directory, exe, env, record,
                                           reused=reused, endpoint=endpoint)
            else:
                handle = self._spawn(unit, directory, exe, env, record, reused=reused,
                                     endpoint=endpoint)
        except BaseException:
            self._release(unit.unit_id)
            # Nothing runs and no handle.json names the directory, so no later
            # lookup/forget would ever find it: remove it now.
            shutil.rmtree(directory, ignore_errors=True)
            if self._index is not None:
                self._index.drop(unit.unit_id, directory)
            raise
        self._expect_endpoint(unit, handle)
        self._ensure_monitor()
        return handle

    def _spawn(self, unit: WorkUnit, directory: Path, exe: str, env: dict[str, str],
               record: _Unit, *, reused: bool, endpoint: str | None = None) -> Handle:
        directory.mkdir(parents=True, exist_ok=True)
        run_as = self.run_as
        exit_file = directory / proc.EXIT_FILE
        if run_as is not None:
            user_dir = directory / proc.USER_DIR
            shutil.rmtree(user_dir, ignore_errors=True)
            user_dir.mkdir()
            os.chown(user_dir, run_as.uid, run_as.gid)
            exit_file = user_dir / proc.EXIT_FILE
        if reused:
            orphan = _orphan_wrapper(exit_file)
            if orphan is not None:
                # A control plane died after starting this unit and before writing its
                # handle.json: adopt that run rather than start the unit a second time
                # (the monitor hears its end: it is no child of ours).
                handle = self._new_handle(unit, directory, orphan.pid, orphan.create_time(),
                                          record, endpoint)
                with self._lock:
                    record.handle = handle
                return handle
            # A resubmission of the same unit id must not inherit the previous end state.
            for stale in (proc.EXIT_FILE, proc.REASON_FILE, proc.CANCELLED_FILE,
                          proc.HANDLE_FILE):
                (directory / stale).unlink(missing_ok=True)
        # Run the resolved file, not the bare name: sh would prefer its own builtins
        # (dash's echo interprets backslashes, unlike /bin/echo).
        argv = ["/bin/sh", "-c", _WRAPPER, str(exit_file), exe,
                *unit.command[1:]]
        try:
            with open(directory / proc.LOG_FILE, "ab") as logf:
                popen = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    env=env, cwd=unit.working_dir, start_new_session=True,
                    user=run_as.uid if run_as is not None else None,
                    group=run_as.gid if run_as is not None else None,
                    extra_groups=[] if run_as is not None else None)
        except (OSError, ValueError) as err:
            # ValueError: what exec refuses before any syscall (a NUL byte in argv or
            # env, '=' in an env name); the same unit can never start, so it is a
            # start error like a missing command, not a crash of the caller.
            raise ExecutorError(str(err)) from None
        try:
            # A wrapper that already exited is a zombie until the waiter reaps it,
            # so its create time is still readable here.
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.Error as err:
            popen.kill()
            popen.wait()
            raise ExecutorError(f"process vanished right after start: {err}") from None
        handle = self._new_handle(unit, directory, popen.pid, create_time, record, endpoint)
        with self._lock:
            record.handle = handle
            record.popen = popen
        # One waiter per child: Popen.wait reaps it (no zombies) and reports the exit
        # at once, without waiting for the monitor's next tick.
        threading.Thread(target=self._wait_child, args=(record, popen),
                         name=f"ketch-wait-{unit.unit_id}", daemon=True).start()
        return handle

    def _new_handle(self, unit: WorkUnit, directory: Path, pid: int, create_time: float,
                    record: _Unit, endpoint: str | None,
                    extra: dict[str, Any] | None = None) -> Handle:
        """The handle of a started unit, written to its handle.json."""
        deadline = time.time() + unit.timeout_seconds if unit.timeout_seconds else None
        handle: Handle = {
            "backend": self.name,
            "unitId": unit.unit_id,
            "host": self._host,
            "pid": pid,
            "createTime": create_time,
            "dir": str(directory),
            "logKey": unit.log_key,
            "deadline": deadline,
            "timeoutSeconds": unit.timeout_seconds,
            "resources": {"cpu": record.cpu, "memory": record.memory,
                          "gpu": len(record.gpu_ids), "gpuIds": list(record.gpu_ids)},
        }
        if endpoint is not None:
            handle["endpoint"] = endpoint
        handle.update(extra or {})
        proc.atomic_write(directory / proc.HANDLE_FILE, json.dumps(handle))
        return handle

    def _wait_child(self, record: _Unit, popen: subprocess.Popen[bytes]) -> None:
        popen.wait()
        with self._lock:
            record.exited = True
        self._notify(record.handle["unitId"])

    def _notify(self, unit_id: str) -> None:
        self._subscribers.notify(unit_id)

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        return self._subscribers.add(callback)

    # ------------------------------------------ python units and runtime_env

    @staticmethod
    def _check_entry(unit: WorkUnit) -> None:
        """Exactly one of command and python; a python entry and runtime_env that can
        start (a working_dir_uri that does not exist is a start error)."""
        if unit.python is not None and unit.command:
            raise ExecutorError("WorkUnit sets both command and python: set exactly one")
        if unit.python is None and not unit.command:
            raise ExecutorError("empty command: WorkUnit sets neither command nor python "
                                "(set exactly one)")
        if unit.python is not None:
            for name in ("module", "function"):
                value = getattr(unit.python, name)
                if not isinstance(value, str) or not value.strip():
                    raise ExecutorError(f"WorkUnit.python.{name} must be a non-empty "
                                        f"string, not {value!r}")
            try:
                json.dumps(dict(unit.python.argument))
            except (TypeError, ValueError) as err:
                raise ExecutorError(f"WorkUnit.python.argument is not JSON: {err}") from None
        uri = unit.runtime_env.working_dir_uri if unit.runtime_env is not None else None
        if uri:
            if unit.working_dir is not None:
                raise ExecutorError("set WorkUnit.working_dir or "
                                    "runtime_env.working_dir_uri, not both")
            if not _entry.working_dir_exists(uri):
                raise ExecutorError(f"runtime_env.working_dir_uri {uri!r} does not exist")

    def _runner_of(self, unit: WorkUnit, directory: Path) -> tuple[WorkUnit, dict[str, Any] | None]:
        """The unit as this backend runs it, and its entry file's content; a plain
        command unit is returned as is, with None."""
        runtime = unit.runtime_env
        uri = runtime.working_dir_uri if runtime is not None else None
        packages = tuple(runtime.packages) if runtime is not None else ()
        if unit.python is None and not packages and not uri:
            return unit, None
        entry: dict[str, Any] = {}
        if unit.python is not None:
            entry["python"] = {"module": unit.python.module, "function": unit.python.function,
                               "argument": dict(unit.python.argument)}
            entry["preload"] = list(unit.python.preload)
        else:
            entry["argv"] = list(unit.command)
        if runtime is not None and (packages or uri):
            entry["runtime"] = {"packages": list(packages),
                                "indexUrls": list(runtime.index_urls),
                                "venvRoot": str(self.venvs_dir), "workingDirUri": uri}
        command = tuple(_entry.script_argv(str(directory)))
        working_dir = str(directory / _WORKDIR) if uri else unit.working_dir
        return replace(unit, command=command, working_dir=working_dir), entry

    def _start_entry(self, unit: WorkUnit, entry: dict[str, Any], directory: Path, exe: str,
                     env: dict[str, str], record: _Unit, *, reused: bool,
                     endpoint: str | None) -> Handle:
        """Fork the unit from the warm worker when it can, else start ``_entry`` cold."""
        directory.mkdir(parents=True, exist_ok=True)
        runtime = entry.get("runtime") or {}
        if runtime.get("workingDirUri"):
            workdir = directory / _WORKDIR
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            self._give_to_unit_user(workdir)
        if runtime.get("packages"):
            self.venvs_dir.mkdir(parents=True, exist_ok=True)
            self._give_to_unit_user(self.venvs_dir)
        warm = (self.warm_pool and "python" in entry and not runtime.get("packages")
                and self.run_as is None and not record.gpu_ids and unit.resources.gpu == 0)
        if warm:
            handle = self._spawn_warm(unit, entry, directory, env, record, reused=reused,
                                      endpoint=endpoint)
            if handle is not None:
                return handle
        # Never argv: the argument may hold what ``ps`` must not show.
        path = directory / _entry.ENTRY_FILE
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f)
        self._give_to_unit_user(path)
        return self._spawn(unit, directory, exe, env, record, reused=reused,
                           endpoint=endpoint)

    def _give_to_unit_user(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as.uid, self.run_as.gid)

    def _spawn_warm(self, unit: WorkUnit, entry: dict[str, Any], directory: Path,
                    env: dict[str, str], record: _Unit, *, reused: bool,
                    endpoint: str | None) -> Handle | None:
        """Fork the unit from the warm worker; None when the worker cannot."""
        if reused:
            for stale in (proc.EXIT_FILE, proc.REASON_FILE, proc.CANCELLED_FILE,
                          proc.HANDLE_FILE):
                (directory / stale).unlink(missing_ok=True)
        # The log exists once submit returns, as for a spawned unit: logs() reads it
        # (not the artifact store) before the child's first write.
        (directory / proc.LOG_FILE).touch()
        with self._lock:
            if self._warm is None:
                from ketch.core.executors._warm import WarmPool

                # Started with the filtered environment: no secret reaches a child.
                self._warm = WarmPool(
                    {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV},
                    self.runs_dir, self._on_warm_exit)
            pool = self._warm
        started = pool.start({
            "unit": unit.unit_id, "dir": str(directory), "env": env,
            # As a spawned process would: no working_dir is the control plane's.
            "cwd": unit.working_dir or os.getcwd(), "python": entry["python"],
            "preload": entry.get("preload") or [],
            "workingDirUri": (entry.get("runtime") or {}).get("workingDirUri")})
        if started is None:
            return None
        pid, create_time, inherited = started
        handle = self._new_handle(unit, directory, pid, create_time, record, endpoint,
                                  {"warm": True, "inheritedRss": inherited})
        with self._lock:
            record.handle = handle
            ended = record.exited  # the exit message came first: say it now
        if ended:
            self._notify(unit.unit_id)
        return handle

    def _on_warm_exit(self, unit_id: str, pid: int) -> None:
        with self._lock:
            record = self._units.get(unit_id)
            if record is None or record.exited:
                return
            if record.handle and record.handle.get("pid") != pid:
                return  # an earlier run of a resubmitted unit id
            record.exited = True
            ready = bool(record.handle)
        if ready:
            self._notify(unit_id)

    # ------------------------------------------------------------ monitoring

    def _ensure_monitor(self) -> None:
        with self._lock:
            if self._monitor is not None or self._stop.is_set():
                return
            self._monitor = threading.Thread(target=self._monitor_loop,
                                             name="ketch-local-monitor", daemon=True)
            self._monitor.start()

    def _monitor_loop(self) -> None:
        while not self._stop.wait(_MONITOR_INTERVAL):
            with self._lock:
                units = [u for u in self._units.values()
                         if u.handle and not u.exited and not u.enforcing]
            for unit in units:
                try:
                    self._check(unit)
                except Exception:  # the monitor must outlive any single bad unit
                    log.exception("monitoring unit %s failed", unit.handle.get("unitId"))

    def _check(self, unit: _Unit) -> None:
        handle = unit.handle
        proc.trim_log(Path(handle["dir"]) / proc.LOG_FILE, self.log_max_bytes)
        pid, created = handle["pid"], handle["createTime"]
        if not proc.is_alive(pid, created):
            if unit.popen is None:  # adopted: no waiter thread will notice the exit
                with self._lock:
                    unit.exited = True
                self._notify(handle["unitId"])
            return
        if unit.startup_check and self._check_startup(unit):
            return
        deadline = handle.get("deadline")
        if deadline is not None and time.time() > deadline:
            self._enforce(unit, "DeadlineExceeded", proc.deadline_message(handle), self._grace)
            return
        if unit.memory > 0:
            # A unit forked warm starts with the worker's resident pages (shared, not
            # its own): only what it grew beyond them counts against its limit.
            used = proc.tree_rss(pid, created) - int(handle.get("inheritedRss") or 0)
            if used > unit.memory:
                # Like the kernel's OOM killer: no grace, the memory is needed now.
                self._enforce(unit, "OOMKilled", f"used {used} bytes, limit {unit.memory}", 0)

    def _expect_endpoint(self, unit: WorkUnit, handle: Handle) -> None:
        """Arm the startup check of a server unit with a startup limit (after its
        start, so a resubmitted unit id never answers with its predecessor's files)."""
        endpoint = self.endpoint(handle)
        directory = Path(handle["dir"])
        for stale in (startup.STARTUP_FILE, startup.READY_FILE):
            (directory / stale).unlink(missing_ok=True)
        if endpoint is None or unit.startup_timeout_seconds is None:
            return
        # time.time(), not the create time: psutil derives that from a boot time
        # rounded to the second, so it can sit up to a second early.
        startup.expect(directory, endpoint, time.time(), unit.startup_timeout_seconds)
        with self._lock:
            record = self._units.get(unit.unit_id)
            if record is not None:
                record.startup_check = True

    def _check_startup(self, unit: _Unit) -> bool:
        """Probe a server unit that has not answered yet; stop it once it is past its
        startup limit. Returns whether it is being stopped."""
        directory = Path(unit.handle["dir"])
        state = startup.check(directory)
        if state is startup.Startup.OVERDUE:
            self._enforce(unit, "EndpointUnreachable", startup.unreachable_message(directory),
                          self._grace)
            return True
        if state is not startup.Startup.WAITING:
            with self._lock:
                unit.startup_check = False
        return False

    def _enforce(self, unit: _Unit, reason: str, message: str, grace: float) -> None:
        with self._lock:
            unit.enforcing = True
        self._record_reason(Path(unit.handle["dir"]), reason, message)
        if grace <= 0:
            self.cancel(unit.handle, grace_seconds=0)
        else:
            # A graceful kill takes seconds; do not stall the other units' checks.
            threading.Thread(target=self.cancel, args=(unit.handle,),
                             kwargs={"grace_seconds": grace}, daemon=True).start()

    @staticmethod
    def _record_reason(directory: Path, reason: str, message: str) -> None:
        # Written before the kill so that poll never sees a dead unit without it;
        # the first reason wins (a unit killed for its deadline stays that way).
        if not (directory / proc.REASON_FILE).exists():
            proc.atomic_write(directory / proc.REASON_FILE,
                              json.dumps({"reason": reason, "message": message}))

    def _adopt(self, handle: Handle) -> None:
        """Take the slots of a running unit another executor instance started."""
        res = handle.get("resources") or {}
        with self._lock:
            if handle["unitId"] in self._units:
                return
            self._units[handle["unitId"]] = _Unit(
                handle=handle, cpu=float(res.get("cpu", 0)), memory=int(res.get("memory", 0)),
                gpu_ids=[str(g) for g in res.get("gpuIds", [])], popen=None,
                startup_check="endpoint" in handle)
        self._ensure_monitor()

    def close(self) -> None:
        self._stop.set()
        if self._warm is not None:
            self._warm.close()  # the worker exits; its running children carry on
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join(timeout=5)

    # ----------------------------------------------------------- inspection

    def lookup(self, unit_id: str) -> Handle | None:
        try:
            directory = self._dir(unit_id)
        except ExecutorError:
            return None
        handle = proc.load_json(directory / proc.HANDLE_FILE)
        if handle is None and self._index is not None:
            # Started by another control plane of this database, from its own home.
            elsewhere = self._index.find(unit_id)
            if elsewhere is not None and elsewhere != directory:
                handle = proc.load_json(elsewhere / proc.HANDLE_FILE)
        return handle

    def poll(self, handle: Handle) -> UnitStatus:
        try:
            return self._poll(handle)
        except Exception as err:  # poll never raises: an unreadable unit is lost
            return UnitStatus(UnitState.LOST, reason="ProcessLost",
                              message=f"cannot inspect unit: {err}")

    def _poll(self, handle: Handle) -> UnitStatus:
        if handle.get("backend") != self.name:
            return UnitStatus(UnitState.LOST, reason="ProcessLost",
                              message=f"handle belongs to backend {handle.get('backend')!r}")
        directory = Path(handle["dir"])
        local = handle.get("host") == self._host
        # Liveness first, files second: a wrapper writes its exit file before it
        # exits, so a process seen gone has left every file it will ever write.
        alive = local and proc.is_alive(handle["pid"], handle["createTime"])
        final = proc.final_status(directory, alive)
        if final is not None:
            return final
        if alive:
            deadline = handle.get("deadline")
            if deadline is not None and time.time() > deadline:
                self._record_reason(directory, "DeadlineExceeded", proc.deadline_message(handle))
                self.cancel(handle, grace_seconds=self._grace)
                return proc.final_status(directory, False) or UnitStatus(
                    UnitState.FAILED, reason="DeadlineExceeded",
                    message=proc.deadline_message(handle))
            if handle["unitId"] not in self._units:
                self._adopt(handle)
            return UnitStatus(UnitState.RUNNING)
        if not local:
            return UnitStatus(UnitState.LOST, reason="ProcessLost",
                              message=f"unit ran on host {handle.get('host')!r}, "
                                      f"not on this host {self._host!r}")
        return UnitStatus(UnitState.LOST, reason="ProcessLost",
                          message=f"process {handle['pid']} is gone and recorded no exit code")

    def logs(self, handle: Handle, *, follow: bool = False) -> Iterator[bytes]:
        path = Path(handle["dir"]) / proc.LOG_FILE
        try:
            # An open file keeps its data even if finalize unlinks it meanwhile.
            logf = open(path, "rb")  # noqa: SIM115 - closed in the finally below
        except FileNotFoundError:
            yield from self._stored_log(handle)
            return
        try:
            while True:
                chunk = logf.read(65536)
                if chunk:
                    yield chunk
                    continue
                if not follow or self.poll(handle).done:
                    break
                if os.fstat(logf.fileno()).st_size < logf.tell():
                    logf.seek(0)  # trimmed under us: the kept tail starts at 0
                time.sleep(_FOLLOW_INTERVAL)
            # The unit ended: whatever it wrote before exiting is in the file now.
            while chunk := logf.read(65536):
                yield chunk
        finally:
            logf.close()

    def _stored_log(self, handle: Handle) -> Iterator[bytes]:
        key = handle.get("logKey")
        if not key:
            return
        try:
            yield from self.artifacts.iter_bytes(key)
        except NotFoundError:
            return

    # ------------------------------------------------------------- stopping

    def cancel(self, handle: Handle, *, grace_seconds: float = 5.0) -> None:
        directory = Path(handle["dir"])
        if handle.get("host") != self._host:
            return  # another host's process cannot be signalled from here
        if not proc.is_alive(handle["pid"], handle["createTime"]):
            return  # already ended: keep the state it ended in
        if (directory.is_dir() and not (directory / proc.REASON_FILE).exists()
                and proc.read_exit_code(directory) is None):
            # Marker first: poll must never see the killed unit as plainly failed.
            (directory / proc.CANCELLED_FILE).touch()
        proc.kill_tree(handle["pid"], handle["createTime"], grace_seconds)

    def finalize(self, handle: Handle) -> None:
        # Slots first: the unit ended, so its resources are free even if the upload
        # below fails (a retry of finalize retries the upload).
        self._release(handle["unitId"])
        key = handle.get("logKey")
        path = Path(handle["dir"]) / proc.LOG_FILE
        if key and path.exists():
            # The last burst may have passed the cap since the monitor's last look.
            proc.trim_log(path, self.log_max_bytes)
            self.artifacts.put_file(str(path), key)
            path.unlink(missing_ok=True)

    def forget(self, handle: Handle) -> None:
        self.cancel(handle, grace_seconds=self._grace)
        self._release(handle["unitId"])
        shutil.rmtree(handle["dir"], ignore_errors=True)
        if self._index is not None:
            self._index.drop(handle["unitId"], Path(handle["dir"]))


def _orphan_wrapper(exit_file: Path) -> psutil.Process | None:
    """The exit wrapper still running for ``exit_file``, if any: a unit started by a
    control plane that died before it recorded the start."""
    wanted = str(exit_file)
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if len(cmdline) > 3 and cmdline[:2] == ["/bin/sh", "-c"] and cmdline[3] == wanted:
            return process
    return None


def _log_max_bytes_from_env() -> int:
    raw = os.environ.get("KETCH_LOG_MAX_BYTES", "").strip()
    if not raw:
        return DEFAULT_LOG_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 4096:
        raise ExecutorError(f"KETCH_LOG_MAX_BYTES must be an integer of at least 4096 "
                            f"bytes, not {raw!r}")
    return value
