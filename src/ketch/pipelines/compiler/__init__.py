"""Compile ``@dsl.pipeline`` functions to KFP's IR YAML, and load pipeline files."""

from __future__ import annotations

from ketch.pipelines.compiler._compiler import Compiler, compile_pipeline, write_ir
from ketch.pipelines.compiler._loader import load_pipeline_file

__all__ = ["Compiler", "compile_pipeline", "load_pipeline_file", "write_ir"]
