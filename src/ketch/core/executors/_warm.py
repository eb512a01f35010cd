"""The local backend's warm Python pool: one worker process that forks a child per unit.

A fresh interpreter plus the imports of a small Python unit cost tens of
milliseconds, more than the unit's own work when it is a pipeline step. So the
executor keeps one *worker* (``python -m ketch.core.executors._warm``), started on
the first Python unit with the control plane's environment minus its secrets. It
imports the entries' ``preload`` modules once and forks one child per unit (ADR 005,
now core's). The child starts a new session (its pid is the process group, so
cancel kills its whole tree), sends its output to the unit's ``output.log``, takes
the unit's env and working directory, runs ``module.function(argument)`` and writes
the exit code to the unit's ``exit`` file, atomically, exactly as the ``sh`` wrapper
does for a command unit, then ``_exit``\\ s. That file, not the pipe, is the truth:
the worker's exit message only wakes the executor early. If the control plane dies
the worker reads end-of-file and exits; running children carry on, still write
their exit files, and a restarted control plane adopts them by pid and create time.

The worker is single-threaded by design: forking a process with threads is unsafe.

Wire format, one JSON object per line. Request: ``{"seq", "unit", "dir", "env",
"cwd", "python": {"module", "function", "argument"}, "preload": [...],
"workingDirUri"}``. Replies: ``{"seq", "pid", "createTime",
"inheritedRss"}`` once the child exists
(or ``{"seq", "error"}``), and ``{"unit", "pid", "rc"}`` when a child ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["WarmPool"]

log = logging.getLogger(__name__)

_EXIT_FILE = "exit"  # _local_proc.EXIT_FILE: the worker does not import psutil's users
_LOG_FILE = "output.log"
# How long a fork request may take, the first one including the worker's start and
# its preloads; past it the pool is taken as broken and units start cold.
_REPLY_TIMEOUT = 60.0


class WarmPool:
    """The executor's side of the worker. Thread-safe; ``start`` forks one unit.

    ``on_exit(unit_id, pid)`` is called from a reader thread when a child ends.
    """

    def __init__(self, env: Mapping[str, str], cwd: Path,
                 on_exit: Callable[[str, int], None]) -> None:
        self._env = dict(env)
        self._cwd = cwd
        self._on_exit = on_exit
        self._lock = threading.Lock()  # one request in flight: a fork is milliseconds
        self._proc: subprocess.Popen[bytes] | None = None
        self._seq = 0
        self._reply: dict[str, Any] | None = None
        self._replied = threading.Condition()
        self.broken = False

    def _worker(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        proc = subprocess.Popen(
            [sys.executable, "-m", "ketch.core.executors._warm"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=self._env, cwd=self._cwd, close_fds=True,
            start_new_session=True)  # a ^C at the server's terminal is not the units'
        self._proc = proc
        threading.Thread(target=self._read, args=(proc,), name="ketch-warm-reader",
                         daemon=True).start()
        return proc

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "seq" in message:
                with self._replied:
                    self._reply = message
                    self._replied.notify_all()
            elif "unit" in message:
                try:
                    self._on_exit(str(message["unit"]), int(message["pid"]))
                except Exception:
                    log.exception("warm pool exit callback failed")
        with self._replied:  # the worker is gone: no reply will come
            self._reply = {"seq": -1, "error": "the warm worker exited"}
            self._replied.notify_all()

    def start(self, request: Mapping[str, Any]) -> tuple[int, float, int] | None:
        """Fork a child for ``request``; its ``(pid, createTime, inheritedRss)`` (the
        worker's resident bytes the child starts with), or None when the worker cannot
        do it (the caller starts the unit cold)."""
        with self._lock:
            if self.broken:
                return None
            self._seq += 1
            data = json.dumps({**request, "seq": self._seq}).encode() + b"\n"
            try:
                proc = self._worker()
                assert proc.stdin is not None
                with self._replied:
                    self._reply = None
                proc.stdin.write(data)
                proc.stdin.flush()
            except (OSError, ValueError) as err:
                log.warning("warm pool unavailable, units start cold: %s", err)
                self._kill()
                self.broken = True
                return None
            with self._replied:
                got = self._replied.wait_for(
                    lambda: self._reply is not None and self._reply["seq"] in (self._seq, -1),
                    timeout=_REPLY_TIMEOUT)
                reply = self._reply if got else None
            if reply is None or "pid" not in reply:
                why = reply.get("error") if reply else "no reply"
                log.warning("warm pool failed (%s); this unit starts cold", why)
                self._kill()  # the next unit starts a fresh worker
                return None
            return int(reply["pid"]), float(reply["createTime"]), int(reply["inheritedRss"])

    def _kill(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            self._proc = None

    def close(self) -> None:
        """Close the worker's input: it exits; running children carry on."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


# -- the worker process ------------------------------------------------------------


def _child(request: dict[str, Any], keep: tuple[int, ...]) -> None:
    """In the forked child: become the unit. Never returns."""
    from ketch.core.executors import _entry

    rc = 1
    directory = str(request["dir"])
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        for fd in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
        log_fd = os.open(os.path.join(directory, _LOG_FILE),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        env = request.get("env") or {}
        os.environ.clear()
        os.environ.update(env)
        cwd = request.get("cwd") or directory
        os.chdir(cwd)
        # What a fresh ``python -m`` would have on its path: the cwd, then PYTHONPATH.
        extra = [p for p in str(env.get("PYTHONPATH", "")).split(os.pathsep) if p]
        sys.path[:1] = [os.getcwd(), *extra]
        uri = request.get("workingDirUri")
        if uri:
            try:
                _entry.stage_working_dir(str(uri), os.getcwd())
            except _entry.RuntimeEnvError as err:
                print(f"ketch: {err}", file=sys.stderr)
                _entry.record_failure(directory, str(err))
                raise SystemExit(1) from None
        rc = _entry.call(request["python"])
    except SystemExit as stop:
        rc = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        import traceback

        with contextlib.suppress(BaseException):
            traceback.print_exc()
        rc = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(BaseException):
            # The sh wrapper's file and format: "$0.tmp" renamed onto "$0".
            tmp = os.path.join(directory, _EXIT_FILE + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(str(rc & 0xFF))
            os.replace(tmp, os.path.join(directory, _EXIT_FILE))
        os._exit(rc & 0xFF)


_preloaded: set[str] = set()


def _preload(modules: list[str]) -> None:
    """Import ``modules`` here, once, so every later fork finds them in memory."""
    import importlib

    for name in modules:
        if name in _preloaded:
            continue
        _preloaded.add(name)
        # A module that fails to import fails the unit that imports it, in its log.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _serve() -> None:
    import psutil  # create times the executor checks pids against, as for any unit

    from ketch.core.executors import _entry  # noqa: F401  (what every child imports)

    me = psutil.Process()

    proto = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # stray prints must not corrupt the protocol
    os.close(null)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "stdin")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    children: dict[int, str] = {}
    buffer = b""
    keep = (proto, wake_r, wake_w)  # fd 0 is replaced by dup2 in the child
    open_input = True

    def send(message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            os.write(proto, json.dumps(message).encode() + b"\n")

    while open_input:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                # The control plane is gone: stop; running children carry on alone.
                open_input = False
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                _preload([str(m) for m in request.get("preload") or ()])
                inherited = me.memory_info().rss
                try:
                    pid = os.fork()
                except OSError as err:
                    send({"seq": request["seq"], "error": f"fork failed: {err}"})
                    continue
                if pid == 0:
                    _child(request, keep)
                children[pid] = str(request["unit"])
                # Read before this loop can reap the child, so it is always readable.
                created = psutil.Process(pid).create_time()
                send({"seq": request["seq"], "pid": pid, "createTime": created,
                      "inheritedRss": inherited})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            unit = children.pop(pid, None)
            if unit is not None:
                send({"unit": unit, "pid": pid, "rc": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    _serve()
