"""Helpers for the serving tests: start a real model server process, and KServe's client;
the iris model they serve, and the fixture that deletes InferenceServices after a test.

KServe's Python package (``kserve==0.21.0``) pins ``psutil<6`` while ketch runs on
psutil 7, so it is not installed into ketch's venv: :func:`kserve_python` builds a
separate venv once, cached under ``~/.cache/ketch-test/kserve-<version>``.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from _venvs import cached_venv
from conftest import ServerProcess, wait_for
from ketch import Client

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

KSERVE_VERSION = "0.21.0"
KSERVE_KUBERNETES = "35.0.0"
START_TIMEOUT = 60.0
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "serving"


def train_iris(out: Path) -> Path:
    """An sklearn iris model trained by ``examples/serving/train_iris.py``, saved in
    ``out`` (``model.joblib``); returns ``out``."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from train_iris import main
    finally:
        sys.path.pop(0)
    main(str(out))
    return out


def trained_iris(out: Path) -> Any:
    """:func:`train_iris`, then the fitted estimator itself (for expected predictions)."""
    import joblib

    return joblib.load(train_iris(out) / "model.joblib")


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LogisticRegression]:
    """An iris ``LogisticRegression`` fitted here, saved as ``model.joblib`` in a folder
    of its own: (folder, model)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    model_dir = tmp_path_factory.mktemp("iris")
    joblib.dump(model, model_dir / "model.joblib")
    return model_dir, model


@pytest.fixture
def stop_services(ketch_server: ServerProcess) -> Iterator[None]:
    """Model servers outlive their control plane by design (a restart adopts them),
    so each test deletes its InferenceServices, which stops their processes."""
    yield
    with Client(ketch_server.url) as client:
        # Every namespace's: a test may serve from one of its own (the pods view's does).
        for obj in client.list("isvc", all_namespaces=True).items:
            client.delete("isvc", obj.name, namespace=obj.namespace)
        wait_for(lambda: not client.list("isvc", all_namespaces=True).items, timeout=60,
                 message="inference services deleted")


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
    return cached_venv("kserve", KSERVE_VERSION, "import kserve")


def kserve_crd_python() -> Path:
    """A kserve venv with the Kubernetes client pinned to ``KSERVE_KUBERNETES``, for
    ``KServeClient`` (the SDK's Kubernetes side).

    kserve 0.21.0 asks only ``kubernetes>=23.3.0``, so pip picks 37.x, whose
    ``CustomObjectsApi`` validates ``body`` as a dict with pydantic and serializes
    only its own pydantic models: ``KServeClient.create(V1beta1InferenceService(...))``
    then fails in the client before any request (and a dict has no ``api_version``
    for ``create`` to read). 35.0.0, the client tests/client drive, still takes them.
    """
    return cached_venv("kserve", KSERVE_VERSION, "import kserve",
                       pins=(f"kubernetes=={KSERVE_KUBERNETES}",))
