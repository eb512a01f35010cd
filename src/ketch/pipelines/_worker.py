"""Task processes for pipeline steps: a warm worker that forks one child per task.

Starting a Python interpreter and importing the executor costs tens of milliseconds,
more than a trivial step's work, and a pipeline is mostly trivial steps. So the engine
keeps one *worker* process (``python -m ketch.pipelines._worker``) that has imported
everything a step needs, and asks it over a pipe to fork a child per task. The child
starts a new session (its own process group, so cancel kills its whole tree), sends
its output to the task's log file, runs the step, and writes the exit status to a file
in the task's directory itself. That file, not the pipe, is the source of truth: the
worker's ``exit`` message only wakes the engine early. If the control plane dies, the
worker sees end-of-file and exits, but running children carry on and still write their
status, so a restarted control plane adopts them (ADR 002's rule, for forks).

Wire format: one JSON object per line. Requests ``{"id", "dir", "env", "cwd", either
"python": {"source", "function", "executorInput"} or "argv": [...], and, when the artifact
store is remote, "staging": {"mountRoot", "store", "executorInput"}}``; replies
``{"id", "rc"}`` when a child ends. A staged step downloads its inputs, runs, uploads its
outputs and only then writes its status (see ``_staging``); an unstaged argv step is
exec'd through the ``sh`` status wrapper.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ketch.pipelines._packages import NOT_INSTALLED_ENV, not_installed_hint

__all__ = ["EXIT_FILE", "LOG_FILE", "PID_FILE", "TaskRunner", "read_exit_code", "task_alive"]

EXIT_FILE = "exit_code"
PID_FILE = "pid"
LOG_FILE = "log"
# Present when the pid file's process is a staging wrapper around an argv step, not the
# step itself: its own memory is then not the step's (see task_rss).
WRAPPER_FILE = "wrapper"
# Environment the control plane has that a user's step must not see.
_SECRET_ENV = ("KETCH_TOKEN", "KETCH_DATABASE_URL")
# argv steps record their status through sh, as the core executor does (ADR 002).
_EXEC_WRAPPER = ('"$@"; rc=$?; printf "%s" "$rc" > "$KETCH_TASK_DIR/exit_code.tmp" && '
                 'mv "$KETCH_TASK_DIR/exit_code.tmp" "$KETCH_TASK_DIR/exit_code"; exit $rc')


def read_exit_code(task_dir: str | Path) -> int | None:
    """The step's exit status, or None while it has not ended."""
    try:
        return int(Path(task_dir, EXIT_FILE).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


def _read_pid(task_dir: str | Path) -> int:
    """The step's pid from its pid file (FileNotFoundError/ValueError if none yet)."""
    return int(Path(task_dir, PID_FILE).read_text(encoding="utf-8").strip())


def task_alive(task_dir: str | Path) -> bool:
    """Whether the step's process (group) still exists, for adopting after a restart."""
    try:
        pid = _read_pid(task_dir)
    except (FileNotFoundError, ValueError):
        return False
    import psutil

    # The step's own process (the session leader), not its group: when it is gone the
    # step is over, whatever children it left behind (the caller kills the group).
    try:
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE and os.getpgid(pid) == pid
    except (psutil.Error, ProcessLookupError):
        return False
    return alive and read_exit_code(task_dir) is None


def kill_task(task_dir: str | Path, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError,
                             PermissionError):
        pid = _read_pid(task_dir)
        os.killpg(pid, sig)


def task_rss(task_dir: str | Path) -> int:
    """Resident memory of the step's process and its descendants, in bytes (0 if gone).
    Under a staging wrapper, only the command's processes count: the limit is the
    step's, and the wrapper (a fork of the warm worker) shares most of its pages."""
    import psutil

    try:
        pid = _read_pid(task_dir)
        root = psutil.Process(pid)
        procs = root.children(recursive=True)
        if not Path(task_dir, WRAPPER_FILE).exists():
            procs.insert(0, root)
    except (FileNotFoundError, ValueError, psutil.Error):
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


__all__ += ["kill_task", "task_rss"]


class TaskRunner:
    """The control plane's side: starts the worker on first use and restarts it if it
    dies. ``on_exit(task_id)`` is called from a reader thread when a child ends.
    Thread-safe."""

    def __init__(self, on_exit: Callable[[str], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _worker(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
        proc = subprocess.Popen(
            [sys.executable, "-m", "ketch.pipelines._worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, close_fds=True)
        self._proc = proc
        threading.Thread(target=self._read, args=(proc,), name="pipeline-worker-reader",
                         daemon=True).start()
        return proc

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(ValueError, KeyError):
                self._on_exit(str(json.loads(line)["id"]))

    def start(self, task_id: str, task_dir: Path, *, env: Mapping[str, str],
              cwd: str | None = None, python: Mapping[str, Any] | None = None,
              argv: list[str] | None = None,
              staging: Mapping[str, Any] | None = None) -> None:
        """Fork the step. Returns once the worker has the request (not when it runs).
        ``staging`` (mount root, store URI, executor input) moves its artifacts through
        a remote store around the step."""
        task_dir.mkdir(parents=True, exist_ok=True)
        request = {"id": task_id, "dir": str(task_dir), "env": dict(env),
                   "cwd": cwd or str(task_dir)}
        if python is not None:
            request["python"] = dict(python)
        else:
            request["argv"] = list(argv or [])
        if staging is not None:
            request["staging"] = dict(staging)
        data = json.dumps(request).encode() + b"\n"
        with self._lock:
            for _ in range(2):
                proc = self._worker()
                try:
                    assert proc.stdin is not None
                    proc.stdin.write(data)
                    proc.stdin.flush()
                    return
                except (BrokenPipeError, OSError):
                    proc.kill()
                    proc.wait()
        raise RuntimeError("the pipeline task worker could not be started")

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(5)
            self._proc = None


# -- the worker process ------------------------------------------------------------


def _child(request: dict[str, Any], keep: tuple[int, ...]) -> None:
    """In the forked child: become the step. Never returns."""
    rc = 1
    task_dir = request["dir"]
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        for fd in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
        log_fd = os.open(os.path.join(task_dir, LOG_FILE), os.O_WRONLY | os.O_CREAT
                         | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        if request.get("staging") and "argv" in request:
            open(os.path.join(task_dir, WRAPPER_FILE), "w").close()  # before the pid: see task_rss
        # Written whole or not at all: a reader never sees an empty pid file.
        with open(os.path.join(task_dir, PID_FILE + ".tmp"), "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        os.replace(os.path.join(task_dir, PID_FILE + ".tmp"), os.path.join(task_dir, PID_FILE))
        os.environ.update(request.get("env") or {})
        os.environ["KETCH_TASK_DIR"] = task_dir
        os.chdir(request.get("cwd") or task_dir)
        staging = request.get("staging")
        if "argv" in request and staging is None:
            argv = request["argv"]
            os.execvp("sh", ["sh", "-c", _EXEC_WRAPPER, "sh", *argv])
        if staging is None:
            rc = _run_python(request["python"])
        else:
            # This process stays the step's session leader (its pid is the one in the pid
            # file) and writes the status below once the outputs are uploaded.
            from ketch.pipelines import _staging

            rc = _staging.staged(staging, (lambda: _staging.run_command(request["argv"]))
                                 if "argv" in request else
                                 (lambda: _run_python(request["python"])))
    except SystemExit as stop:
        rc = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException as error:  # the user's step failed: its traceback is its log
        import traceback

        traceback.print_exc()
        rc = 1
        declared = os.environ.get(NOT_INSTALLED_ENV)
        if isinstance(error, ImportError) and declared:
            # Most likely a package the component declares and this run did not install:
            # say so last, where the engine's failure message looks (failure_message).
            print(not_installed_hint(error, declared), file=sys.stderr)
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(BaseException):
            tmp = os.path.join(task_dir, EXIT_FILE + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(str(rc))
            os.replace(tmp, os.path.join(task_dir, EXIT_FILE))
        os._exit(rc)


def _run_python(spec: dict[str, Any]) -> int:
    from ketch.pipelines.executor import install_kfp_alias, run_lightweight

    install_kfp_alias()
    run_lightweight(spec["source"], spec["function"], spec["executorInput"])
    return 0


_preloaded: set[str] = set()


def _preload(store: str) -> None:
    """Import the remote store's filesystem once, before forking, not in every step."""
    scheme = store.split("://", 1)[0]
    if scheme in _preloaded:
        return
    _preloaded.add(scheme)
    with contextlib.suppress(Exception):  # the step reports a missing backend itself
        from ketch.pipelines._staging import preload

        preload(store)


def _serve() -> None:
    # Import now what every step needs, so that a fork finds it in memory.
    with contextlib.suppress(ImportError):
        import ketch.pipelines.executor  # noqa: F401
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
    while open_input or children:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                # The control plane is gone: stop taking work; running steps carry on.
                sel.unregister(0)
                open_input = False
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                if "staging" in request:
                    _preload(str(request["staging"].get("store") or ""))
                pid = os.fork()
                if pid == 0:
                    _child(request, keep)
                children[pid] = str(request["id"])
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            task_id = children.pop(pid, None)
            if task_id is not None and open_input:
                message = json.dumps({"id": task_id, "rc": os.waitstatus_to_exitcode(status)})
                with contextlib.suppress(OSError):
                    os.write(proto, message.encode() + b"\n")
        if not open_input:
            return  # children are session leaders; they outlive us and report by file


if __name__ == "__main__":
    _serve()
