"""The cold path of a Python unit, and a unit's runtime environment.

``python -P .../ketch/core/executors/_entry.py <unit dir>`` is what the local backend runs
(inside its ``sh`` exit wrapper) for a ``PythonEntry`` unit that is not forked from
the warm worker, and for any unit with a ``runtime_env``. Everything it needs is in
``<unit dir>/entry.json`` (never argv: an argument may hold what ``ps`` must not
show):

* ``python``: ``{"module", "function", "argument"}``, called as
  ``module.function(argument)``; or ``argv``: a command to exec;
* ``runtime``: ``{"packages", "indexUrls", "venvRoot", "workingDirUri"}``.

Before the call, the runtime environment is made ready *here*, in the unit's own
process, so ``submit`` never waits on it: the working directory's files are copied
from the artifact store, and the venv for ``packages`` is built (or waited for) and
this program exec'd again from the venv's interpreter. A failure there records the
reason ``RuntimeEnvFailed`` (the executor's reason file) and exits 1.
"""

from __future__ import annotations

# Imports kept to what a trivial unit needs: this program runs as a script
# (``python -P .../_entry.py``), not ``-m``, so neither the ``ketch`` packages' imports
# nor ``typing`` are paid on the cold path (tens of milliseconds).
import json
import os
import sys

TYPE_CHECKING = False  # typing itself costs an import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["ENTRY_FILE", "PREPARED_ENV", "RuntimeEnvError", "call", "exit_code_of",
           "record_failure", "script_argv", "stage_working_dir", "working_dir_exists"]

ENTRY_FILE = "entry.json"
# Set on the re-exec from a venv's interpreter: the environment is ready, run the entry.
PREPARED_ENV = "KETCH_UNIT_PREPARED"
_REASON_FILE = "reason"  # _local_proc.REASON_FILE, not imported: psutil costs ~15 ms


class RuntimeEnvError(Exception):
    """The unit's runtime environment could not be made ready."""


def exit_code_of(result: object) -> int:
    """The exit code for a function's return value, as ``sys.exit`` reads it."""
    if isinstance(result, bool) or not isinstance(result, int):
        return 0  # None (and any non-int value) is success
    return result & 0xFF


def call(entry: Mapping[str, Any]) -> int:
    """Import the entry's module, call its function with the argument; the exit code.

    An exception prints its traceback (to the unit's log) and is exit code 1; a
    ``SystemExit`` keeps its code, as it would for a script.
    """
    try:
        import importlib

        module = importlib.import_module(str(entry["module"]))
        function = getattr(module, str(entry["function"]))
        return exit_code_of(function(entry.get("argument") or {}))
    except SystemExit as stop:
        if stop.code is None:
            return 0
        if isinstance(stop.code, int):
            return stop.code & 0xFF
        print(stop.code, file=sys.stderr)
        return 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:  # noqa: SIM105 - contextlib is one more import on the cold path
                stream.flush()
            except (OSError, ValueError):
                pass


def stage_working_dir(uri: str, target: str) -> None:
    """Copy the files under ``uri`` (an artifact-store URI) into ``target``."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.exists(path):
            raise RuntimeEnvError(f"runtime_env.working_dir_uri {uri!r} does not exist")
        if fs.isdir(path):
            fs.get(path.rstrip("/") + "/", target.rstrip("/") + "/", recursive=True)
        else:
            fs.get(path, os.path.join(target, os.path.basename(path.rstrip("/"))))
    except RuntimeEnvError:
        raise
    except Exception as err:
        raise RuntimeEnvError(f"copying runtime_env.working_dir_uri {uri!r} into the "
                              f"unit's working directory failed: {err}") from None


def working_dir_exists(uri: str) -> bool:
    """Whether ``uri`` names something in its store (checked by ``submit``)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(uri)
        return bool(fs.exists(path))
    except Exception:
        return False


def record_failure(directory: str, message: str) -> None:
    # The reason file is the executor's; first reason wins, as there.
    reason = os.path.join(directory, _REASON_FILE)
    if os.path.exists(reason):
        return
    tmp = os.path.join(directory, f".{_REASON_FILE}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"reason": "RuntimeEnvFailed", "message": message}, f)
        os.replace(tmp, reason)
    except OSError:
        pass  # a unit running as another user may not write there; the log says it


def _prepare(spec: Mapping[str, Any], directory: str) -> None:
    """Make the runtime environment ready; execs into a venv when it has packages."""
    runtime = spec.get("runtime") or {}
    uri = runtime.get("workingDirUri")
    if uri:
        stage_working_dir(str(uri), os.getcwd())
    packages = tuple(runtime.get("packages") or ())
    if not packages:
        return
    from pathlib import Path

    from ketch.core.executors._venvs import Requirements, VenvCache, VenvError

    reqs = Requirements(packages, tuple(runtime.get("indexUrls") or ()))
    try:
        venv = VenvCache(Path(runtime["venvRoot"])).ensure(reqs, log=sys.stdout)
    except VenvError as err:
        raise RuntimeEnvError(f"runtime_env.packages: {err}") from None
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    env[PREPARED_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    if "argv" in spec:
        argv = [str(a) for a in spec["argv"]]
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as err:
            print(f"ketch: cannot run {argv[0]!r}: {err}", file=sys.stderr)
            sys.exit(127)
    python = str(venv / "bin" / "python")
    os.execve(python, [python, *script_argv(directory)[1:]], env)


def script_argv(directory: str) -> list[str]:
    """The argv that runs this program for the unit in ``directory``. ``-P``: the
    script's own directory (this package's) must not land on sys.path."""
    return [sys.executable, "-P", os.path.abspath(__file__), str(directory)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -P .../_entry.py <unit dir>", file=sys.stderr)
        return 2
    directory = argv[0]
    with open(os.path.join(directory, ENTRY_FILE), encoding="utf-8") as f:
        spec = json.load(f)
    if not os.environ.get(PREPARED_ENV):
        try:
            _prepare(spec, directory)
        except RuntimeEnvError as err:
            print(f"ketch: {err}", file=sys.stderr)
            record_failure(directory, str(err))
            return 1
    if "argv" in spec:
        argv_ = [str(a) for a in spec["argv"]]
        try:
            os.execvp(argv_[0], argv_)
        except OSError as err:
            print(f"ketch: cannot run {argv_[0]!r}: {err}", file=sys.stderr)
            return 127
    # What ``python -m`` would give the unit: its cwd first on sys.path.
    sys.path.insert(0, os.getcwd())
    return call(spec["python"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
