"""How objects are printed: one-line table cells, and describe's single full message."""

from __future__ import annotations

from typing import Any

from ketch.cli._describe import describe
from ketch.cli.output import cell, table
from ketch.client import KindRef
from ketch.core.resources import Resource

TRACEBACK = ("step failed (exit status 1):\nTraceback (most recent call last):\n"
             '  File "train.py", line 3, in train\n    fit()\nValueError: bad rows\n')
RUNS = KindRef(group="pipelines.ketch.dev", version="v1", kind="PipelineRun",
               plural="pipelineruns", columns=({"name": "PHASE", "path": "status.phase"},
                                               {"name": "MESSAGE", "path": "status.message"}))


def run(**status: Any) -> Resource:
    return Resource.model_validate({
        "apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
        "metadata": {"name": "r", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"pipelineSpec": {"pipelineInfo": {"name": "p"},
                                  "root": {"dag": {"tasks": {"train": {}}}},
                                  "deploymentSpec": {"executors": {}}}},
        "status": status})


def test_a_cell_is_the_last_line_cut_to_width() -> None:
    assert cell(TRACEBACK) == "ValueError: bad rows"
    assert cell("x" * 100) == "x" * 77 + "..."
    assert cell(None) == "" and cell(0) == "0"


def test_a_table_row_stays_one_line() -> None:
    text = table(RUNS, [run(phase="Failed", message=f"task train: {TRACEBACK}")],
                 wide=False, all_namespaces=False)
    header, row = text.splitlines()
    assert header.split()[:3] == ["NAME", "PHASE", "MESSAGE"]
    assert row.split()[:5] == ["r", "Failed", "ValueError:", "bad", "rows"]


def test_describe_prints_a_repeated_traceback_once_and_no_ir() -> None:
    failed = {"type": "Failed", "status": "True", "reason": "Failed",
              "message": f"task train: {TRACEBACK}"}
    text = describe(run(phase="Failed", message=f"task train: {TRACEBACK}",
                        conditions=[failed],
                        tasks={"train": {"phase": "Failed", "attempts": 3, "message": TRACEBACK,
                                         "startTime": "2026-01-01T00:00:00Z",
                                         "completionTime": "2026-01-01T00:02:05Z"}}))
    assert text.count("Traceback (most recent call last)") == 1
    assert "deploymentSpec" not in text
    assert "  pipeline: p (KFP IR, 1 top-level tasks; -o yaml shows it)" in text
    lines = text.splitlines()
    tasks = lines.index("Tasks:")
    assert lines[tasks + 2].split() == ["train", "Failed", "3", "2m5s", "ValueError:", "bad",
                                        "rows"]
    assert lines[lines.index("Message:") + 1] == "  task train: step failed (exit status 1):"
