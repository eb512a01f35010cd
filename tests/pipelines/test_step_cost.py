"""A pipeline step costs what the step does, not what the run holds.

The run's body grows with the pipeline (kfp writes a component and an executor per task,
and the task tree gains an entry per task), so the controller must not read, decode or
re-parse the whole run on every step: it reads the run once, keeps what it wrote while
its resourceVersion is still the stored one, and parses the IR once per generation. The
counts below (not timings) are what the benchmark's per-step cost rests on; before, the
run was read in full on every step and counted as many times as there were steps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from ketch import dsl
from ketch.core.config import Settings
from ketch.core.kinds import KindInfo
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.pipelines import _controller
from ketch.pipelines._ir import PipelineSpec
from ketch.pipelines._kind import PIPELINE_RUN, TERMINAL_PHASES
from ketch.pipelines.compiler import compile_pipeline
from ketch.pipelines.component import component

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STEPS = 12


@dsl.component
def add_one(x: int) -> int:
    return x + 1


@dsl.pipeline(name="chain")
def chain(x: int = 0) -> int:
    task = add_one(x=x)
    for _ in range(STEPS - 1):
        task = add_one(x=task.output)
    return task.output


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Runtime,
                                                                             Counter[str]]]:
    """A real control plane (SQLite, local processes) whose full reads of PipelineRuns
    and IR parses are counted; the real store and parser do the work."""
    rt = Runtime(Settings.from_env({"KETCH_HOME": str(tmp_path / "home"), "KETCH_CPUS": "2"}),
                 [component])
    counts: Counter[str] = Counter()
    store_get = rt.store.get

    def get(info: KindInfo, namespace: str | None, name: str) -> Resource:
        if info.key == PIPELINE_RUN.key:
            counts["get"] += 1

        return store_get(info, namespace, name)

    parse = _controller.parse_pipeline_spec

    def parse_counted(doc: Any) -> PipelineSpec:
        counts["parse"] += 1
        return parse(doc)

    monkeypatch.setattr(rt.store, "get", get)
    monkeypatch.setattr(_controller, "parse_pipeline_spec", parse_counted)
    rt.start()
    yield rt, counts
    rt.stop()


def test_a_run_is_read_and_parsed_once_not_once_per_step(
        counted: tuple[Runtime, Counter[str]]) -> None:
    rt, counts = counted
    store_get = type(rt.store).get.__get__(rt.store)  # uncounted, for the test's own polls
    ResourceService(rt).create(PIPELINE_RUN, {
        "apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": "chain"},
        "spec": {"pipelineSpec": compile_pipeline(chain), "caching": False}}, "default")

    def finished() -> Resource | None:
        run = store_get(PIPELINE_RUN, "default", "chain")
        return run if run.status.get("phase") in TERMINAL_PHASES else None

    run = wait_for(finished, timeout=180, message="the run to finish")
    assert isinstance(run, Resource)
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    assert run.status["outputs"]["parameters"]["Output"] == STEPS
    assert len(run.status["tasks"]) == STEPS
    assert counts["parse"] == 1
    # A full read when the run is first seen, again after a conflict or a pass that
    # wrote nothing (a step still running at its poll), and as it ends; never per step.
    assert counts["get"] <= STEPS // 2, counts
