"""Jobs: the generic ``Job`` kind (``ketch.dev/v1``) that runs a command to completion."""

from __future__ import annotations

from ketch.core.kinds import Component
from ketch.jobs._controller import JobController
from ketch.jobs._kind import JOB, JobResources, JobSpec, JobStatus
from ketch.jobs._logs import read_job_log

__all__ = ["JOB", "JobController", "JobResources", "JobSpec", "JobStatus", "component"]

component = Component(
    name="jobs",
    description="Run a command or Python function to completion, with retries and deadlines",
    kinds=(JOB,),
    controllers=(JobController,),
    log_readers={JOB.key: read_job_log},
)
