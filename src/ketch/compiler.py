"""``from ketch import compiler``: ``compiler.Compiler().compile(pipeline, 'p.yaml')``
as with ``kfp.compiler``."""

from __future__ import annotations

from ketch.pipelines.compiler import Compiler, compile_pipeline, load_pipeline_file, write_ir

__all__ = ["Compiler", "compile_pipeline", "load_pipeline_file", "write_ir"]
