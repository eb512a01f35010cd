"""Metrics without a sidecar: read from what a trial printed, after it ends.

``StdOut`` (Katib's default) matches each line of the trial's log against the filter
(Katib's default ``name=value`` pattern, or the experiment's ``metricsFormat``);
``Push`` reads the lines ``ketch.tuning.report_metrics`` printed. The log is the
executor's, kept in the artifact store once the unit ends, so a trial that ends
before anyone reads its metrics loses none (Katib's #2181).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["DEFAULT_FILTER", "PUSH_PREFIX", "Observed", "observe", "parse"]

# Katib's default metrics format (pkg/metricscollector/v1beta1/common/const.go).
DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
# What report_metrics prints, one JSON object per line after it.
PUSH_PREFIX = "#ketch-metrics "


@dataclass
class Observed:
    """Every value of each metric a trial reported, in order, with its step."""

    values: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)

    def add(self, name: str, value: float, step: int | None = None) -> None:
        if math.isfinite(value):
            self.values.setdefault(name, []).append((step, value))

    def metrics(self, names: Sequence[str]) -> list[dict[str, str]]:
        """Katib's ``observation.metrics``: min, max and latest of each metric."""
        found = []
        for name in names:
            seen = [v for _, v in self.values.get(name, [])]
            if seen:
                found.append({"name": name, "min": _text(min(seen)), "max": _text(max(seen)),
                              "latest": _text(seen[-1])})
        return found


def _text(value: float) -> str:
    return repr(value)


def parse(lines: Iterable[str], names: Sequence[str], filters: Sequence[str] = (),
          push: bool = False) -> Observed:
    """The metrics ``names`` found in ``lines``: Push lines when ``push``, else lines
    matching ``filters`` (Katib's default when empty)."""
    observed = Observed()
    wanted = set(names)
    patterns = [re.compile(f) for f in (filters or (DEFAULT_FILTER,))]
    for line in lines:
        if line.startswith(PUSH_PREFIX):
            if push:
                _push_line(line[len(PUSH_PREFIX):], wanted, observed)
            continue
        if push:
            continue
        for pattern in patterns:
            for match in pattern.finditer(line):
                if len(match.groups()) < 2:
                    continue
                name, value = match.group(1), match.group(2)
                if name in wanted and value:
                    try:
                        observed.add(name, float(value))
                    except ValueError:
                        continue
    return observed


def _push_line(text: str, wanted: set[str], observed: Observed) -> None:
    try:
        record = json.loads(text)
    except ValueError:
        return
    if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        return
    step = record.get("step")
    for name, value in record["metrics"].items():
        if name in wanted and isinstance(value, int | float) and not isinstance(value, bool):
            observed.add(name, float(value), step if isinstance(step, int) else None)


def observe(text: str, names: Sequence[str], filters: Sequence[str] = (),
            push: bool = False) -> Observed:
    return parse(text.splitlines(), names, filters, push)
