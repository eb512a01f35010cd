"""ketch core benchmark: idle memory, start-up time and submit-to-start latency.

Run from the repository root::

    .venv/bin/python benchmarks/core.py            # full run (50 jobs, 5 start runs)
    .venv/bin/python benchmarks/core.py --quick    # CI smoke (10 jobs, 2 start runs)
    .venv/bin/python benchmarks/core.py --jobs 200 --strict

Every server is a real ``python -m ketch.cli up`` subprocess with its own
temporary ``KETCH_HOME`` (``KETCH_*`` variables of the caller are dropped, so
``KETCH_CPUS`` and friends take their defaults), stopped with SIGTERM (then
SIGKILL) at the end. What is measured:

1. Idle server RSS: ``ketch up --port 0``, ready when its ``server.json`` names
   it, then ~2 s idle; RSS of the process and all its children (psutil).
2. ``ketch up`` -> first ``200`` from ``GET /readyz``: from just before
   ``Popen`` to the first 200, polling a free port picked here and passed as
   ``--port``. Fresh homes (the first start also creates the SQLite schema) and
   restarts on an existing home.
3. Submit -> process start: ``t0 = time.time()`` just before ``client.create``
   of a Job whose command prints ``time.time()`` as its first statement; the
   latency is the printed time minus ``t0``. Jobs run one at a time (wait for
   ``Succeeded``, read the log, then submit the next). Beside it, in the same
   loop (interleaved, so both see the same machine load): a bare spawn of the
   same command (``time.time()`` before ``Popen`` to the child's printed time)
   and the duration of ``subprocess.run([python, "-c", "pass"])``. Python's
   interpreter start-up is inside every one of these numbers.

Timestamps that cross processes use ``time.time()`` (the same clock in both);
durations inside this process use ``time.perf_counter()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

RSS_GOAL_MB = 150.0
READY_GOAL_S = 2.0
RATIO_GOAL = 2.0
IDLE_SECONDS = 2.0
WARMUP_JOBS = 2
SETTLE_SECONDS = 0.05  # after each job, so the next one is submitted to an idle server
READY_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.01

PRINT_TIME = "import time,sys; sys.stdout.write(repr(time.time()))"


# --------------------------------------------------------------------- helpers


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100) of ``values``."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ketch_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["KETCH_HOME"] = str(home)
    return env


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS bytes of ``pid`` and all its descendants, number of processes)."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total, len(procs)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    home: Path
    url: str
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"


@dataclass
class Servers:
    """Every server this run started, so all of them are stopped at the end."""

    started: list[Server] = field(default_factory=list)

    def launch(self, home: Path, port: int) -> Server:
        home.mkdir(parents=True, exist_ok=True)
        log_path = home / "up.out"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ketch.cli", "up", "--port", str(port)],
                env=ketch_env(home), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        server = Server(proc, home, f"http://127.0.0.1:{port}", log_path)
        self.started.append(server)
        return server

    @staticmethod
    def stop(server: Server, grace: float = 15.0) -> None:
        proc = server.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def stop_all(self) -> None:
        for server in reversed(self.started):
            with contextlib.suppress(Exception):
                self.stop(server)


def check_alive(server: Server) -> None:
    if server.proc.poll() is not None:
        raise RuntimeError(f"ketch up exited with {server.proc.returncode}:\n"
                           f"{server.log_tail()}")


@dataclass(frozen=True)
class StartTiming:
    readyz_s: float  # Popen -> first 200 from /readyz
    server_json_s: float  # Popen -> server.json first seen (what CLI discovery waits for)


def start_and_time(servers: Servers, home: Path) -> tuple[Server, StartTiming]:
    """Start ``ketch up --port <free>`` and time it until ``/readyz`` answers 200."""
    port = free_port()
    info = home / "server.json"
    with httpx.Client(timeout=1.0) as http:
        t0 = time.perf_counter()
        server = servers.launch(home, port)
        json_seen: float | None = None
        while True:
            now = time.perf_counter()
            if json_seen is None and info.exists():
                json_seen = now
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{server.url}/readyz").status_code == 200:
                    ready = time.perf_counter()
                    break
            check_alive(server)
            if now - t0 > READY_TIMEOUT_S:
                raise RuntimeError(f"ketch up not ready in {READY_TIMEOUT_S:g}s:\n"
                                   f"{server.log_tail()}")
            time.sleep(POLL_INTERVAL_S)
    if json_seen is None:
        json_seen = ready if info.exists() else float("nan")
    return server, StartTiming(ready - t0, json_seen - t0)


def start_port0(servers: Servers, home: Path) -> Server:
    """``ketch up --port 0``; ready once its server.json names this process."""
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "up.out"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ketch.cli", "up", "--port", "0"],
                                env=ketch_env(home), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = Server(proc, home, "", log_path)
    servers.started.append(server)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((home / "server.json").read_text())
            if isinstance(data, dict) and data.get("pid") == proc.pid:
                server.url = str(data["url"])
                return server
        check_alive(server)
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"ketch up --port 0 wrote no server.json in {READY_TIMEOUT_S:g}s")


# ---------------------------------------------------------------- measurements


@dataclass(frozen=True)
class RssResult:
    rss_mb: float
    processes: int


def measure_idle_rss(servers: Servers, root: Path) -> RssResult:
    server = start_port0(servers, root / "rss-home")
    time.sleep(IDLE_SECONDS)
    check_alive(server)
    rss, count = tree_rss(server.proc.pid)
    servers.stop(server)
    return RssResult(rss / 1e6, count)


@dataclass(frozen=True)
class StartResults:
    fresh: list[StartTiming]
    restart: list[StartTiming]


def measure_startup(servers: Servers, root: Path, runs: int) -> StartResults:
    """Interleaved (fresh i, then a restart on home i), so that drift in machine
    load hits both cases alike."""
    fresh: list[StartTiming] = []
    restart: list[StartTiming] = []
    for i in range(runs):
        home = root / f"start-{i}"
        server, timing = start_and_time(servers, home)
        fresh.append(timing)
        servers.stop(server)
        server, timing = start_and_time(servers, home)  # the schema exists now
        restart.append(timing)
        servers.stop(server)
    return StartResults(fresh, restart)


@dataclass
class LatencyResults:
    ketch_ms: list[float] = field(default_factory=list)  # submit -> process start
    create_ms: list[float] = field(default_factory=list)  # client.create round trip
    done_ms: list[float] = field(default_factory=list)  # submit -> Succeeded seen
    bare_spawn_ms: list[float] = field(default_factory=list)  # Popen -> first statement
    bare_run_ms: list[float] = field(default_factory=list)  # subprocess.run(python -c pass)
    warmup_ms: list[float] = field(default_factory=list)  # excluded from the above
    rss_after_mb: float = 0.0


def bare_spawn_ms(command: list[str]) -> float:
    t0 = time.time()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bare spawn exited {proc.returncode}")
    return (float(out) - t0) * 1000.0


def bare_run_ms() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - t0) * 1000.0


def job_doc(name: str, command: list[str]) -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"command": command}}


def run_one_job(client: Any, name: str, command: list[str]) -> tuple[float, float, float]:
    """(submit -> start, create round trip, submit -> Succeeded seen), in ms."""
    t0 = time.time()
    client.create(job_doc(name, command))
    t_created = time.time()
    client.wait("jobs", name, condition="Succeeded", timeout=JOB_TIMEOUT_S)
    t_done = time.time()
    out = b"".join(client.logs("jobs", name)).decode().strip()
    try:
        t_start = float(out)
    except ValueError:
        raise RuntimeError(f"job {name} printed {out!r}, not a time") from None
    return ((t_start - t0) * 1000.0, (t_created - t0) * 1000.0, (t_done - t0) * 1000.0)


def measure_latency(servers: Servers, root: Path, jobs: int,
                    progress: Callable[[str], None]) -> LatencyResults:
    from ketch import Client

    command = [sys.executable, "-c", PRINT_TIME]
    server, _ = start_and_time(servers, root / "jobs-home")
    results = LatencyResults()
    with Client(server.url, autostart=False) as client:
        for i in range(WARMUP_JOBS):
            bare_spawn_ms(command)
            bare_run_ms()
            results.warmup_ms.append(run_one_job(client, f"warmup-{i}", command)[0])
            time.sleep(SETTLE_SECONDS)
        for i in range(jobs):
            # Interleaved, so that drift in machine load hits all three alike.
            results.bare_spawn_ms.append(bare_spawn_ms(command))
            results.bare_run_ms.append(bare_run_ms())
            latency, create, done = run_one_job(client, f"bench-{i}", command)
            results.ketch_ms.append(latency)
            results.create_ms.append(create)
            results.done_ms.append(done)
            time.sleep(SETTLE_SECONDS)
            if (i + 1) % 10 == 0:
                progress(f"  {i + 1}/{jobs} jobs")
        check_alive(server)
        results.rss_after_mb = tree_rss(server.proc.pid)[0] / 1e6
    servers.stop(server)
    return results


# ------------------------------------------------------------------- reporting


def stats_row(label: str, values: list[float], unit: str) -> str:
    digits = 2 if unit == "s" else 1
    cells = " ".join(f"{v:8.{digits}f}" for v in
                     (median(values), percentile(values, 90), min(values), max(values)))
    return f"  {label:<38} {cells}  {unit:<2}  (n={len(values)})"


def stats_header() -> str:
    return f"  {'':<38} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=50, help="measured jobs (default 50)")
    parser.add_argument("--start-runs", type=int, default=5,
                        help="start-up runs per case (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke: 10 jobs, 2 start runs")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when any goal is missed")
    args = parser.parse_args(argv)
    jobs = 10 if args.quick else args.jobs
    start_runs = 2 if args.quick else args.start_runs
    if jobs < 1 or start_runs < 1:
        parser.error("--jobs and --start-runs must be at least 1")

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    load_before = os.getloadavg()[0]
    py = platform.python_version()
    cores = os.cpu_count() or 1
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="ketch-bench-") as tmp:
        root = Path(tmp)
        try:
            progress(f"[1/3] idle server RSS ({IDLE_SECONDS:g} s idle)")
            rss = measure_idle_rss(servers, root)
            progress(f"[2/3] ketch up -> /readyz ({start_runs} fresh + {start_runs} restarts)")
            start = measure_startup(servers, root, start_runs)
            progress(f"[3/3] submit -> process start ({WARMUP_JOBS} warm-up + {jobs} jobs)")
            lat = measure_latency(servers, root, jobs, progress)
        finally:
            servers.stop_all()

    load_after = os.getloadavg()[0]
    fresh_s = median([t.readyz_s for t in start.fresh])
    restart_s = median([t.readyz_s for t in start.restart])
    ketch_med = median(lat.ketch_ms)
    ketch_p90 = percentile(lat.ketch_ms, 90)
    spawn_med = median(lat.bare_spawn_ms)
    run_med = median(lat.bare_run_ms)
    ratio = ketch_med / spawn_med
    ok_rss = rss.rss_mb < RSS_GOAL_MB
    ok_fresh = fresh_s < READY_GOAL_S
    ok_restart = restart_s < READY_GOAL_S
    ok_ratio = ratio < RATIO_GOAL

    print()
    print("Idle server RSS (ketch up --port 0, ready via server.json, then "
          f"{IDLE_SECONDS:g} s idle)")
    print(f"  {'RSS, process + children':<38} {rss.rss_mb:8.1f} MB  "
          f"({rss.processes} process{'es' if rss.processes != 1 else ''})")
    print(f"  {'RSS of the job server after the jobs':<38} {lat.rss_after_mb:8.1f} MB  "
          f"(job server, {WARMUP_JOBS + jobs} jobs done)")
    print()
    print("ketch up -> first 200 from /readyz (seconds)")
    print(stats_header())
    print(stats_row("fresh home (creates schema)", [t.readyz_s for t in start.fresh], "s"))
    print(stats_row("restart on existing home", [t.readyz_s for t in start.restart], "s"))
    print(stats_row("fresh home: server.json seen", [t.server_json_s for t in start.fresh],
                    "s"))
    print()
    print("Submit -> process start (milliseconds; jobs one at a time, "
          f"{WARMUP_JOBS} warm-up jobs excluded)")
    print(stats_header())
    print(stats_row("bare Popen -> first statement", lat.bare_spawn_ms, "ms"))
    print(stats_row("bare subprocess.run(python -c pass)", lat.bare_run_ms, "ms"))
    print(stats_row("ketch submit -> first statement", lat.ketch_ms, "ms"))
    print(stats_row("  of which client.create round trip", lat.create_ms, "ms"))
    print(stats_row("ketch submit -> Succeeded seen", lat.done_ms, "ms"))
    warmup = ", ".join(f"{v:.1f}" for v in lat.warmup_ms)
    print(f"  {'warm-up jobs (first after start-up)':<38} {warmup} ms")
    print(f"  {'ratio ketch / bare spawn (medians)':<38} {ratio:8.2f}x")
    print(f"  {'ratio ketch / bare run (medians)':<38} {ketch_med / run_med:8.2f}x")
    print(f"  {'overhead ketch - bare spawn (medians)':<38} {ketch_med - spawn_med:8.1f} ms")
    if len(lat.ketch_ms) >= 20:
        head, tail = median(lat.ketch_ms[:10]), median(lat.ketch_ms[-10:])
        print(f"  {'trend: first 10 / last 10 jobs (median)':<38} {head:8.1f} / {tail:.1f} ms")

    print()
    print(f"ketch core benchmark (python {'.'.join(py.split('.')[:2])}, {cores} cores"
          f"{', quick' if args.quick else ''}; load average {load_before:.2f} before, "
          f"{load_after:.2f} after)")
    print(f"idle server RSS              {rss.rss_mb:7.1f} MB   goal < {RSS_GOAL_MB:g} MB   "
          f"{verdict(ok_rss)}")
    print(f"up -> /readyz (fresh home)   {fresh_s:7.2f} s    goal < {READY_GOAL_S:g} s      "
          f"{verdict(ok_fresh)}")
    print(f"up -> /readyz (restart)      {restart_s:7.2f} s    goal < {READY_GOAL_S:g} s      "
          f"{verdict(ok_restart)}")
    print(f"submit -> process start      {ketch_med:7.1f} ms   p90 {ketch_p90:.1f} ms   "
          f"bare spawn {spawn_med:.1f} ms   bare run {run_med:.1f} ms   "
          f"ratio {ratio:.2f}x   goal < {RATIO_GOAL:g}x   {verdict(ok_ratio)}")
    missed = not all((ok_rss, ok_fresh, ok_restart, ok_ratio))
    return 1 if args.strict and missed else 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM to the benchmark still runs the cleanup (the ``finally`` blocks)."""

    def handler(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    with _sigterm_as_interrupt():
        sys.exit(main())
