"""Executors: run work units on this machine (``local``) or elsewhere."""

from __future__ import annotations

from ketch.core.executors._base import (
    Executor,
    Handle,
    PythonEntry,
    ResourceRequest,
    RuntimeEnv,
    UnitState,
    UnitStatus,
    WorkUnit,
)

__all__ = ["Executor", "Handle", "PythonEntry", "ResourceRequest", "RuntimeEnv", "UnitState",
           "UnitStatus", "WorkUnit"]
