"""The ray executor beside plain Ray and beside the local executor, in one run.

Run from the repository root (it starts its own three-node Ray cluster on this
machine, a head with 1 CPU and two workers with 4 each, and stops it after)::

    .venv/bin/python benchmarks/ray.py              # 40 rounds, a 20-task fan-out
    .venv/bin/python benchmarks/ray.py --rounds 100

1. **Per-task overhead**, rounds interleaved so all three see the same load: a
   trivial Python unit (``json.dumps({})``, 1 CPU) submitted to the ray executor
   until its exit subscriber hears it ended; the same unit on the local executor
   (its warm pool); and a plain ``ray.get(f.remote())`` of a 1-CPU task, the floor a
   Ray user pays. Also the whole cycle a controller runs (submit, exit, poll,
   finalize, forget) for both executors. Medians, and the ratios.
2. **A 20-task fan-out** on the three nodes: 20 Python units of 0.5 s (1 CPU each)
   through the ray executor (submitted while they fit, the rest as slots free, as
   the controllers do) against 20 plain Ray tasks of the same function. Wall time
   from the first submit to the last end, median of 3, and the ratio.

Goals (issue 13): per task at most 1.5x plain Ray; fan-out at most 1.2x.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named after the package it measures: its own directory, first on
# sys.path when run as a script, must not shadow `import ray` (hence the imports
# below this line, E402).
# ruff: noqa: E402
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any

import psutil

from ketch.core.artifacts import ArtifactStore
from ketch.core.executors import Executor, PythonEntry, ResourceRequest, UnitState, WorkUnit
from ketch.core.executors.local import LocalExecutor
from ketch.core.executors.ray import RayExecutor

RAY = str(Path(sys.executable).with_name("ray"))
WARMUP = 3
SLEEP = 0.5
FANOUT = 20
MODULE = "def nap(arg):\n    import time\n    time.sleep(arg['seconds'])\n"


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


def start_cluster(root: Path) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    common = ["--object-store-memory=100000000", "--disable-usage-stats"]
    _run([RAY, "start", "--head", f"--port={port}", "--num-cpus=1", f"--temp-dir={root}/h",
          "--include-dashboard=false", *common])
    address = f"127.0.0.1:{port}"
    for name in ("a", "b"):
        _run([RAY, "start", f"--address={address}", "--num-cpus=4", f"--temp-dir={root}/{name}",
              *common])
    return address


def stop_cluster(root: Path) -> None:
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(root) in part for part in process.info["cmdline"] or ()):
                process.send_signal(signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


class Heard:
    """Exit events by unit id, from an executor's subscriber."""

    def __init__(self, ex: Executor) -> None:
        self.events: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        ex.subscribe(self._hear)

    def event(self, unit_id: str) -> threading.Event:
        with self.lock:
            return self.events.setdefault(unit_id, threading.Event())

    def _hear(self, unit_id: str) -> None:
        self.event(unit_id).set()


def one_unit(ex: Executor, heard: Heard, unit_id: str) -> tuple[float, float]:
    """(submit to exit heard, the whole cycle through forget) of one trivial unit."""
    event = heard.event(unit_id)
    started = time.perf_counter()
    handle = ex.submit(WorkUnit(unit_id=unit_id, python=PythonEntry("json", "dumps")))
    if not event.wait(30):
        raise SystemExit(f"unit {unit_id} did not end in 30 s")
    heard_at = time.perf_counter()
    status = ex.poll(handle)
    if status.state is not UnitState.SUCCEEDED:
        raise SystemExit(f"unit {unit_id} ended {status}")
    ex.finalize(handle)
    ex.forget(handle)
    return heard_at - started, time.perf_counter() - started


def fan_out_ketch(ex: RayExecutor, heard: Heard, modules: Path, tag: str) -> float:
    units = [WorkUnit(unit_id=f"fan-{tag}-{i}", env={"PYTHONPATH": str(modules)},
                      resources=ResourceRequest(cpu=1),
                      python=PythonEntry("bench_units", "nap", {"seconds": SLEEP}))
             for i in range(FANOUT)]
    started = time.perf_counter()
    handles: dict[str, Any] = {}
    waiting = list(units)
    while waiting or any(not heard.event(u).is_set() for u in handles):
        while waiting and ex.fits(waiting[0].resources):
            unit = waiting.pop(0)
            handles[unit.unit_id] = ex.submit(unit)
        ended = [u for u, h in handles.items() if heard.event(u).is_set()]
        for unit_id in ended:
            handle = handles.pop(unit_id)
            if ex.poll(handle).state is not UnitState.SUCCEEDED:
                raise SystemExit(f"{unit_id} failed")
            ex.finalize(handle)
            ex.forget(handle)
        if not ended:
            # Wake on the next exit (no polling of the cluster in between).
            pending = [heard.event(u) for u in handles]
            if pending:
                _wait_any(pending, 0.05)
        if not waiting and not handles:
            break
    return time.perf_counter() - started


def _wait_any(events: list[threading.Event], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.is_set() for e in events):
            return
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kb-", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="ketch-bench-ray-"))
    try:
        address = start_cluster(root)
        import ray

        ray.init(address=address, namespace="ketch", log_to_driver=False,
                 configure_logging=False)
        modules = work / "modules"
        modules.mkdir()
        (modules / "bench_units.py").write_text(MODULE)
        sys.path.insert(0, str(modules))
        artifacts = ArtifactStore(str(work / "artifacts"))
        ray_ex = RayExecutor(artifacts, address=address)
        local_ex = LocalExecutor(work / "runs", artifacts, cpus=4)
        ray_heard, local_heard = Heard(ray_ex), Heard(local_ex)

        @ray.remote(num_cpus=1)
        def noop() -> str:
            return json.dumps({})

        @ray.remote(num_cpus=1)
        def nap(seconds: float) -> None:
            time.sleep(seconds)

        results: dict[str, list[float]] = {"ray executor": [], "ray executor cycle": [],
                                           "local executor": [], "local executor cycle": [],
                                           "plain ray task": []}
        for i in range(args.rounds + WARMUP):
            heard, cycle = one_unit(ray_ex, ray_heard, f"r{i}")
            lheard, lcycle = one_unit(local_ex, local_heard, f"l{i}")
            started = time.perf_counter()
            ray.get(noop.remote())
            plain = time.perf_counter() - started
            if i >= WARMUP:
                for key, value in (("ray executor", heard), ("ray executor cycle", cycle),
                                   ("local executor", lheard),
                                   ("local executor cycle", lcycle), ("plain ray task", plain)):
                    results[key].append(value)
        med = {k: statistics.median(v) * 1000 for k, v in results.items()}
        print(f"per-task, median of {args.rounds} rounds (ms):")
        for key, value in med.items():
            print(f"  {key:24s} {value:8.2f}")
        versus_ray = med["ray executor"] / med["plain ray task"]
        versus_local = med["ray executor"] / med["local executor"]
        print(f"  ray executor / plain ray task:   {versus_ray:.2f}x  (goal <= 1.5x)")
        print(f"  ray executor / local executor:   {versus_local:.2f}x")
        print(f"  cycle, ray / local:              "
              f"{med['ray executor cycle'] / med['local executor cycle']:.2f}x")

        ketch_walls, plain_walls = [], []
        for attempt in range(3):
            ketch_walls.append(fan_out_ketch(ray_ex, ray_heard, modules, str(attempt)))
            started = time.perf_counter()
            ray.get([nap.remote(SLEEP) for _ in range(FANOUT)])
            plain_walls.append(time.perf_counter() - started)
        ketch_wall, plain_wall = statistics.median(ketch_walls), statistics.median(plain_walls)
        print(f"fan-out of {FANOUT} tasks of {SLEEP} s on 3 nodes (9 CPUs), median of 3 (s):")
        print(f"  ray executor   {ketch_wall:6.2f}")
        print(f"  plain ray      {plain_wall:6.2f}")
        print(f"  ratio          {ketch_wall / plain_wall:.2f}x  (goal <= 1.2x)")
        ray_ex.close()
        local_ex.close()
    finally:
        with contextlib.suppress(Exception):
            import ray

            ray.shutdown()
        stop_cluster(root)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
