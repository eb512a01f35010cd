"""The pipelines component as the server assembles it (entry point ``ketch.components``)."""

from __future__ import annotations

from ketch.core.kinds import Component
from ketch.pipelines._kind import PIPELINE_RUN

__all__ = ["component"]

component = Component(
    name="pipelines",
    description="Pipelines: KFP v2 pipelines run as PipelineRuns, with caching and lineage",
    kinds=(PIPELINE_RUN,),
)
