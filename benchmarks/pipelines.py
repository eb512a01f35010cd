"""Per-task overhead of a pipeline: ketch against kfp.local and a bare process spawn.

In one run, the same chain of trivial lightweight components (``x + 1``):

* **ketch**: ``ketch run chain.py --no-cache --wait`` against a real server (SQLite,
  fresh KETCH_HOME), the whole command timed as a user sees it;
* **kfp.local** 2.16.1: ``kfp.local.init(runner=SubprocessRunner(use_venv=False))`` and
  the pipeline called in-process (in an isolated venv under ``~/.cache/ketch-bench``,
  since kfp's pins clash with ours);
* **bare spawn**: a loop that starts ``python -c pass`` once per task.

Per-task overhead is ``(T(chain of 20) - T(chain of 1)) / 19`` for each, so start-up
costs cancel out. Each T is the fastest of ``--repeat`` runs (the same statistic for every
runner): a ``ketch run`` command's own start-up varies by more than the whole difference a
20-step chain makes, and the minimum is what the noise leaves alone; medians are printed
beside it. It also times a 200-wide ``ParallelFor``
on ketch alone (kfp.local 2.16.1 cannot run ParallelFor).

    .venv/bin/python benchmarks/pipelines.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def time_ketch(path: Path, env: dict[str, str], steps: int | None) -> float:
    run_env = dict(env, CHAIN=str(steps or 1))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ketch.cli", "run", str(path), "--no-cache",
                           "--wait"], env=run_env, capture_output=True, text=True,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ketch run failed:\n{done.stderr[-2000:]}")
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


def per_task(t1: list[float], t20: list[float]) -> float:
    return (min(t20) - min(t1)) / 19


def per_task_median(t1: list[float], t20: list[float]) -> float:
    return (statistics.median(t20) - statistics.median(t1)) / 19


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15,
                        help="runs per chain length for ketch and the bare spawn")
    parser.add_argument("--repeat-kfp", type=int, default=3,
                        help="runs per chain length for kfp.local (its chain of 20 takes "
                             "over ten seconds, and its noise is small beside 0.5 s a task)")
    parser.add_argument("--quick", action="store_true", help="one repetition, no kfp.local "
                        "chain of 20 warm-up")
    parser.add_argument("--skip-kfp", action="store_true", help="leave kfp.local out")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    with tempfile.TemporaryDirectory(prefix="ketch-bench-") as tmp:
        work = Path(tmp)
        (work / "chain_ketch.py").write_text(CHAIN.format(pkg="ketch"))
        (work / "chain_kfp.py").write_text(CHAIN.format(pkg="kfp"))
        (work / "wide.py").write_text(WIDE)
        results: dict[str, tuple[list[float], list[float]]] = {}

        proc, env = start_server(work / "home")
        try:
            time_ketch(work / "chain_ketch.py", env, 1)  # warm the server and its worker
            results["ketch"] = ([time_ketch(work / "chain_ketch.py", env, 1)
                                 for _ in range(repeat)],
                                [time_ketch(work / "chain_ketch.py", env, 20)
                                 for _ in range(repeat)])
            wide = [time_ketch(work / "wide.py", env, None) for _ in range(repeat)]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        results["bare spawn"] = ([time_bare(1) for _ in range(repeat)],
                                 [time_bare(20) for _ in range(repeat)])
        if not args.skip_kfp:
            python = kfp_python()
            kfp_repeat = 1 if args.quick else args.repeat_kfp
            results["kfp.local"] = ([time_kfp_local(python, work, 1)
                                     for _ in range(kfp_repeat)],
                                    [time_kfp_local(python, work, 20)
                                     for _ in range(kfp_repeat)])

    print(f"chain of trivial components, {os.cpu_count()} cores, best of {repeat} "
          f"(kfp.local: of {1 if args.quick else args.repeat_kfp})")
    print(f"{'runner':<12} {'T(1)':>9} {'T(20)':>9} {'per task':>10} {'(medians)':>11}")
    overhead = {}
    for name, (t1, t20) in results.items():
        overhead[name] = per_task(t1, t20)
        print(f"{name:<12} {min(t1):8.3f}s {min(t20):8.3f}s "
              f"{overhead[name] * 1000:8.1f}ms {per_task_median(t1, t20) * 1000:9.1f}ms")
    ketch = max(overhead["ketch"], 1e-4)
    if "kfp.local" in overhead:
        print(f"kfp.local / ketch per-task overhead: {overhead['kfp.local'] / ketch:.1f}x "
              "(goal >= 20x)")
    print(f"ketch / bare spawn per-task overhead: {ketch / overhead['bare spawn']:.2f}x "
          "(goal <= 1x)")
    print(f"ParallelFor of 200 on ketch: {statistics.median(wide):.2f}s end to end "
          f"({statistics.median(wide) / 200 * 1000:.1f} ms per iteration)")


if __name__ == "__main__":
    main()
