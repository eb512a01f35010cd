"""The Kubernetes API as kubectl uses it, beside ketch's own CLI (issue 12).

Run from the repository root::

    .venv/bin/python benchmarks/k8s_api.py                  # 10, 100 and 400 Jobs
    .venv/bin/python benchmarks/k8s_api.py --sizes 10,50 --events 10

One real ``python -m ketch.cli server --port 0`` in a temporary ``KETCH_HOME`` (SQLite, no
token), the real ``kubectl`` on PATH with a kubeconfig for it (``HOME`` is a temporary
directory, so kubectl's discovery cache starts empty and is then warm, as a user's is).
The namespace holds N finished Jobs (created through the API, run to ``Succeeded``), for
each N of ``--sizes``. Measured at each size:

1. ``GET .../jobs`` as a Table (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``,
   what ``kubectl get`` asks for) beside the plain JSON list, from this process (httpx,
   one connection): median and p95 of ``--requests`` each, interleaved. The server's cost.
2. ``kubectl get jobs`` beside ``ketch get jobs``: each a new process, as a user types it,
   median of ``--runs`` each, interleaved. The user's wait, start-up included.

Then watch delivery: ``kubectl get jobs -w --output-watch-events`` and ``ketch get jobs
-w`` run side by side, with a raw newline-delimited watch (httpx) as the floor. For each of
``--events`` label patches, ``t0 = time.time()`` just before the PATCH; a stream's delivery
time is when it printed a line naming the patched Job, minus ``t0``.

Ratios are kubectl over ketch (or Table over JSON): below 1 means the Kubernetes-style path
is the faster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

NAMESPACE = "bench"
JOBS = f"/apis/ketch.dev/v1/namespaces/{NAMESPACE}/jobs"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
READY_TIMEOUT_S = 60.0
EVENT_TIMEOUT_S = 30.0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1e3:7.1f} ms  p95 {pct(values, 95) * 1e3:7.1f} ms"


@contextlib.contextmanager
def server(home: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["KETCH_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli", "server", "--port", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    info = home / "server.json"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(info.read_text())
                if data.get("pid") == proc.pid:
                    url = str(data["url"])
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        yield url, env
                        return
            if proc.poll() is not None:
                raise SystemExit(f"the server exited {proc.returncode}")
            time.sleep(0.1)
        raise SystemExit("the server did not become ready")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def kubeconfig(url: str, directory: Path) -> Path:
    path = directory / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: ketch
  cluster: {{server: "{url}"}}
contexts:
- name: ketch
  context: {{cluster: ketch, namespace: {NAMESPACE}, user: me}}
users:
- name: me
  user: {{}}
current-context: ketch
""")
    return path


def fill(http: httpx.Client, start: int, count: int) -> None:
    """Jobs ``job-{start}`` .. up to ``count``, each run to Succeeded."""
    for i in range(start, count):
        job = {"apiVersion": "ketch.dev/v1", "kind": "Job",
               "metadata": {"name": f"job-{i:04d}", "labels": {"bench": "k8s"}},
               "spec": {"command": [sys.executable, "-c", "pass"]}}
        created = http.post(JOBS, json=job)
        assert created.status_code == 201, created.text
    deadline = time.monotonic() + 60 + count
    while time.monotonic() < deadline:
        items = http.get(JOBS).json()["items"]
        if len(items) == count and all(
                (o.get("status") or {}).get("phase") == "Succeeded" for o in items):
            return
        time.sleep(0.2)
    raise SystemExit(f"{count} jobs did not all succeed")


def http_lists(http: httpx.Client, requests: int, size: int) -> tuple[list[float], list[float]]:
    as_table: list[float] = []
    as_json: list[float] = []
    for _ in range(requests):
        for accept, into in ((TABLE, as_table), ("application/json", as_json)):
            t0 = time.perf_counter()
            answer = http.get(JOBS, headers={"Accept": accept})
            into.append(time.perf_counter() - t0)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            rows = body.get("rows") if accept == TABLE else body.get("items")
            assert rows is not None and len(rows) == size, (accept, list(body)[:5])
    return as_table, as_json


def cli_gets(kubectl: list[str], ketch: list[str], env: dict[str, str],
             runs: int, size: int) -> tuple[list[float], list[float]]:
    by_kubectl: list[float] = []
    by_ketch: list[float] = []
    for _ in range(runs):
        for argv, into in ((kubectl, by_kubectl), (ketch, by_ketch)):
            t0 = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            into.append(time.perf_counter() - t0)
            assert done.returncode == 0, (argv, done.stderr)
            lines = [line for line in done.stdout.splitlines() if line.startswith("job-")]
            assert len(lines) == size, (argv, done.stdout[:300])
    return by_kubectl, by_ketch


class Stream:
    """A process (or a raw HTTP watch) whose output lines are timestamped as they come."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def spawn(self, argv: list[str], env: dict[str, str]) -> Stream:
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.time(), line))

    def watch_http(self, url: str) -> Stream:
        def pump() -> None:
            # The stream ends when the server stops at the end of the run.
            with contextlib.suppress(httpx.HTTPError), httpx.stream(
                    "GET", url + JOBS, params={"watch": "true"},
                    timeout=httpx.Timeout(10, read=None)) as answer:
                for line in answer.iter_lines():
                    if line:
                        self.lines.put((time.time(), line))
        threading.Thread(target=pump, daemon=True).start()
        return self

    def until(self, text: str, timeout: float = EVENT_TIMEOUT_S) -> float:
        """When the next line naming ``text`` came."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"{self.name}: no line with {text!r} in {timeout:.0f}s")
            try:
                stamp, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if text in line:
                return stamp

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.lines.get_nowait()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def watch_delivery(http: httpx.Client, url: str, kubectl: list[str], ketch: list[str],
                   env: dict[str, str], events: int, size: int) -> dict[str, list[float]]:
    streams = [Stream("kubectl get -w").spawn([*kubectl, "-w", "--output-watch-events"], env),
               Stream("ketch get -w").spawn([*ketch, "-w"], env),
               Stream("raw watch").watch_http(url)]
    last = f"job-{size - 1:04d}"
    try:
        for stream in streams:  # each has listed the namespace
            stream.until(last, timeout=60)
        time.sleep(0.5)  # the initial list's lines are all out
        for stream in streams:
            stream.drain()
        times: dict[str, list[float]] = {s.name: [] for s in streams}
        for i in range(events):
            name = f"job-{(i * 7) % size:04d}"
            t0 = time.time()
            patched = http.patch(f"{JOBS}/{name}", json={"metadata": {"labels": {"n": str(i)}}},
                                 headers={"Content-Type": "application/merge-patch+json"})
            assert patched.status_code == 200, patched.text
            for stream in streams:
                times[stream.name].append(stream.until(name) - t0)
        return times
    finally:
        for stream in streams:
            stream.stop()


def ratio(top: list[float], bottom: list[float]) -> str:
    return f"{statistics.median(top) / statistics.median(bottom):.2f}x"


def at_size(http: httpx.Client, kubectl: list[str], ketch: list[str], env: dict[str, str],
            args: argparse.Namespace, size: int) -> None:
    cli_gets(kubectl, ketch, env, 1, size)  # warm: kubectl's discovery cache, imports
    as_table, as_json = http_lists(http, args.requests, size)
    by_kubectl, by_ketch = cli_gets(kubectl, ketch, env, args.runs, size)
    print(f"\n{size} Jobs")
    print(f"  GET as Table      {ms(as_table)}")
    print(f"  GET as JSON list  {ms(as_json)}")
    print(f"  Table / JSON      {ratio(as_table, as_json)}")
    print(f"  kubectl get jobs  {ms(by_kubectl)}")
    print(f"  ketch get jobs    {ms(by_ketch)}")
    print(f"  kubectl / ketch   {ratio(by_kubectl, by_ketch)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,400",
                        help="numbers of Jobs in the namespace (comma-separated)")
    parser.add_argument("--requests", type=int, default=30, help="HTTP lists per size")
    parser.add_argument("--runs", type=int, default=5, help="CLI runs per size")
    parser.add_argument("--events", type=int, default=20, help="watch events to time")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if shutil.which("kubectl") is None:
        raise SystemExit("kubectl is not on PATH")
    with tempfile.TemporaryDirectory(prefix="ketch-k8s-bench-") as tmp:
        root = Path(tmp)
        with server(root / "home") as (url, server_env):
            # ketch's CLI finds the server through KETCH_HOME's server.json, as a user's does.
            env = {**server_env, "HOME": str(root), "KUBECONFIG": str(kubeconfig(url, root))}
            kubectl = ["kubectl", "get", "jobs.ketch.dev"]
            ketch = [sys.executable, "-m", "ketch.cli", "get", "jobs", "-n", NAMESPACE]
            print(f"kubectl {kubectl_version()}; ketch server {url}")
            with httpx.Client(base_url=url, timeout=60) as http:
                have = 0
                for size in sizes:
                    fill(http, have, size)
                    have = size
                    at_size(http, kubectl, ketch, env, args, size)
                times = watch_delivery(http, url, kubectl, ketch, env, args.events, sizes[-1])
            print(f"\nwatch delivery, {args.events} label patches on {sizes[-1]} Jobs")
            for name, values in times.items():
                print(f"  {name:<16}  {ms(values)}")
            print(f"  kubectl / ketch   {ratio(times['kubectl get -w'], times['ketch get -w'])}")


def kubectl_version() -> str:
    done = subprocess.run(["kubectl", "version", "--client", "-o", "json"],
                          capture_output=True, text=True, check=False)
    with contextlib.suppress(ValueError, KeyError):
        return str(json.loads(done.stdout)["clientVersion"]["gitVersion"])
    return "unknown"


if __name__ == "__main__":
    main()
