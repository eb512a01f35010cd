"""Python units on the local executor: submit-to-exit cost, warm vs cold vs a bare spawn.

Run from the repository root::

    .venv/bin/python benchmarks/python_units.py            # 40 rounds
    .venv/bin/python benchmarks/python_units.py --rounds 200

Each round, interleaved so all four see the same machine load:

* warm: ``submit`` of a ``PythonEntry`` unit (``json.dumps({})``, a trivial call) on a
  ``LocalExecutor`` with its warm pool, until the executor's exit subscriber hears
  that it ended (the worker forks the unit, the child writes its exit file);
* cold: the same unit on an executor with ``warm_pool=False`` (the ``sh`` exit
  wrapper, then a fresh ``python -m ketch.core.executors._entry``);
* command: a command unit ``python -c pass`` on the cold executor (what the
  executor itself costs around a spawn, without ``_entry``);
* bare: ``subprocess.run([python, "-c", "pass"])``, the floor any spawned Python pays.

Every unit is polled (Succeeded) and finalized before the next round. The first
rounds (the worker's start) are dropped as warm-up. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ketch.core.artifacts import ArtifactStore
from ketch.core.executors import PythonEntry, UnitState, WorkUnit
from ketch.core.executors.local import LocalExecutor

WARMUP = 3


def _one(ex: LocalExecutor, unit_id: str, ended: dict[str, threading.Event],
         command: bool = False) -> float:
    event = ended.setdefault(unit_id, threading.Event())
    started = time.perf_counter()
    handle = ex.submit(WorkUnit(unit_id=unit_id, command=[sys.executable, "-c", "pass"])
                       if command else
                       WorkUnit(unit_id=unit_id, python=PythonEntry("json", "dumps")))
    if not event.wait(30):
        raise SystemExit(f"unit {unit_id} did not end in 30 s")
    took = time.perf_counter() - started
    status = ex.poll(handle)
    if status.state is not UnitState.SUCCEEDED:
        raise SystemExit(f"unit {unit_id} ended {status}")
    ex.finalize(handle)
    ex.forget(handle)
    return took


def _bare() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ketch-bench-units-") as tmp:
        store = ArtifactStore(str(Path(tmp) / "artifacts"))
        warm_ex = LocalExecutor(Path(tmp) / "warm" / "runs", store, cpus=4)
        cold_ex = LocalExecutor(Path(tmp) / "cold" / "runs", store, cpus=4, warm_pool=False)
        ended: dict[str, threading.Event] = {}

        def hear(unit_id: str) -> None:
            ended.setdefault(unit_id, threading.Event()).set()

        warm_ex.subscribe(hear)
        cold_ex.subscribe(hear)
        warm: list[float] = []
        cold: list[float] = []
        bare: list[float] = []
        command: list[float] = []
        try:
            for i in range(args.rounds + WARMUP):
                w, c = _one(warm_ex, f"w{i}", ended), _one(cold_ex, f"c{i}", ended)
                k, b = _one(cold_ex, f"k{i}", ended, command=True), _bare()
                if i >= WARMUP:
                    warm.append(w)
                    cold.append(c)
                    command.append(k)
                    bare.append(b)
        finally:
            warm_ex.close()
            cold_ex.close()
    mw, mc, mk, mb = (statistics.median(x) * 1000 for x in (warm, cold, command, bare))
    print(f"python units, submit to exit, median of {args.rounds} rounds (ms):")
    print(f"  warm (forked)          {mw:7.2f}")
    print(f"  cold (fresh _entry)    {mc:7.2f}")
    print(f"  command unit -c pass   {mk:7.2f}   (the executor's own cost, no _entry)")
    print(f"  bare python -c pass    {mb:7.2f}")
    print(f"  warm / bare  {mw / mb:5.2f}x    cold / bare  {mc / mb:5.2f}x    "
          f"cold / warm  {mc / mw:5.2f}x")


if __name__ == "__main__":
    main()
