"""The pipelines component as the server assembles it (entry point ``ketch.components``)."""

from __future__ import annotations

from ketch.core.kinds import Component
from ketch.pipelines._catalog import EXPERIMENT, PIPELINE, PIPELINE_VERSION
from ketch.pipelines._catalog_controller import PipelineController, PipelineVersionController
from ketch.pipelines._controller import PipelineRunController
from ketch.pipelines._kind import PIPELINE_RUN
from ketch.pipelines._logs import read_run_log
from ketch.pipelines._recurring import RECURRING_RUN, RecurringRunController

__all__ = ["component"]

component = Component(
    name="pipelines",
    description="Pipelines: KFP v2 pipelines run as PipelineRuns, with caching and lineage",
    kinds=(PIPELINE_RUN, PIPELINE, PIPELINE_VERSION, EXPERIMENT, RECURRING_RUN),
    controllers=(PipelineRunController, PipelineController, PipelineVersionController,
                 RecurringRunController),
    log_readers={PIPELINE_RUN.key: read_run_log},
)
