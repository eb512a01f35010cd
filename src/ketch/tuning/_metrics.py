"""Metrics without a sidecar: read from what a trial printed, after it ends.

``StdOut`` (Katib's default) matches each line of the trial's log against the filter
(Katib's default ``name=value`` pattern, or the experiment's ``metricsFormat``);
``Push`` reads the lines ``ketch.tuning.report_metrics`` printed; ``File`` reads the
file the trial wrote (Katib's path, mapped to a file of the trial's own, which its
wrapper copies into the log when the trial ends: ``file_wrapper``). The log is the
executor's, kept in the artifact store once the unit ends, so a trial that ends
before anyone reads its metrics loses none (Katib's #2181).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["DEFAULT_FILE", "DEFAULT_FILTER", "FILE_PREFIX", "PUSH_PREFIX", "Observed",
           "file_wrapper", "observe", "parse"]

# Katib's default metrics format (pkg/metricscollector/v1beta1/common/const.go).
DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
# What report_metrics prints, one JSON object per line after it.
PUSH_PREFIX = "#ketch-metrics "
# Each line of a File collector's file, as the trial's wrapper copies it into the log.
FILE_PREFIX = "#ketch-file "
# Katib's default File collector path.
DEFAULT_FILE = "/var/log/katib/metrics.log"

# ``sh -c WRAPPER FILE CMD...``: run CMD, then copy FILE into the log line by line
# (prefixed), remove its directory and exit with CMD's code. FILE's directory is made
# first, so a trial writing Katib's path finds it there.
_WRAPPER = ('f=$0; mkdir -p "${f%/*}"; "$@"; code=$?; '
            'if [ -f "$f" ]; then while IFS= read -r line || [ -n "$line" ]; do '
            f'printf "%s%s\\n" "{FILE_PREFIX}" "$line"; done < "$f"; fi; '
            'rm -rf "${f%/*}"; exit $code')


def file_wrapper(command: Sequence[str], katib_path: str, own_path: str) -> list[str]:
    """``command`` with Katib's metrics path replaced by ``own_path`` (in its
    arguments), wrapped to copy that file into the log when it ends."""
    replaced = [part.replace(katib_path, own_path) for part in command]
    return ["/bin/sh", "-c", _WRAPPER, own_path, *replaced]


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
          push: bool = False, file: str | None = None) -> Observed:
    """The metrics ``names`` found in ``lines``: Push lines when ``push``; the File
    collector's lines when ``file`` is ``TEXT`` or ``JSON``; else lines matching
    ``filters`` (Katib's default when empty)."""
    observed = Observed()
    wanted = set(names)
    patterns = [re.compile(f) for f in (filters or (DEFAULT_FILTER,))]
    for raw in lines:
        line = raw
        if line.startswith(PUSH_PREFIX):
            if push:
                _push_line(line[len(PUSH_PREFIX):], wanted, observed)
            continue
        if file is not None:
            if not line.startswith(FILE_PREFIX):
                continue
            line = line[len(FILE_PREFIX):]
            if file == "JSON":
                _json_line(line, wanted, observed)
                continue
        elif push or line.startswith(FILE_PREFIX):
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


def _json_line(text: str, wanted: set[str], observed: Observed) -> None:
    """Katib's JSON format: one object a line, metric names to numbers (or numeric
    strings), beside a ``timestamp``."""
    try:
        record = json.loads(text)
    except ValueError:
        return
    if not isinstance(record, dict):
        return
    for name, value in record.items():
        if name in wanted and not isinstance(value, bool):
            try:
                observed.add(name, float(value))
            except (TypeError, ValueError):
                continue


def observe(text: str, names: Sequence[str], filters: Sequence[str] = (),
            push: bool = False, file: str | None = None) -> Observed:
    return parse(text.splitlines(), names, filters, push, file)
