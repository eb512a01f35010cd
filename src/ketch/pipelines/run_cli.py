"""``ketch run FILE``: compile (or load) a pipeline, submit it, and optionally follow it.

FILE is a ``.py`` holding ``@dsl.pipeline`` functions (``from kfp import dsl`` or
``from ketch import dsl``) or IR YAML/JSON from any KFP v2 compiler. ``-p key=value``
values parse as JSON when they can (``-p items=[1,2]``), else as strings. With
``--wait``, task progress goes to stderr and the exit status is 0 only when the run
succeeded; ``-o json|yaml`` prints the run resource (the finished one with ``--wait``)
on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["parse_parameters", "run"]


def parse_parameters(pairs: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x", "c=[1,2]"]`` -> ``{"a": 1, "b": "x", "c": [1, 2]}``."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="-p")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    return values


class _Progress:
    """One stderr line per task state change: ``  train  Running``."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.started = time.monotonic()

    def __call__(self, run: Any) -> None:
        from ketch.pipelines._kind import flatten_tasks

        changes = []
        for path, st in flatten_tasks(run.status.get("tasks") or {}):
            phase = str(st.get("phase", "Pending"))
            label = f"{phase} (cached)" if st.get("cached") else phase
            if self.seen.get(path) != label:
                self.seen[path] = label
                if phase != "Pending":
                    extra = f": {st['message'].splitlines()[0]}" if phase == "Failed" \
                        and st.get("message") else ""
                    changes.append((phase == "Running", f"  {path:<40} {label}{extra}"))
        # What ended before what started, when one update carries both.
        for _, line in sorted(changes, key=lambda change: change[0]):
            typer.echo(line, err=True)


def run(file: Annotated[Path, typer.Argument(help="A .py with @dsl.pipeline functions, or "
                                                   "compiled IR (.yaml/.json).")],
        pipeline: Annotated[str | None, typer.Option(
            "--pipeline", help="Which pipeline of a .py holding several.")] = None,
        param: Annotated[list[str] | None, typer.Option(
            "--param", "-p", help="key=value (JSON when it parses, else a string); "
                                  "repeatable.")] = None,
        experiment: Annotated[str | None, typer.Option(help="Experiment to file the run "
                                                             "under.")] = None,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step, even "
                                                "those with a cached result.")] = False,
        install_packages: Annotated[bool, typer.Option(
            "--install-packages", help="Install each step's packages_to_install into a "
                                       "cached virtualenv (default: ketch's environment)."
        )] = False,
        wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends; "
                                           "exit 0 only if it succeeded.")] = False,
        output: Annotated[str | None, typer.Option("--output", "-o",
                                                   help="json or yaml")] = None,
        name: Annotated[str | None, typer.Option(help="Run name (default: generated).")] = None,
        namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
        timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 86400.0,
        ) -> None:
    """Run a pipeline: a .py with @dsl.pipeline functions or a compiled IR file."""
    from ketch import Client
    from ketch.core.errors import KetchError
    from ketch.pipelines.compiler import load_pipeline_file

    if output not in (None, "json", "yaml"):
        raise typer.BadParameter("expected json or yaml", param_hint="-o")
    arguments = parse_parameters(param or [])
    try:
        ir = load_pipeline_file(file, pipeline)
        with Client() as client:
            created = client.run_pipeline_spec(
                ir, arguments=arguments, run_name=name, experiment_name=experiment,
                namespace=namespace, enable_caching=False if no_cache else None,
                install_packages=install_packages)
            if not wait:
                _emit(created, output)
                if output is None:
                    typer.echo(f"pipelinerun/{created.name} created")
                return
            typer.echo(f"pipelinerun/{created.name} created", err=True)
            finished = client.wait_for_run_completion(created.name, timeout=timeout,
                                                      namespace=namespace,
                                                      on_change=_Progress())
    except (KetchError, TimeoutError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    phase = finished.status.get("phase")
    message = finished.status.get("message")
    typer.echo(f"pipelinerun/{finished.name} {phase}" + (f": {message}" if message and
                                                         phase != "Succeeded" else ""),
               err=True)
    _emit(finished, output)
    if phase != "Succeeded":
        raise typer.Exit(1)


def _emit(obj: Any, output: str | None) -> None:
    if output is None:
        return
    from ketch.cli.output import dump

    sys.stdout.write(dump(obj.to_wire(), output) + "\n")
    sys.stdout.flush()
