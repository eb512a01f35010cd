"""The root ``tests/conftest.py`` helpers (``wait_for``, ``start_server``, ...) for
tests in this directory, whose own ``conftest.py`` takes the module name
``conftest`` once pytest has loaded it (``from conftest import wait_for`` then finds
the wrong file). Loaded once from its path under a name of its own."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "ketch_tests_root_conftest"


def _load() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(
        _NAME, Path(__file__).resolve().parents[1] / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


_root = _load()
ServerProcess = _root.ServerProcess
new_postgres_database = _root.new_postgres_database
start_server = _root.start_server
wait_for = _root.wait_for

__all__ = ["ServerProcess", "new_postgres_database", "start_server", "wait_for"]
