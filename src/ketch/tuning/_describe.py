"""What ``ketch describe experiment NAME`` shows: the best trial so far (its
parameters and metrics) and the trials counted by state, in place of Katib's
per-state name lists and counters."""

from __future__ import annotations

from typing import Any

from ketch.core.component import DescribeTable, DescribeView

__all__ = ["EXPERIMENT_VIEW"]

_STATES = (("Succeeded", "trialsSucceeded", "succeededTrialList"),
           ("Running", "trialsRunning", "runningTrialList"),
           ("Pending", "trialsPending", "pendingTrialList"),
           ("Failed", "trialsFailed", "failedTrialList"),
           ("MetricsUnavailable", "trialMetricsUnavailable", "metricsUnavailableTrialList"),
           ("EarlyStopped", "trialsEarlyStopped", "earlyStoppedTrialList"),
           ("Killed", "trialsKilled", "killedTrialList"))


def _tables(status: dict[str, Any]) -> list[DescribeTable]:
    tables = []
    best = status.get("currentOptimalTrial") or {}
    if best.get("bestTrialName"):
        rows = [["trial", str(best["bestTrialName"])]]
        rows += [[f"parameter {p['name']}", str(p["value"])]
                 for p in best.get("parameterAssignments") or []]
        rows += [[f"metric {m['name']}", f"min {m.get('min')}, max {m.get('max')}, "
                  f"latest {m.get('latest')}"]
                 for m in (best.get("observation") or {}).get("metrics") or []]
        tables.append(DescribeTable("Best trial", ("FIELD", "VALUE"), rows))
    counts = [[state, str(status.get(count) or 0),
               ", ".join((status.get(names) or [])[:5])
               + (" ..." if len(status.get(names) or []) > 5 else "")]
              for state, count, names in _STATES if status.get(count)]
    if counts:
        tables.append(DescribeTable(f"Trials ({status.get('trials', 0)})",
                                    ("STATE", "COUNT", "TRIALS"), counts))
    return tables


EXPERIMENT_VIEW = DescribeView(tables=_tables, replaces=(
    "currentOptimalTrial", *(names for _, _, names in _STATES),
    *(count for _, count, _ in _STATES)))
