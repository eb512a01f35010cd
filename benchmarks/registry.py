"""Model registry latency through the official client, against the store's floor.

Starts a real ``ketch up`` (SQLite, fresh KETCH_HOME; ``--database-url`` for
PostgreSQL), then measures with ``model-registry==0.3.18``:

* ``register_model`` (5 HTTP calls: find model, create model, find version,
  create version, create artifact), median of N;
* one page of 100 versions (``GET /registered_models/{id}/versions?pageSize=100``
  through the client's generated API), median of N;

beside the floor: a 1-row ``SELECT`` round trip on the same database through
ketch's store, and an HTTP round trip to ``/healthz``. Prints the ratios.

    .venv/bin/python benchmarks/registry.py [--n 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx


def _start(home: Path, database_url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env["KETCH_HOME"] = str(home)
    if database_url:
        env["KETCH_DATABASE_URL"] = database_url
    proc = subprocess.Popen([sys.executable, "-m", "ketch.cli", "up", "--port", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = home / "server.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if info.exists():
            import json

            data = json.loads(info.read_text())
            if data.get("pid") == proc.pid:
                return proc, str(data["url"])
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("ketch up did not start")


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="samples per measurement")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from model_registry import ModelRegistry

    from ketch.core.store import open_store

    home = Path(tempfile.mkdtemp(prefix="ketch-bench-registry-"))
    proc, url = _start(home, args.database_url)
    try:
        host, port = url.rsplit(":", 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            registry = ModelRegistry(host, int(port), author="bench", is_secure=False)

        register: list[float] = []
        model: Any = None
        for i in range(args.n):
            start = time.perf_counter()
            registry.register_model(f"bench-model-{i}", f"file:///models/{i}",
                                    model_format_name="sklearn", model_format_version="1",
                                    version="v1", metadata={"accuracy": 0.9, "i": i})
            register.append(time.perf_counter() - start)

        model = registry.register_model("bench-many", "file:///m/0", model_format_name="onnx",
                                        model_format_version="1", version="v0")
        for i in range(1, 100):
            registry.register_model("bench-many", f"file:///m/{i}", model_format_name="onnx",
                                    model_format_version="1", version=f"v{i}")
        from model_registry.types import ListOptions

        api: Any = registry._api  # what the client's own pager calls for one page
        page: list[float] = []
        result: list[Any] = []
        for _ in range(args.n):
            start = time.perf_counter()
            result = registry.async_runner(api.get_model_versions(
                model.id, ListOptions(limit=100)))
            page.append(time.perf_counter() - start)
        assert len(result) == 100, len(result)

        db_url = args.database_url or f"sqlite:///{home / 'ketch.db'}"
        store = open_store(db_url, migrate=False)
        from sqlalchemy import text

        floor: list[float] = []
        for _ in range(args.n):
            start = time.perf_counter()
            with store.transaction(write=False) as conn:
                conn.execute(text("SELECT id FROM registry_entities LIMIT 1")).first()
            floor.append(time.perf_counter() - start)
        store.close()
        http_floor: list[float] = []
        raw_page: list[float] = []
        with httpx.Client(base_url=url) as client:
            for _ in range(args.n):
                start = time.perf_counter()
                client.get("/healthz")
                http_floor.append(time.perf_counter() - start)
            for _ in range(args.n):
                start = time.perf_counter()
                body = client.get(f"/api/model_registry/v1/registered_models/{model.id}/versions",
                                  params={"pageSize": 100}).json()
                raw_page.append(time.perf_counter() - start)
            assert len(body["items"]) == 100

        # The same register flow through ketch's own SDK (httpx, one kept-alive
        # connection): what the server costs without the official client's overhead.
        from ketch.registry.client import ModelRegistry as KetchRegistry

        sdk_register: list[float] = []
        with KetchRegistry(url, author="bench") as sdk:
            for i in range(args.n):
                start = time.perf_counter()
                sdk.register_model(f"sdk-model-{i}", f"file:///models/{i}",
                                   model_format_name="sklearn", model_format_version="1",
                                   version="v1", metadata={"accuracy": 0.9, "i": i})
                sdk_register.append(time.perf_counter() - start)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

    floor_median = statistics.median(floor)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"ketch model registry benchmark ({backend}, n={args.n}, model-registry 0.3.18 client)")
    print(f"  floor: 1-row SELECT on the store      {_ms(floor)}")
    print(f"  floor: HTTP GET /healthz              {_ms(http_floor)}")
    print(f"  register_model (5 HTTP calls)         {_ms(register)}   "
          f"{statistics.median(register) / floor_median:6.1f}x the SELECT floor")
    print(f"  page of 100 versions                  {_ms(page)}   "
          f"{statistics.median(page) / floor_median:6.1f}x the SELECT floor")
    print("  without the official client's own overhead (a new aiohttp session per call):")
    print(f"    register flow, ketch SDK (httpx)    {_ms(sdk_register)}   "
          f"{statistics.median(sdk_register) / floor_median:6.1f}x the SELECT floor")
    print(f"    page of 100 versions, plain GET     {_ms(raw_page)}   "
          f"{statistics.median(raw_page) / floor_median:6.1f}x the SELECT floor")


if __name__ == "__main__":
    main()
