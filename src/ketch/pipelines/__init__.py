"""Pipelines: the KFP v2 language (``ketch.dsl``), its IR compiler, and the engine that
runs ``PipelineRun`` resources."""
