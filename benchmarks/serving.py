"""Online inference throughput and latency: ketch beside MLServer, KServe and a floor.

One sklearn iris ``LogisticRegression`` (trained here, saved with joblib) is served by:

* **ketch (isvc)**: an InferenceService on a fresh ``ketch up``, measured at its
  ``status.url`` (the service's own port: its front process, then a replica);
* **ketch (replica)**: ``python -m ketch.serving.modelserver`` alone, no front;
* **MLServer 1.7.1** with ``mlserver-sklearn``, ``parallel_workers: 0`` (its inference
  pool crashes here), from a venv under ``~/.cache/ketch-bench/``;
* **KServe 0.21** Python ``ModelServer`` with a ``kserve.Model`` that loads the same
  file (its default settings, gRPC off), from a venv under ``~/.cache/ketch-bench/``;
* **starlette (floor)**: a minimal Starlette + uvicorn endpoint that parses the V2
  JSON and calls ``model.predict``: about the most a Python server does per request
  with no routing, validation or metrics.

Three V2 JSON requests, each checked for the estimator's answer on every server first:

* **fp64**: 1 row of ``FP64``;
* **fp32**: 1 row of ``FP32`` (tritonclient's usual float type, KServe's docs' example);
* **fp32x8**: a batch of 8 ``FP32`` rows.

Each is driven by one closed-loop load generator, ``wrk`` (one thread, a Lua script
POSTing the request), at several connection counts. All servers are up at once but loaded
one at a time, in interleaved rounds (every server with the first request at 1
connection, then at 8, ..., then the next request, then the next round), so load from
anything else on the machine falls on all of them alike; each cell is the median over the
rounds. Prints requests/s, p50, p99 and the ratios against MLServer from the same run.

    .venv/bin/python benchmarks/serving.py [--quick] [--duration 5] [--rounds 3]
        [--connections 1,8,32] [--requests fp64,fp32,fp32x8]
        [--only ketch-isvc,ketch-replica,mlserver,kserve,starlette]

Needs ``wrk`` (``apt-get install -y wrk``). The MLServer and KServe venvs are built on
first use (a few minutes, from PyPI) with the same scikit-learn version as ketch's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

MODEL = "iris"
# Iris rows of all three classes; the 1-row requests send the first.
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5], [4.9, 3.0, 1.4, 0.2],
        [5.7, 2.8, 4.1, 1.3], [7.7, 3.8, 6.7, 2.2], [5.0, 3.4, 1.5, 0.2], [6.0, 2.2, 5.0, 1.5]]
# name -> (datatype, rows)
REQUESTS: dict[str, tuple[str, int]] = {"fp64": ("FP64", 1), "fp32": ("FP32", 1),
                                        "fp32x8": ("FP32", 8)}
CACHE = Path(os.environ.get("KETCH_BENCH_CACHE", Path.home() / ".cache" / "ketch-bench"))
MLSERVER = "1.7.1"
KSERVE = "0.21.0"
TARGETS = ("ketch-isvc", "ketch-replica", "mlserver", "kserve", "starlette")

KSERVE_MODEL = '''
import sys

import joblib
import kserve
from kserve.utils.utils import get_predict_input, get_predict_response


class Iris(kserve.Model):
    """What KServe's own sklearnserver does per request, on the same file."""

    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self):
        self.model = joblib.load(self.path)
        self.ready = True

    def predict(self, payload, headers=None):
        result = self.model.predict(get_predict_input(payload))
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    port = int(sys.argv[2])
    kserve.ModelServer(http_port=port, grpc_port=port + 1, enable_grpc=False).start(
        [Iris("iris", sys.argv[1])])
'''


# -- the floor: a minimal Starlette endpoint (run as a subprocess of this file) ---------


def _serve_starlette(model_path: str, port: int) -> None:
    import joblib  # type: ignore[import-untyped,unused-ignore]
    import numpy as np
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    model = joblib.load(model_path)

    dtypes = {"FP64": np.float64, "FP32": np.float32}

    async def infer(request: Request) -> JSONResponse:
        body = await request.json()
        inp = body["inputs"][0]
        arr = np.asarray(inp["data"], dtype=dtypes[inp["datatype"]]).reshape(inp["shape"])
        out = model.predict(arr)
        return JSONResponse({"model_name": MODEL, "outputs": [
            {"name": "output-0", "shape": list(out.shape), "datatype": "INT64",
             "data": out.tolist()}]})

    app = Starlette(routes=[Route(f"/v2/models/{MODEL}/infer", infer, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                http="httptools")


# -- helpers ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    # Own process group: stopping it stops the workers a server may have forked.
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True)


def _venv(name: str, packages: list[str], check: str) -> Path:
    """The python of a cached venv holding ``packages``, built on first use."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", check], check=False,
                                          capture_output=True).returncode == 0:
        return python
    print(f"building {venv} ({' '.join(packages)}) ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def _sklearn_version() -> str:
    import sklearn  # type: ignore[import-untyped]

    return str(sklearn.__version__)


# -- the servers under test ---------------------------------------------------------


@contextmanager
def _ready(proc: subprocess.Popen[bytes], port: int) -> Iterator[str]:
    """The URL of ``proc``'s server once its health route answers; ``proc`` stopped on
    the way out, also when it never came up."""
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        yield url
    finally:
        _stop(proc)


@contextmanager
def ketch_replica(model_path: Path, work: Path) -> Iterator[str]:
    port = _free_port()
    proc = _spawn([sys.executable, "-m", "ketch.serving.modelserver", "--name", MODEL,
                   "--model-dir", str(model_path), "--format", "sklearn",
                   "--port", str(port)], work / "replica.log")
    with _ready(proc, port) as url:
        yield url


@contextmanager
def ketch_isvc(model_path: Path, work: Path) -> Iterator[str]:
    from ketch import Client

    home = work / "ketch-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["KETCH_HOME"] = str(home)
    proc = _spawn([sys.executable, "-m", "ketch.cli", "up", "--port", "0"],
                  work / "ketch-up.log", env=env)
    try:
        info = home / "server.json"
        deadline = time.monotonic() + 60
        while not (info.exists() and json.loads(info.read_text() or "{}").get("pid")
                   == proc.pid):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"ketch up did not start (see {work / 'ketch-up.log'})")
            time.sleep(0.1)
        server = json.loads(info.read_text())["url"]
        doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
               "metadata": {"name": MODEL, "namespace": "default"},
               "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                                "storageUri": model_path.as_uri()}}}}
        with Client(server) as client:
            client.apply(doc)
            try:
                ready = client.wait("isvc", MODEL, condition="Ready", timeout=120)
                yield str(ready.status["url"])
            finally:  # its front and replica run in their own sessions: stop them first
                client.delete("isvc", MODEL)
                _gone(client)
    finally:
        _stop(proc)


def _gone(client: Any, timeout: float = 60.0) -> None:
    """Wait until the service is deleted, so its front and replicas are stopped."""
    from ketch.core.errors import NotFoundError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get("isvc", MODEL)
        except NotFoundError:
            return
        time.sleep(0.2)


@contextmanager
def mlserver(model_path: Path, work: Path) -> Iterator[str]:
    python = _venv(f"mlserver-{MLSERVER}",
                   [f"mlserver=={MLSERVER}", f"mlserver-sklearn=={MLSERVER}",
                    f"scikit-learn=={_sklearn_version()}"],
                   f"import mlserver, mlserver_sklearn, sklearn; "
                   f"assert sklearn.__version__ == {_sklearn_version()!r}")
    root = work / "mlserver"
    (root / MODEL).mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, root / MODEL / "model.joblib")
    port = _free_port()
    (root / "settings.json").write_text(json.dumps({
        "http_port": port, "grpc_port": _free_port(), "metrics_port": _free_port(),
        "parallel_workers": 0, "debug": False}))
    (root / MODEL / "model-settings.json").write_text(json.dumps({
        "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}}))
    proc = _spawn([str(python), "-m", "mlserver.cli.main", "start", str(root)],
                  work / "mlserver.log", cwd=root)
    with _ready(proc, port) as url:
        yield url


@contextmanager
def kserve(model_path: Path, work: Path) -> Iterator[str]:
    python = _venv(f"kserve-{KSERVE}",
                   [f"kserve=={KSERVE}", f"scikit-learn=={_sklearn_version()}", "joblib"],
                   f"import kserve, joblib, sklearn; "
                   f"assert sklearn.__version__ == {_sklearn_version()!r}")
    script = work / "kserve_iris.py"
    script.write_text(KSERVE_MODEL)
    port = _free_port()
    proc = _spawn([str(python), str(script), str(model_path), str(port)],
                  work / "kserve.log", cwd=work)
    with _ready(proc, port) as url:
        yield url


@contextmanager
def starlette(model_path: Path, work: Path) -> Iterator[str]:
    port = _free_port()
    proc = _spawn([sys.executable, __file__, "--serve-starlette", str(model_path),
                   str(port)], work / "starlette.log")
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # no health route on the floor: wait for the port
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the starlette floor did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        _stop(proc)


SERVERS: dict[str, tuple[str, Callable[[Path, Path], Any]]] = {
    "ketch-isvc": ("ketch (isvc url)", ketch_isvc),
    "ketch-replica": ("ketch (replica)", ketch_replica),
    "mlserver": (f"MLServer {MLSERVER}", mlserver),
    "kserve": (f"KServe {KSERVE}", kserve),
    "starlette": ("starlette (floor)", starlette),
}


# -- load -----------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(pattern: str, out: str) -> float:
    """A latency wrk printed (``812.00us``, ``3.10ms``, ``1.20s``, ``1.01m``), in ms."""
    m = re.search(pattern + r"\s+([\d.]+)(us|ms|s|m)\b", out)
    if m is None:  # no request finished in the window
        return math.nan
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[m.group(2)]


def _wrk(url: str, connections: int, seconds: float, script: Path) -> Result:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
                          "-s", str(script), f"{url}/v2/models/{MODEL}/infer"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)",
                    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"):
        found = re.search(pattern, out)
        if found:
            errors += sum(int(g) for g in found.groups())
    return Result(rps, _ms("50%", out), _ms("99%", out), errors)


def _body(name: str) -> str:
    datatype, rows = REQUESTS[name]
    return json.dumps({"inputs": [{"name": "input-0", "shape": [rows, 4],
                                   "datatype": datatype,
                                   "data": [v for row in ROWS[:rows] for v in row]}]})


def _expected(model: Any, name: str) -> list[int]:
    """What the estimator predicts on the request's rows, in the request's dtype."""
    import numpy as np

    datatype, rows = REQUESTS[name]
    arr = np.asarray(ROWS[:rows], dtype=np.float32 if datatype == "FP32" else np.float64)
    return [int(v) for v in model.predict(arr)]


def _check(url: str, body: str, want: list[int]) -> None:
    r = httpx.post(f"{url}/v2/models/{MODEL}/infer", content=body,
                   headers={"content-type": "application/json"}, timeout=30)
    r.raise_for_status()
    got = r.json()["outputs"][0]["data"]
    if got != want:
        raise SystemExit(f"{url} answered {got}, expected {want}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 3 s per point")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds per point and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over all servers; each cell is the median")
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--requests", default=",".join(REQUESTS),
                        help=f"which requests ({', '.join(REQUESTS)})")
    parser.add_argument("--only", default=",".join(TARGETS))
    parser.add_argument("--transport", action="store_true",
                        help="only the front->replica hop: a front over loopback TCP, "
                             "one over a unix socket and one the local executor's way "
                             "(same request, interleaved)")
    parser.add_argument("--serve-starlette", nargs=2, metavar=("MODEL", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_starlette:
        _serve_starlette(args.serve_starlette[0], int(args.serve_starlette[1]))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if args.transport:
        transport(args)
        return
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in only if t not in SERVERS]
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(unknown)} (one of {', '.join(TARGETS)})")
    conns = [int(c) for c in args.connections.split(",")]
    requests = [r.strip() for r in args.requests.split(",") if r.strip()]
    bad = [r for r in requests if r not in REQUESTS]
    if bad or not requests:
        raise SystemExit(f"--requests: unknown {', '.join(bad) or '(none)'} "
                         f"(one of {', '.join(REQUESTS)})")
    seconds = 3.0 if args.quick else args.duration
    rounds = 1 if args.quick else max(1, args.rounds)

    import joblib  # type: ignore[import-untyped,unused-ignore]
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    work = Path(tempfile.mkdtemp(prefix="ketch-bench-serving-"))
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    model_path = work / "model.joblib"
    joblib.dump(model, model_path)
    scripts: dict[str, Path] = {}
    for name in requests:
        scripts[name] = work / f"{name}.lua"
        scripts[name].write_text('wrk.method = "POST"\n'
                                 f"wrk.body = '{_body(name)}'\n"
                                 'wrk.headers["Content-Type"] = "application/json"\n')

    # All servers up at once and measured in interleaved rounds, so that load from
    # anything else on the machine falls on all of them alike; each cell is the median.
    samples: dict[tuple[str, str, int], list[Result]] = {
        (name, key, c): [] for name in requests for key in only for c in conns}
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        for key in only:
            label, start = SERVERS[key]
            print(f"{label}: starting", flush=True)
            urls[key] = stack.enter_context(start(model_path, work))
            for name in requests:
                _check(urls[key], _body(name), _expected(model, name))
                _wrk(urls[key], max(conns), 1.0, scripts[name])  # warm up: lazy imports
        for r in range(rounds):
            for name in requests:
                for c in conns:
                    for key in only:
                        res = _wrk(urls[key], c, seconds, scripts[name])
                        samples[name, key, c].append(res)
                        print(f"  round {r + 1}/{rounds} {name:<6} {SERVERS[key][0]:<18} "
                              f"{c:>3} conns: {res.rps:>9,.0f} req/s  p50 {res.p50_ms:6.2f} "
                              f"ms  p99 {res.p99_ms:6.2f} ms"
                              + (f"  errors {res.errors}" if res.errors else ""), flush=True)
    for name in requests:
        results = {key: {c: _median(samples[name, key, c]) for c in conns} for key in only}
        _table(name, results, conns, seconds, rounds)
    shutil.rmtree(work, ignore_errors=True)


def transport(args: argparse.Namespace) -> None:
    """Front -> replica over loopback TCP (the address an executor publishes for a
    server unit) against a unix socket (what the controller used to compute), and the
    local backend's way (a TCP address, and the unix socket it gave both units beside
    their ports, ``KETCH_UNIT_UDS``): three fronts, each with one replica, driven in
    turn with the fp64 request; medians over the rounds."""
    import hashlib

    conns = [int(c) for c in args.connections.split(",")]
    rounds, seconds = (1, 3.0) if args.quick else (args.rounds, args.duration)
    secret = "bench-admin"
    with tempfile.TemporaryDirectory(prefix="ketch-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        import joblib
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        X, y = load_iris(return_X_y=True)
        (work / "iris").mkdir()
        joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), work / "iris" / "model.joblib")
        env = {**os.environ, "KETCH_FRONT_ADMIN_SHA256": hashlib.sha256(
            secret.encode()).hexdigest()}
        fronts: dict[str, str] = {}
        (work / "sockets").mkdir()
        for name in ("unix", "tcp", "local"):
            rport, fport = _free_port(), _free_port()
            where = ["--uds", str(work / "r.sock")] if name == "unix" else ["--port", str(rport)]
            # What the local executor gives a server unit: a socket named by its port.
            renv, fenv = ({**os.environ, "KETCH_UNIT_UDS": str(work / "sockets" / f"{p}.sock")}
                          for p in (rport, fport))
            replica = _spawn([sys.executable, "-m", "ketch.serving.modelserver", "--name", MODEL,
                              "--model-dir", str(work / "iris"), "--format", "sklearn", *where],
                             work / f"{name}-replica.log",
                             env=renv if name == "local" else None)
            stack.callback(_stop, replica)
            front = _spawn([sys.executable, "-m", "ketch.serving._front", "--service",
                            f"default/{name}", "--port", str(fport)], work / f"{name}.log",
                           env={**env, **fenv} if name == "local" else env)
            stack.callback(_stop, front)
            address = f"unix:{work / 'r.sock'}" if name == "unix" else f"127.0.0.1:{rport}"
            url = f"http://127.0.0.1:{fport}"
            config = {"version": "b", "revisions": [{"name": "r", "percent": 100, "backends": [
                {"id": "r", "address": address}]}]}
            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.put(f"{url}/ketch/admin/config", json=config, timeout=5,
                              headers={"authorization": f"Bearer {secret}"}).raise_for_status()
                    _check(url, _body("fp64"), [0])
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the {name} front did not serve") from None
                    time.sleep(0.2)
            fronts[name] = url
        script = work / "fp64.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["content-type"] = '
                          f'"application/json"\nwrk.body = {json.dumps(_body("fp64"))}\n')
        results: dict[str, dict[int, list[Result]]] = {n: {c: [] for c in conns} for n in fronts}
        for r in range(rounds):
            for c in conns:
                order = list(fronts) if r % 2 == 0 else list(fronts)[::-1]
                for name in order:
                    results[name][c].append(_wrk(fronts[name], c, seconds, script))
        labels = {"unix": "unix socket", "tcp": "loopback TCP",
                  "local": "TCP address, local backend's socket"}
        print("| front -> replica | connections | requests/s | p50 ms | p99 ms | / unix |")
        print("|---|---:|---:|---:|---:|---:|")
        for c in conns:
            unix = _median(results["unix"][c])
            for name, label in labels.items():
                res = _median(results[name][c])
                ratio = f"{res.rps / unix.rps:.3f}" if name != "unix" and unix.rps else ""
                print(f"| {label} | {c} | {res.rps:,.0f} | {res.p50_ms:.2f} | {res.p99_ms:.2f} "
                      f"| {ratio} |")


def _median(results: list[Result]) -> Result:
    return Result(statistics.median(r.rps for r in results),
                  statistics.median(r.p50_ms for r in results),
                  statistics.median(r.p99_ms for r in results),
                  sum(r.errors for r in results))


def _table(request: str, results: dict[str, dict[int, Result]], conns: list[int],
           seconds: float, rounds: int) -> None:
    base = results.get("mlserver")
    datatype, n_rows = REQUESTS[request]
    print(f"\n{request}: {n_rows}-row {datatype} V2 JSON infer, sklearn iris "
          f"LogisticRegression, wrk -t1, median of {rounds} x {seconds:g} s per cell, "
          f"{os.cpu_count()} CPUs")
    print(f"{'server':<20} {'conns':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'x MLServer req/s':>16} {'p99 / MLServer':>14}")
    for key, rows in results.items():
        for c in conns:
            r = rows[c]
            ratio = p99 = ""
            if base is not None:
                ratio = f"{r.rps / base[c].rps:.2f}x"
                p99 = f"{r.p99_ms / base[c].p99_ms:.2f}"
            err = f"  ({r.errors} errors)" if r.errors else ""
            print(f"{SERVERS[key][0]:<20} {c:>5} {r.rps:>9,.0f} {r.p50_ms:>7.2f} "
                  f"{r.p99_ms:>7.2f} {ratio:>16} {p99:>14}{err}")


if __name__ == "__main__":
    main()
