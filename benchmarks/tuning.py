"""Per-trial overhead of a tuning run: ketch beside Optuna's own loops and Ray Tune.

Run from the repository root::

    .venv/bin/python benchmarks/tuning.py               # 100 TPE trials each
    .venv/bin/python benchmarks/tuning.py --trials 200

Every contender runs the same budget of TPE trials (seeded) of a trivial objective,
one trial at a time:

1. **ketch**: a Katib Experiment through the control plane (the Experiment and Trial
   controllers, the study's journal in SQLite, the local executor), each trial a
   process that prints ``loss=<value>``, read from its log. From the create to the
   Experiment's Succeeded.
2. **Optuna + subprocess**: ``study.optimize`` whose objective runs the same script
   with ``subprocess.run`` and parses its output: what a user writes by hand to give
   each trial a process of its own. The issue's goal: ketch at most 1.2x this.
3. **Optuna in-process**: the objective as a function call, the floor.
4. **Ray Tune** (when ``ray[tune]`` imports): ``Tuner`` with ``OptunaSearch`` (TPE)
   and a function trainable. The goal: ketch at least 10x less overhead per trial.

Printed: seconds per trial and the ratios; the per-trial overhead is a contender's
time per trial less the in-process floor's.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ray.py is named after the package Ray Tune needs: this directory, first
# on sys.path when run as a script, must not shadow `import ray` (E402 below).
# ruff: noqa: E402
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import math
import os
import subprocess
import tempfile
import time
import warnings
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "import sys\nx = float(sys.argv[1])\nprint(f'loss={(x - 1.5) ** 2!r}')\n"


def _quiet_optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    return optuna


def run_ketch(trials: int) -> float:
    sys.path.insert(0, str(ROOT / "src"))
    from ketch.core.config import Settings
    from ketch.core.runtime import Runtime
    from ketch.core.service import ResourceService
    from ketch.tuning._kinds import EXPERIMENT
    from ketch.tuning.component import component

    home = Path(tempfile.mkdtemp(prefix="ketch-bench-tuning-"))
    settings = Settings.from_env({"KETCH_HOME": str(home / "home"),
                                  "KETCH_DATABASE_URL": f"sqlite:///{home / 'k.db'}"})
    rt = Runtime(settings, [component])
    rt.start()
    body = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": "bench"},
            "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"},
                     "algorithm": {"algorithmName": "tpe", "algorithmSettings": [
                         {"name": "random_state", "value": "1"}]},
                     "parallelTrialCount": 1, "maxTrialCount": trials,
                     "parameters": [{"name": "x", "parameterType": "double",
                                     "feasibleSpace": {"min": "-5", "max": "5"}}],
                     "trialTemplate": {
                         "trialParameters": [{"name": "x", "reference": "x"}],
                         "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {
                             "template": {"spec": {"containers": [{
                                 "name": "training-container", "image": "python",
                                 "command": [sys.executable, "-c", SCRIPT,
                                             "${trialParameters.x}"],
                                 "resources": {"requests": {"cpu": "0"}}}]}}}}}}}
    try:
        start = time.perf_counter()
        ResourceService(rt).create(EXPERIMENT, body)
        while True:
            status = rt.store.get(EXPERIMENT, "default", "bench").status
            if any(c["type"] in ("Succeeded", "Failed") and c["status"] == "True"
                   for c in status.get("conditions") or []):
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        assert status["trialsSucceeded"] == trials, status
        return elapsed
    finally:
        rt.stop()


def run_optuna_subprocess(trials: int) -> float:
    optuna = _quiet_optuna()

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", -5, 5)
        out = subprocess.run([sys.executable, "-c", SCRIPT, repr(x)], capture_output=True,
                             text=True, check=True).stdout
        return float(out.strip().removeprefix("loss="))

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, multivariate=False))
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - start


def run_optuna_inprocess(trials: int) -> float:
    optuna = _quiet_optuna()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, multivariate=False))
    start = time.perf_counter()
    study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1.5) ** 2, n_trials=trials)
    return time.perf_counter() - start


def ray_tune_python() -> str | None:
    """A Python with Ray Tune: this one if it imports ``ray.tune``, else a venv of
    ``ray[tune]`` (the Ray ketch pins) and Optuna, built once under
    ~/.cache/ketch-bench (Ray Tune's pandas and pyarrow stay out of ketch's venv)."""
    probe = "import ray.tune, optuna"
    here = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    if here.returncode == 0:
        return sys.executable
    venv = Path.home() / ".cache" / "ketch-bench" / "ray-tune-2.60.0"
    python = venv / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", probe],
                                             capture_output=True, check=False).returncode != 0:
        print("building a Ray Tune venv (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "ray[tune]==2.60.0",
                               "optuna==5.1.0"], check=False)
        if done.returncode != 0:
            print("ray tune: not measured (ray[tune] did not install)")
            return None
    return str(python)


def run_ray_tune(trials: int) -> float | None:
    python = ray_tune_python()
    if python is None:
        return None
    # A home of its own: Ray 2.60 writes ~/.ray/auth_token, which later Ray clients on
    # this machine would send to clusters that expect none.
    env = {**os.environ, "HOME": tempfile.mkdtemp(prefix="ketch-bench-ray-home-")}
    done = subprocess.run([python, __file__, "--ray-tune-only", "--trials", str(trials)],
                          capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        print(f"ray tune: failed\n{done.stderr[-2000:]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def ray_tune_seconds(trials: int) -> float:
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch
    _quiet_optuna()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        def trainable(config: dict[str, float]) -> dict[str, float]:
            return {"loss": (config["x"] - 1.5) ** 2}

        search = OptunaSearch(metric="loss", mode="min", seed=1)
        tuner = tune.Tuner(trainable, param_space={"x": tune.uniform(-5, 5)},
                           tune_config=tune.TuneConfig(search_alg=search, num_samples=trials,
                                                       max_concurrent_trials=1),
                           run_config=tune.RunConfig(verbose=0, storage_path=tempfile.mkdtemp()))
        start = time.perf_counter()
        tuner.fit()
        return time.perf_counter() - start
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--ray-tune-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.trials
    if args.ray_tune_only:  # in the Ray Tune venv: print the seconds only
        print(ray_tune_seconds(n))
        return
    floor = run_optuna_inprocess(n)
    plain = run_optuna_subprocess(n)
    ours = run_ketch(n)
    tune_s = run_ray_tune(n)
    per = {"optuna in-process (floor)": floor / n, "optuna + subprocess": plain / n,
           "ketch": ours / n}
    if tune_s is not None:
        per["ray tune"] = tune_s / n
    print(f"{n} TPE trials, one at a time")
    for name, seconds in per.items():
        overhead = seconds - per["optuna in-process (floor)"]
        print(f"  {name:28s} {seconds * 1000:8.1f} ms/trial   overhead {overhead * 1000:8.1f} ms")
    print(f"ketch / optuna+subprocess: {per['ketch'] / per['optuna + subprocess']:.2f}x "
          "(goal <= 1.2x)")
    if tune_s is not None:
        ratio = (per["ray tune"] - per["optuna in-process (floor)"]) / max(
            per["ketch"] - per["optuna in-process (floor)"], 1e-9)
        print(f"ray tune overhead / ketch overhead: {ratio:.2f}x (goal >= 10x)")
    if math.isnan(ours):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
