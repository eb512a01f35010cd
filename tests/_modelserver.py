"""Helpers for the serving tests: start a real model server process, and KServe's client.

KServe's Python package (``kserve==0.21.0``) pins ``psutil<6`` while ketch runs on
psutil 7, so it is not installed into ketch's venv: :func:`kserve_python` builds a
separate venv once, cached under ``~/.cache/ketch-test/kserve-<version>``.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

KSERVE_VERSION = "0.21.0"
START_TIMEOUT = 60.0


@dataclass
class ModelServer:
    """A running ``python -m ketch.serving.modelserver`` and the port it printed."""

    proc: subprocess.Popen[str]
    port: int
    stderr: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _pump(stream: object, sink: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.put(line)
    sink.put(None)


def modelserver_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ketch.serving.modelserver", *args]


def start_modelserver(*args: str, env: dict[str, str] | None = None) -> ModelServer:
    """Start the model server with ``--port 0`` and wait for its port line.

    Raises:
        RuntimeError: If the process exits or prints no port line within the timeout.
    """
    proc = subprocess.Popen(modelserver_cmd(*args, "--port", "0"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()
    errs: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, errs), daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT)
            if line is None:
                proc.wait(timeout=10)
                err = []
                while (e := errs.get(timeout=10)) is not None:
                    err.append(e)
                raise RuntimeError(f"model server exited {proc.returncode}: {''.join(err)}")
            if line.startswith("KETCH_MODELSERVER_PORT="):
                return ModelServer(proc, int(line.strip().split("=", 1)[1]))
    except queue.Empty:
        proc.kill()
        proc.wait()
        raise RuntimeError("model server printed no port line in time") from None


def kserve_python() -> Path:
    """The python of a venv holding ``kserve==KSERVE_VERSION``, built once and cached."""
    cache = Path(os.environ.get("KETCH_TEST_CACHE", Path.home() / ".cache" / "ketch-test"))
    venv = cache / f"kserve-{KSERVE_VERSION}"
    python = venv / "bin" / "python"
    ok = subprocess.run([str(python), "-c", "import kserve"], capture_output=True,
                        check=False) if python.exists() else None
    if ok is not None and ok.returncode == 0:
        return python
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"kserve-{KSERVE_VERSION}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q",
                    f"kserve=={KSERVE_VERSION}"], check=True, timeout=900)
    shutil.rmtree(venv, ignore_errors=True)
    tmp.rename(venv)
    return python
