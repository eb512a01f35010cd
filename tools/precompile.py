"""Byte-compile what the platform imports to start, once, at install time.

``make install`` installs wheels with ``--no-compile`` (byte-compiling every file of
every wheel, torch's thousands included, was most of the install's time), and Python
writes the bytecode of what a program imports on first use instead. Where the
environment says ``PYTHONDONTWRITEBYTECODE=1`` (CI machines, some containers) it never
does, so every ``ketch up``, every CLI call and every executor unit compiled SQLAlchemy,
FastAPI, pydantic and the rest from source: ``ketch up`` to ``/readyz`` took 3.6 s
instead of 1.5 s. This compiles exactly that set: the modules the server, the CLI and
the units' entry points import, found by importing them, plus ketch's own sources.

Run by ``make install``; safe to run again (up-to-date bytecode is left as it is).
"""

from __future__ import annotations

import compileall
import importlib
import sys
import time
from pathlib import Path

# What a process of the platform imports to start, beyond the components' declarations:
# the server and its HTTP stack, the CLI, and the entry points of executor units
# (pipeline steps, model replicas, fronts, the unit wrapper).
ENTRY_MODULES = (
    "ketch.cli._app", "ketch.server.app", "ketch.server.run", "ketch.client",
    "uvicorn", "uvicorn.config", "uvicorn.server", "uvicorn.main", "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto", "uvicorn.loops.auto", "uvicorn.loops.asyncio",
    "alembic.context", "alembic.runtime.migration", "alembic.script", "alembic.command",
    "alembic.ddl.sqlite", "alembic.ddl.postgresql", "psycopg",
    "ketch.core.executors._entry", "ketch.core.executors._warm",
    "ketch.pipelines._unit", "ketch.pipelines.executor",
    "ketch.serving.modelserver", "ketch.serving._front",
)


def _import_everything() -> list[str]:
    """Import the entry modules and every component's declared parts; what failed."""
    from ketch.core.component import load_components, resolve

    failed: list[str] = []
    for name in ENTRY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as err:  # an optional extra not installed: nothing to compile
            failed.append(f"{name}: {err}")
    for component in load_components():
        for part in ("kinds", "controllers", "log_readers", "schema", "routers"):
            getattr(component, part)
        for verb in component.cli:
            resolve(verb.target, f"component {component.name} verb {verb.name}")
        if component.sdk is not None:
            resolve(component.sdk.target, f"component {component.name} facade")
    return failed


def main() -> int:
    started = time.perf_counter()
    failed = _import_everything()
    files = {Path(str(module.__file__)) for module in list(sys.modules.values())
             if str(getattr(module, "__file__", None)).endswith(".py")}
    ok = all([compileall.compile_file(str(path), quiet=2) for path in sorted(files)])
    source = Path(importlib.import_module("ketch").__file__ or "").parent
    ok = compileall.compile_dir(str(source), quiet=2) and ok
    print(f"precompile: {len(files)} imported modules and {source} byte-compiled in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    for line in failed:
        print(f"precompile: skipped {line}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
