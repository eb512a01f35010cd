"""Process and scratch-file helpers for the local executor.

Everything here works from plain data (a pid, a recorded start time, a
directory), never from a ``Popen`` object, so a control plane that restarted
can inspect and stop processes it did not spawn.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from ketch.core.executors._base import Handle, UnitState, UnitStatus

__all__ = [
    "CANCELLED_FILE",
    "EXIT_FILE",
    "HANDLE_FILE",
    "LOG_FILE",
    "REASON_FILE",
    "USER_DIR",
    "atomic_write",
    "deadline_message",
    "detect_gpus",
    "exit_message",
    "final_status",
    "find_process",
    "is_alive",
    "kill_tree",
    "load_json",
    "read_exit_code",
    "read_reason",
    "resolve_executable",
    "tree_rss",
    "trim_log",
]

HANDLE_FILE = "handle.json"
EXIT_FILE = "exit"
# With KETCH_RUN_AS_USER the wrapper runs as that user and writes its exit file in
# this subdirectory, the only one it owns: handle.json (whose pid the control plane
# signals as root) stays out of the unit's reach.
USER_DIR = "unit"
REASON_FILE = "reason"
CANCELLED_FILE = "cancelled"
LOG_FILE = "output.log"

# psutil derives create_time from boot time + start ticks, which is stable across
# processes; the tolerance only absorbs float formatting. PID reuse within half a
# second of the very same pid is not a practical concern.
_CREATE_TIME_TOLERANCE = 0.5
# After SIGKILL a process in uninterruptible sleep can linger; do not hang forever.
_KILL_WAIT_SECONDS = 5.0


def atomic_write(path: Path, data: str) -> None:
    """Write ``data`` so readers see the old file or the whole new one, never half.

    No fsync: the files must survive a control-plane crash (the page cache does
    that), and a machine crash kills the units anyway.
    """
    # A unique temp name per thread: the monitor and a poll may race on "reason".
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)


def read_exit_code(directory: Path) -> int | None:
    """The code the ``sh`` wrapper recorded, or None if it recorded none."""
    try:
        path = directory / EXIT_FILE
        if not path.exists():
            path = directory / USER_DIR / EXIT_FILE
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def read_reason(directory: Path) -> tuple[str, str] | None:
    """The ``(reason, message)`` the executor recorded before killing a unit."""
    try:
        data = json.loads((directory / REASON_FILE).read_text(encoding="utf-8"))
        return str(data["reason"]), str(data.get("message", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def exit_message(code: int) -> str:
    """A sentence for an exit code; ``sh`` reports death by signal N as 128 + N."""
    if code > 128:
        try:
            return f"killed by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"exited with code {code}"


def resolve_executable(command0: str, env: Mapping[str, str], cwd: str | None) -> str:
    """The file ``command0`` names, resolved like ``execvp`` would.

    Raises:
        OSError: ``FileNotFoundError`` or ``PermissionError`` carrying the text the
            kernel would have given, so callers can show the familiar message.
    """
    if "/" not in command0:
        found = shutil.which(command0, path=env.get("PATH", os.defpath))
        if found is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command0)
        return found
    path = command0 if os.path.isabs(command0) else os.path.join(cwd or os.getcwd(), command0)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command0)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), command0)
    return command0


def find_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process ``pid`` if it is still the one that started at ``create_time``."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > _CREATE_TIME_TOLERANCE:
            return None  # the pid was reused by an unrelated process
        return proc
    except psutil.Error:
        return None


def _running(proc: psutil.Process) -> bool:
    # A zombie has finished; it only waits for a parent (maybe a non-reaping
    # container init) to collect it, so it counts as gone.
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def is_alive(pid: int, create_time: float) -> bool:
    """Whether the process that started at ``create_time`` still runs."""
    proc = find_process(pid, create_time)
    return proc is not None and _running(proc)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def tree_rss(pid: int, create_time: float) -> int:
    """Resident memory of the process and all its descendants, in bytes."""
    root = find_process(pid, create_time)
    if root is None:
        return 0
    total = 0
    for proc in _tree(root):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def _signal_all(pgid: int | None, procs: list[psutil.Process], sig: signal.Signals) -> None:
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for proc in procs:
        # psutil refuses to signal a pid that was reused (NoSuchProcess).
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if _running(p)]
    return alive


def kill_tree(pid: int, create_time: float, grace_seconds: float) -> None:
    """SIGTERM the process group and every descendant, SIGKILL survivors after grace.

    Returns once all of them are gone (or after a bounded wait for processes stuck
    in the kernel). Never raises for processes that are already dead.
    """
    root = find_process(pid, create_time)
    if root is None or not _running(root):
        return
    # Collect descendants before signalling: once a parent dies its children are
    # reparented and can no longer be found from the root. This also catches
    # children that left the process group with setsid().
    procs = _tree(root)
    # The group id is the root's pid (start_new_session); signal the group only
    # while the root is known alive, so the id cannot belong to someone else.
    if grace_seconds > 0:
        _signal_all(pid, procs, signal.SIGTERM)
        survivors = _wait_gone(procs, grace_seconds)
        if not survivors:
            return
        # Descendants may have spawned more processes during the grace period.
        if _running(root):
            procs = _tree(root)
        survivors = list({p.pid: p for p in [*survivors, *procs]}.values())
        _signal_all(pid if _running(root) else None, survivors, signal.SIGKILL)
        _wait_gone(survivors, _KILL_WAIT_SECONDS)
    else:
        _signal_all(pid, procs, signal.SIGKILL)
        _wait_gone(procs, _KILL_WAIT_SECONDS)


def detect_gpus() -> list[str]:
    """GPU ids ``"0"``, ``"1"``, ... as ``nvidia-smi -L`` lists them; [] without it."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        out = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=10,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    ids: list[str] = []
    for line in out.splitlines():
        # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)"
        if line.startswith("GPU ") and ":" in line:
            ids.append(line[4:line.index(":")].strip())
    return ids


def load_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def final_status(directory: Path, alive: bool) -> UnitStatus | None:
    """The end state the scratch files record, or None while undecided.

    Args:
        directory: The unit's scratch directory.
        alive: Whether its process was alive *before* the files were read.
    """
    code = read_exit_code(directory)
    if (directory / CANCELLED_FILE).exists() and not alive:
        return UnitStatus(UnitState.FAILED, exit_code=code, reason="Cancelled",
                          message="cancelled on request")
    if code == 0:
        return UnitStatus(UnitState.SUCCEEDED, exit_code=0, reason="Completed")
    reason = read_reason(directory)
    if code is not None:
        if reason is not None:
            return UnitStatus(UnitState.FAILED, exit_code=code, reason=reason[0],
                              message=reason[1])
        return UnitStatus(UnitState.FAILED, exit_code=code, reason="Error",
                          message=exit_message(code))
    if reason is not None and not alive:  # the kill took the wrapper too
        return UnitStatus(UnitState.FAILED, reason=reason[0], message=reason[1])
    return None


def deadline_message(handle: Handle) -> str:
    """The message for a unit killed at its deadline (Kubernetes' wording)."""
    seconds = handle.get("timeoutSeconds")
    if seconds is None and handle.get("deadline") is not None:
        seconds = round(handle["deadline"] - handle["createTime"])
    return f"exceeded activeDeadlineSeconds ({_fmt(seconds)} s)"


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


_TRIM_CHUNK = 1 << 20


def trim_log(path: Path, max_bytes: int) -> bool:
    """Cap the log at ``path``: past ``max_bytes``, keep its last three quarters of
    ``max_bytes`` (from a line start) after a one-line marker. Returns whether it trimmed.

    The unit keeps writing through its own ``O_APPEND`` descriptor, so the file is
    rewritten in place (moved forward in chunks, never held in memory) and the
    writer's next write lands at the new end. Bytes written during the few
    milliseconds of the move can be lost; the log is already missing its head then.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size <= max_bytes:
        return False
    keep = max_bytes * 3 // 4
    with open(path, "r+b") as logf:
        start = size - keep
        logf.seek(start)
        # Start at a line boundary when one is near, so the first line is whole.
        newline = logf.read(min(4096, keep)).find(b"\n")
        if newline >= 0:
            start += newline + 1
        marker = (f"[ketch: earlier output dropped; a log keeps its last part under "
                  f"KETCH_LOG_MAX_BYTES={max_bytes}]\n").encode()
        logf.seek(0)
        logf.write(marker)
        read_at, write_at = start, len(marker)
        while True:
            logf.seek(read_at)
            chunk = logf.read(_TRIM_CHUNK)
            if not chunk:
                break
            logf.seek(write_at)
            logf.write(chunk)
            read_at += len(chunk)
            write_at += len(chunk)
        logf.truncate(write_at)
    return True
