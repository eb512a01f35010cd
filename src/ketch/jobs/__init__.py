"""Jobs: the generic ``Job`` kind (``ketch.dev/v1``) that runs a command to completion.

This module is the Jobs component's declaration (entry point ``ketch.jobs:component``):
its whole slice in one place, as references, so the CLI and ``ketch.Client`` read it
without importing the controller or pydantic. The kind's models and the controller
load on first use of the names below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ketch.core.component import Component, DashboardRoute, Facade

if TYPE_CHECKING:
    from ketch.jobs._controller import JobController
    from ketch.jobs._kind import JOB, JobResources, JobSpec, JobStatus

__all__ = ["JOB", "JobController", "JobResources", "JobSpec", "JobStatus", "component"]

component = Component(
    name="jobs",
    description="Run a command or Python function to completion, with retries and deadlines",
    kinds=("ketch.jobs._kind:JOB",),
    controllers=("ketch.jobs._controller:JobController",),
    log_readers={"jobs.ketch.dev": "ketch.jobs._logs:read_job_log"},
    pods={"jobs.ketch.dev": "ketch.jobs._pods:job_pods"},
    sdk=Facade("jobs", "ketch.jobs.client:JobsClient"),
    dashboard=(DashboardRoute("/jobs", "Jobs", ("jobs",)),),
)

_LAZY = {"JOB": "ketch.jobs._kind", "JobResources": "ketch.jobs._kind",
         "JobSpec": "ketch.jobs._kind", "JobStatus": "ketch.jobs._kind",
         "JobController": "ketch.jobs._controller"}


def __getattr__(name: str) -> Any:
    # Heavy names on first use only: the declaration above must stay import-cheap.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ketch.jobs' has no attribute {name!r}")
