"""What ``ketch describe run NAME`` shows of a PipelineRun: its compiled IR summarized
(``-o yaml`` has all of it) and a task table in place of the status tree."""

from __future__ import annotations

from typing import Any

from ketch.cli.output import duration
from ketch.core.component import DescribeTable, DescribeView
from ketch.pipelines._kind import flatten_tasks

__all__ = ["RUN_VIEW"]


def _spec(spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    ir = out.pop("pipelineSpec", None)
    if isinstance(ir, dict):
        name = (ir.get("pipelineInfo") or {}).get("name", "")
        tasks = ((ir.get("root") or {}).get("dag") or {}).get("tasks") or {}
        out = {"pipeline": f"{name} (KFP IR, {len(tasks)} top-level tasks; "
                           "-o yaml shows it)", **out}
    return out


def _tasks(status: dict[str, Any]) -> list[DescribeTable]:
    rows = [[path, str(st.get("phase", "Pending")), str(st.get("attempts") or ""),
             duration(st.get("startTime"), st.get("completionTime")),
             "yes" if st.get("cached") else "", str(st.get("message") or "")]
            for path, st in flatten_tasks(status.get("tasks") or {}) if isinstance(st, dict)]
    if not rows:
        return []
    return [DescribeTable("Tasks", ("TASK", "PHASE", "ATTEMPTS", "DURATION", "CACHED",
                                    "MESSAGE"), rows, row_heading="Task")]


RUN_VIEW = DescribeView(spec=_spec, tables=_tasks, replaces=("tasks", "engine"))
