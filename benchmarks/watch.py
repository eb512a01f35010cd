"""Idle watch streams: what they cost the server (issue 10.9).

Run from the repository root::

    .venv/bin/python benchmarks/watch.py                 # 300 idle watches
    .venv/bin/python benchmarks/watch.py --watches 100 --seconds 3

A real ``python -m ketch.cli server --port 0`` in a temporary ``KETCH_HOME`` (SQLite).
Measured twice, with no watch open and with ``--watches`` idle watch streams open on one
namespace (nothing is written meanwhile, so every stream is idle):

* the server's CPU (psutil ``cpu_percent`` over ``--seconds``; 100% is one core);
* the latency of ``GET .../jobs`` (an empty list), median and p95 of ``--lists`` requests
  made one after another.

Before one change feed per process, each stream polled the change log four times a second
and checked its connection: 300 idle streams took the server to ~95% CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

LIST = "/apis/ketch.dev/v1/namespaces/bench/jobs"


@contextlib.contextmanager
def server(home: Path) -> Iterator[tuple[str, psutil.Process]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["KETCH_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli", "server", "--port", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    info = home / "server.json"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(info.read_text())
                if data.get("pid") == proc.pid:
                    yield str(data["url"]), psutil.Process(proc.pid)
                    return
            if proc.poll() is not None:
                raise SystemExit(f"the server exited {proc.returncode}")
            time.sleep(0.1)
        raise SystemExit("the server did not start in 60 s")
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
        if proc.poll() is None:
            proc.kill()


def measure(url: str, proc: psutil.Process, seconds: float, lists: int) -> tuple[float, ...]:
    proc.cpu_percent(None)
    time.sleep(seconds)
    cpu = proc.cpu_percent(None)
    times = []
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get(LIST).raise_for_status()
        for _ in range(lists):
            start = time.perf_counter()
            http.get(LIST).raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return cpu, statistics.median(times), times[int(len(times) * 0.95) - 1]


class Watches(threading.Thread):
    """``count`` idle watch streams, opened and held on an event loop of their own."""

    def __init__(self, url: str, count: int) -> None:
        super().__init__(daemon=True)
        self.url, self.count = url, count
        self.opened = 0
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.count + 10)
        async with httpx.AsyncClient(base_url=self.url, timeout=None, limits=limits) as http:
            async def one() -> None:
                params = {"watch": "true", "timeoutSeconds": "3600", "resourceVersion": "1"}
                async with http.stream("GET", LIST, params=params) as resp:
                    resp.raise_for_status()
                    self.opened += 1
                    if self.opened == self.count:
                        self.ready.set()
                    async for _ in resp.aiter_lines():
                        pass

            tasks = [asyncio.create_task(one()) for _ in range(self.count)]
            while not self.stop.is_set():
                await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watches", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--lists", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp)) as (url, proc):
        with httpx.Client(base_url=url) as http:  # one object, so resourceVersion 1 exists
            http.post(LIST, json={"apiVersion": "ketch.dev/v1", "kind": "Job",
                                  "metadata": {"name": "one"},
                                  "spec": {"command": ["true"]}}).raise_for_status()
        time.sleep(2)  # its controller's writes settle
        idle = measure(url, proc, args.seconds, args.lists)
        watches = Watches(url, args.watches)
        watches.start()
        if not watches.ready.wait(120):
            raise SystemExit(f"only {watches.opened} of {args.watches} watches opened")
        time.sleep(1)
        busy = measure(url, proc, args.seconds, args.lists)
        watches.stop.set()
        watches.join(30)
    print(f"{'':24}{'server CPU %':>14}{'list median ms':>16}{'list p95 ms':>13}")
    for label, (cpu, med, p95) in (("no watch", idle), (f"{args.watches} idle watches", busy)):
        print(f"{label:24}{cpu:>14.1f}{med:>16.1f}{p95:>13.1f}")


if __name__ == "__main__":
    main()
