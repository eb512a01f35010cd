"""Per-task overhead of a pipeline: ketch against kfp.local and a bare process spawn.

In one run, the same chain of trivial lightweight components (``x + 1``):

* **ketch**: the chain compiled by the real kfp 2.16.1 (one component spec and one
  executor per task, so the IR grows with the chain), then
  ``ketch run chain.yaml --no-cache --wait`` against a real server (SQLite, fresh
  KETCH_HOME), the whole command timed as a user sees it, for chains of 1, 20, 60, 100 and 120;
* **kfp.local** 2.16.1: ``kfp.local.init(runner=SubprocessRunner(use_venv=False))`` and
  the pipeline called in-process, chains of 1 and 20 (kfp runs in an isolated venv,
  the test suite's under ``~/.cache/ketch-test`` when it exists, since its pins clash
  with ours);
* **bare spawn**: a loop that starts ``python -c pass`` once per task.

Per-task overhead at length N is ``(T(chain of N) - T(chain of 1)) / (N - 1)`` for each,
so start-up costs cancel out; it should not grow with N (a step's cost is the step's,
not the run's). Each T is the fastest of ``--repeat`` runs (``--repeat-long`` for the longer chains;
the same statistic for every runner): a ``ketch run`` command's own start-up varies
by more than the whole difference a 20-step chain makes, and the minimum is what the
noise leaves alone; medians are printed beside it. It also times a 200-wide
``ParallelFor`` on ketch alone (kfp.local 2.16.1 cannot run ParallelFor).

    .venv/bin/python benchmarks/pipelines.py [--repeat 15] [--repeat-long 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

KFP_VERSION = "2.16.1"
CHAIN = '''
import os
from {pkg} import dsl

N = int(os.environ["CHAIN"])

@dsl.component
def step(x: int) -> int:
    return x + 1

@dsl.pipeline(name="chain")
def chain(x: int = 0) -> int:
    t = step(x=x)
    for _ in range(N - 1):
        t = step(x=t.output)
    return t.output
'''
WIDE = '''
from ketch import dsl

@dsl.component
def step(x: int) -> int:
    return x + 1

@dsl.pipeline(name="wide")
def wide():
    with dsl.ParallelFor(items=list(range(200))) as item:
        step(x=item)
'''
KFP_LOCAL = '''
import json, os, sys, time
sys.path.insert(0, os.environ["CHAIN_DIR"])
from kfp import local
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=os.environ["ROOT"])
import chain_kfp
start = time.perf_counter()
result = chain_kfp.chain(x=0).output
elapsed = time.perf_counter() - start
assert result == int(os.environ["CHAIN"]), result
print(json.dumps({"seconds": elapsed}))
'''
# Compiles the chain of each length in argv with kfp's compiler: chain-N.yaml.
KFP_COMPILE = '''
import importlib, os, sys
sys.path.insert(0, os.environ["CHAIN_DIR"])
from kfp import compiler
for n in sys.argv[1:]:
    os.environ["CHAIN"] = n
    sys.modules.pop("chain_kfp", None)
    module = importlib.import_module("chain_kfp")
    compiler.Compiler().compile(module.chain, os.path.join(os.environ["CHAIN_DIR"],
                                                           f"chain-{n}.yaml"))
'''
LENGTHS = (20, 60, 100, 120)


def kfp_python() -> Path:
    """A venv with kfp==2.16.1 (shared with the test suite's when it exists)."""
    for base in (Path.home() / ".cache" / "ketch-test", Path.home() / ".cache" / "ketch-bench"):
        python = base / f"kfp-{KFP_VERSION}" / "bin" / "python"
        if python.exists():
            return python
    venv = Path.home() / ".cache" / "ketch-bench" / f"kfp-{KFP_VERSION}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"kfp=={KFP_VERSION}"],
                   check=True)
    return venv / "bin" / "python"


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["KETCH_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli", "server", "--port", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = home / "server.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if info.exists() and json.loads(info.read_text()).get("pid") == proc.pid:
            return proc, env
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("ketch server did not start")


def kfp_compile(python: Path, work: Path, lengths: list[int]) -> dict[int, Path]:
    """The chain of each length, compiled to IR YAML by the real kfp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["CHAIN_DIR"] = str(work)
    done = subprocess.run([str(python), "-c", KFP_COMPILE, *map(str, lengths)], env=env,
                          capture_output=True, text=True, cwd=work, check=False)
    if done.returncode != 0:
        raise SystemExit(f"kfp compile failed:\n{done.stderr[-3000:]}")
    return {n: work / f"chain-{n}.yaml" for n in lengths}


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU time of the server process itself (its threads: the control plane), not of
    the steps, which run in forks of its worker."""
    times = proc.cpu_times()
    return float(times.user + times.system)


def time_ketch(path: Path, env: dict[str, str], server: psutil.Process | None = None,
               cpu: list[tuple[float, float]] | None = None) -> float:
    """Wall time of one ``ketch run --wait``; with ``cpu``, appends the server's and
    the command's CPU seconds (on a busy machine wall time mostly measures the others;
    CPU time is what this run itself cost)."""
    server_before = cpu_seconds(server) if server is not None else 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ketch.cli", "run", str(path), "--no-cache",
                           "--wait"], env=env, capture_output=True, text=True,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ketch run failed:\n{done.stderr[-2000:]}")
    if cpu is not None and server is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        cpu.append((cpu_seconds(server) - server_before, client))
    return elapsed


def time_kfp_local(python: Path, work: Path, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env.update(CHAIN=str(steps), CHAIN_DIR=str(work), ROOT=str(work / f"root-{steps}"))
    done = subprocess.run([str(python), "-c", KFP_LOCAL], env=env, capture_output=True,
                          text=True, cwd=work, check=False)
    if done.returncode != 0:
        raise SystemExit(f"kfp.local failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def time_bare(steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def per_task(t1: list[float], tn: list[float], n: int) -> float:
    return (min(tn) - min(t1)) / (n - 1)


def per_task_median(t1: list[float], tn: list[float], n: int) -> float:
    return (statistics.median(tn) - statistics.median(t1)) / (n - 1)


Times = dict[int, list[float]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15,
                        help="runs of the chains of 1 and 20 for ketch and the bare spawn")
    parser.add_argument("--repeat-long", type=int, default=3,
                        help="runs of the chain of 100 (start-up noise is small "
                             "beside their length)")
    parser.add_argument("--repeat-kfp", type=int, default=3,
                        help="runs per chain length for kfp.local (its chain of 20 takes "
                             "over ten seconds, and its noise is small beside 0.5 s a task)")
    parser.add_argument("--quick", action="store_true", help="one repetition each")
    parser.add_argument("--skip-kfp", action="store_true", help="leave kfp.local out")
    parser.add_argument("--skip-wide", action="store_true", help="leave the ParallelFor out")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    repeat_long = 1 if args.quick else args.repeat_long

    def runs(n: int) -> int:
        return repeat if n <= 20 else repeat_long

    python = kfp_python()
    with tempfile.TemporaryDirectory(prefix="ketch-bench-") as tmp:
        work = Path(tmp)
        (work / "chain_kfp.py").write_text(CHAIN.format(pkg="kfp"))
        (work / "wide.py").write_text(WIDE)
        chains = kfp_compile(python, work, [1, *LENGTHS])
        results: dict[str, Times] = {}

        proc, env = start_server(work / "home")
        try:
            time_ketch(chains[1], env)  # warm the server and its worker
            server = psutil.Process(proc.pid)
            cpu: dict[int, list[tuple[float, float]]] = {n: [] for n in (1, *LENGTHS)}
            results["ketch"] = {n: [time_ketch(chains[n], env, server, cpu[n])
                                    for _ in range(runs(n))] for n in (1, *LENGTHS)}
            wide = ([] if args.skip_wide
                    else [time_ketch(work / "wide.py", env) for _ in range(repeat)])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        results["bare spawn"] = {n: [time_bare(n) for _ in range(runs(n))]
                                 for n in (1, *LENGTHS)}
        if not args.skip_kfp:
            kfp_repeat = 1 if args.quick else args.repeat_kfp
            results["kfp.local"] = {n: [time_kfp_local(python, work, n)
                                        for _ in range(kfp_repeat)] for n in (1, 20)}

    print(f"chain of trivial components compiled by kfp {KFP_VERSION}, {os.cpu_count()} "
          f"cores; best of {repeat} (chain of 100: of {repeat_long}; kfp.local: of "
          f"{1 if args.quick else args.repeat_kfp}); per task = (T(N) - T(1)) / (N - 1)")
    header = "".join(f"{f'T({n})':>9}" for n in (1, *LENGTHS))
    per = "".join(f"{f'/task@{n}':>11}" for n in LENGTHS)
    print(f"{'runner':<12}{header}{per}   (medians)")
    overhead: dict[str, dict[int, float]] = {}
    for name, times in results.items():
        lengths = [n for n in LENGTHS if n in times]
        overhead[name] = {n: per_task(times[1], times[n], n) for n in lengths}
        row = "".join(f"{min(times[n]):8.3f}s" if n in times else f"{'':>9}"
                      for n in (1, *LENGTHS))
        row += "".join(f"{overhead[name][n] * 1000:9.1f}ms" if n in times else f"{'':>11}"
                       for n in LENGTHS)
        medians = " ".join(f"{per_task_median(times[1], times[n], n) * 1000:.1f}"
                           for n in lengths)
        print(f"{name:<12}{row}   ({medians} ms)")
    ketch = {n: max(v, 1e-4) for n, v in overhead["ketch"].items()}
    if "kfp.local" in overhead:
        print(f"kfp.local / ketch per-task overhead at 20: "
              f"{overhead['kfp.local'][20] / ketch[20]:.1f}x (goal >= 20x)")
    bare = overhead["bare spawn"]
    print("ketch / bare spawn per-task overhead: " + ", ".join(
        f"{ketch[n] / bare[n]:.2f}x at {n}" for n in LENGTHS) + " (goal <= 1x at each)")
    def cpu_per_step(n: int, which: int) -> float:
        return (min(c[which] for c in cpu[n]) - min(c[which] for c in cpu[1])) / (n - 1)

    print("ketch CPU per step, (CPU(N) - CPU(1)) / (N - 1), least of the runs: " + ", ".join(
        f"server {cpu_per_step(n, 0) * 1000:.1f} ms + ketch run "
        f"{cpu_per_step(n, 1) * 1000:.1f} ms at {n}" for n in LENGTHS))
    if not wide:
        return
    print(f"ParallelFor of 200 on ketch: {min(wide):.2f}s end to end, best of {len(wide)} "
          f"(median {statistics.median(wide):.2f}s, {min(wide) / 200 * 1000:.1f} ms per "
          "iteration)")


if __name__ == "__main__":
    main()
