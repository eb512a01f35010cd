"""Where a PipelineRun's ``pipelineRef`` leads: an uploaded ``PipelineVersion``'s IR
(the catalog resolves it; see ``_catalog.resolve_pipeline_ref``)."""

from __future__ import annotations

from ketch.pipelines._catalog import resolve_pipeline_ref

__all__ = ["resolve_pipeline_ref"]
