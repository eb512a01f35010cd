"""Tuning: Katib's Experiments, Trials and Suggestions on Optuna's samplers.

The component's declaration is ``ketch.tuning.component``; this package's own name
is what a trial imports: ``report_metrics`` (Katib's Push collector) costs nothing
to import, since it only prints a line the trial controller reads back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

__all__ = ["report_metrics"]

# The same prefix as ketch.tuning._metrics.PUSH_PREFIX (kept apart: that module is
# the controller's, this one is imported by every trial).
_PUSH_PREFIX = "#ketch-metrics "


def report_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Report metrics from inside a trial (Katib's ``Push`` collector; kubeflow-katib's
    ``report_metrics``): one line on the trial's output, read when the trial ends."""
    values = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"metric {name!r}: a number is required, got {value!r}")
        values[str(name)] = float(value)
    record: dict[str, object] = {"metrics": values}
    if step is not None:
        record["step"] = int(step)
    sys.stdout.write(_PUSH_PREFIX + json.dumps(record) + "\n")
    sys.stdout.flush()
