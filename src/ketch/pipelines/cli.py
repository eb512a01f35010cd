"""``ketch compile FILE [--pipeline NAME] -o pipeline.yaml``: a pipeline file to KFP IR.

Imports nothing heavy at module level, so ``ketch --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["compile_command"]


def compile_command(
        file: Annotated[str, typer.Argument(
            help="A .py holding @dsl.pipeline functions, or IR YAML/JSON to check.")],
        output: Annotated[str, typer.Option(
            "--output", "-o", help="Where to write the IR (.yaml, or .json).")],
        pipeline: Annotated[str | None, typer.Option(
            "--pipeline", help="Which pipeline, when the file holds several.")] = None,
) -> None:
    """Compile a pipeline to KFP's IR YAML (runs on ketch and on a KFP cluster)."""
    from ketch.core.errors import KetchError
    from ketch.pipelines.compiler import load_pipeline_file, write_ir

    try:
        spec = load_pipeline_file(file, pipeline)
        write_ir(spec, output)
    except KetchError as err:
        typer.echo(f"error: {err.message}", err=True)
        raise typer.Exit(1) from None
    except OSError as err:
        typer.echo(f"error: {output}: {err.strerror}", err=True)
        raise typer.Exit(1) from None
    tasks = len(spec.get("root", {}).get("dag", {}).get("tasks", {}))
    typer.echo(f"pipeline {spec['pipelineInfo']['name']} ({tasks} top-level tasks) "
               f"written to {output}")
