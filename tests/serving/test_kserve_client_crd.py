"""KServe's own ``KServeClient`` (kserve 0.21.0: the SDK's Kubernetes side, over the
Kubernetes Python client) against a real ``ketch up``, pointed there by nothing but a
kubeconfig: create an InferenceService, ``wait_isvc_ready`` (its watch and its polling),
``get``, ``is_isvc_ready``, list, predict at ``status.url``, its ``core_api`` listing the
predictor's pods by KServe's labels and reading a log, ``patch`` to a new revision and
wait for generation 2, delete, and 404 after; a service whose model cannot load is never
Ready and the wait says so; the same with a bearer token, and 401 without one.

KServe's pins clash with ketch's, so the client runs in its own cached venv
(``kserve_crd_python``: kserve with the Kubernetes client pinned, see there why) as a
subprocess (``_kserve_crd.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _modelserver import kserve_crd_python, train_iris
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = pytest.mark.slow

ROWS = [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]
SCRIPT = Path(__file__).parent / "_kserve_crd.py"


def kubeconfig(path: Path, server: str, token: str = "") -> Path:
    """What ``kubectl config set-cluster/set-credentials`` would write for ketch."""
    user: dict[str, str] = {"token": token} if token else {}
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "ketch",
        "clusters": [{"name": "ketch", "cluster": {"server": server}}],
        "users": [{"name": "ketch", "user": user}],
        "contexts": [{"name": "ketch", "context": {"cluster": "ketch", "user": "ketch"}}],
    }))
    return path


def run_kserve(config: Path, model_dir: Path) -> dict[str, Any]:
    again = model_dir.with_name(f"{model_dir.name}-v2")
    if not again.exists():
        shutil.copytree(model_dir, again)
    done = subprocess.run([str(kserve_crd_python()), str(SCRIPT), str(config), "default",
                           model_dir.as_uri(), again.as_uri(), json.dumps(ROWS)],
                          capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_iris(tmp_path_factory.mktemp("iris"))


def check(out: dict[str, Any], model_dir: Path) -> None:
    import joblib

    want = joblib.load(model_dir / "model.joblib").predict(ROWS).tolist()
    assert out["created"] == {"apiVersion": "serving.kserve.io/v1beta1",
                              "kind": "InferenceService", "generation": 1, "uid": True}
    # isvc_watch printed rows until Ready=True with the URL, and stopped there.
    last = out["watch_table"][-1].split()
    assert last[:2] == ["iris", "True"] and last[-1] == out["url"], out["watch_table"]
    assert out["ready_after_watch"] is True
    assert out["url"].startswith("http://127.0.0.1:"), out["url"]
    assert out["observed_generation"] == 1
    assert out["conditions"]["Ready"] == "True"
    assert out["conditions"]["PredictorReady"] == "True"
    assert out["traffic"] == [{"revisionName": "iris-predictor-00001", "percent": 100,
                               "latestRevision": True}]
    assert out["predictions"] == {"predictions": want}
    assert out["listed"] == ["iris"]
    assert out["pods"] == [["iris-predictor-00001-1", "Running", "kserve-container", True]]
    assert out["pod_log"] is True
    assert out["patched_generation"] == 2 and out["ready_gen2"] is True
    assert out["rolled"]["uri"].endswith("-v2"), out["rolled"]
    assert out["rolled"]["predictor_ready"] == "True"
    assert out["rolled"]["traffic"] == [{"revisionName": "iris-predictor-00002",
                                         "percent": 100, "latestRevision": True}]

    assert "Timeout to start the InferenceService broken" in out["broken_wait"]
    assert out["broken_ready"] is False
    for name in ("broken", "iris"):
        gone = out[name]
        assert gone["deleted_kind"] == "InferenceService", gone
        assert gone["watched"][-1] == "DELETED", gone
        assert "(404)" in gone["get_after"], gone
        assert gone["raw_after"] == {"status": 404, "reason": "NotFound"}, gone
    assert out["listed_after"] == []


def test_kserve_client_drives_an_inference_service(
        ketch_server: ServerProcess, stop_services: None, iris_dir: Path,
        tmp_path: Path) -> None:
    check(run_kserve(kubeconfig(tmp_path / "config", ketch_server.url), iris_dir), iris_dir)


@pytest.fixture
def tokened(server_factory: Any, tmp_path: Path) -> Iterator[ServerProcess]:
    server: ServerProcess = server_factory(tmp_path / "tokened", command="server",
                                           KETCH_TOKEN="kserve-token")
    yield server
    # Model servers outlive their control plane by design: delete what a failed run left.
    with Client(server.url, token="kserve-token") as client:
        for obj in client.list("isvc").items:
            client.delete("isvc", obj.name)
        wait_for(lambda: not client.list("isvc").items, timeout=60,
                 message="inference services deleted")


def test_kserve_client_with_a_bearer_token(tokened: ServerProcess, iris_dir: Path,
                                           tmp_path: Path) -> None:
    check(run_kserve(kubeconfig(tmp_path / "config", tokened.url, "kserve-token"),
                     iris_dir), iris_dir)
    anonymous = subprocess.run(
        [str(kserve_crd_python()), "-c",
         "import sys; from kserve import KServeClient\n"
         "try:\n    KServeClient(config_file=sys.argv[1]).get(namespace='default')\n"
         "except RuntimeError as err:\n    print(err)",
         str(kubeconfig(tmp_path / "anonymous", tokened.url))],
        capture_output=True, text=True, timeout=120, check=False)
    assert "(401)" in anonymous.stdout and '"kind":"Status"' in anonymous.stdout, (
        anonymous.stdout + anonymous.stderr)
