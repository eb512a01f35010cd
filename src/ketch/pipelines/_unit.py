"""A pipeline step inside its executor unit: what runs where the executor puts it.

The control plane submits every step as a core executor unit (ADR 007). A lightweight
Python step, and any step whose artifacts move through a remote store, is this module's
:func:`run_step` with a JSON argument; the local backend may start it from a warm
interpreter that has imported :mod:`ketch.pipelines.executor` already. A container
step on a local store is a plain command unit and never comes here.

The argument (plain JSON, it may travel to another host)::

    {"executorInput": {...},                       # KFP's ExecutorInput
     "python": {"source": "...", "function": "f"}  # a lightweight component, or
     "argv": [...], "runtime": {...},              # a command (placeholders unresolved
                                                   #   when staged: the mount root is ours)
     "store": "s3://bucket/prefix" | null}         # remote: stage through it

With a remote ``store`` the step works on local copies under a mount root in a scratch
directory of its own (``_staging``); its executor output and output parameter files,
which the executor input names by their URIs under the run's artifact root, are written
locally and uploaded after the outputs, so the control plane reads them through the
artifact store and never from this host's disk. The unit's exit code is the step's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from ketch.pipelines._packages import NOT_INSTALLED_ENV, not_installed_hint

__all__ = ["run_step"]


def run_step(argument: Mapping[str, Any]) -> int:
    """Run one step as ``argument`` describes; its exit status (0 when it succeeded)."""
    store = argument.get("store")
    scratch = tempfile.mkdtemp(prefix="ketch-step-") if store else None
    try:
        if scratch is None:
            return _guarded(lambda: _run(argument, argument["executorInput"], None))
        from ketch.pipelines import _staging
        from ketch.pipelines.dsl._artifacts import MOUNT_ROOT_ENV

        mount_root = os.path.join(scratch, "mnt")
        os.environ[MOUNT_ROOT_ENV] = mount_root
        inputs, metadata = _staging.localize_metadata(argument["executorInput"], mount_root)
        plan = {"mountRoot": mount_root, "store": str(store), "executorInput": inputs,
                "metadata": metadata}
        return _guarded(lambda: _staging.staged(plan, lambda: _run(argument, inputs,
                                                                     mount_root)))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _run(argument: Mapping[str, Any], inputs: dict[str, Any], mount_root: str | None) -> int:
    python = argument.get("python")
    if python is not None:
        from ketch.pipelines.executor import install_kfp_alias, run_lightweight

        install_kfp_alias()
        run_lightweight(str(python["source"]), str(python["function"]), inputs)
        return 0
    from ketch.pipelines._inputs import resolve_placeholders
    from ketch.pipelines._staging import run_command

    argv = list(argument["argv"])
    if argument.get("runtime") is not None:
        # Resolved here: artifact paths are the local copies under this unit's mount root.
        argv = resolve_placeholders(argv, inputs, dict(argument["runtime"]),
                                    mount_root=mount_root)
    return run_command(argv)


def _guarded(run: Any) -> int:
    """``run()``'s status; an exception is status 1 with its traceback in the log, and
    an ImportError of a step whose declared packages were not installed says so last
    (the engine's failure message starts from the log's last line)."""
    try:
        return int(run())
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except Exception as error:  # the user's step failed: its traceback is its log
        import traceback

        traceback.print_exc()
        declared = os.environ.get(NOT_INSTALLED_ENV)
        if isinstance(error, ImportError) and declared:
            print(not_installed_hint(error, declared), file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
