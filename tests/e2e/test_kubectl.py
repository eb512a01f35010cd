"""The real ``kubectl`` (v1.32 on PATH) against ``ketch up``, through the kubeconfig
``ketch kubeconfig`` writes: discovery (``api-resources``), ``apply -f`` with default
(strict, server-side) validation of a Job, a PipelineRun and an InferenceService, an
unknown field refused with its path, ``get`` with ketch's own columns, ``get -w``,
``describe`` with Events, ``logs`` of a Job's pod and of a model replica, ``delete`` and
``explain``.

HOME is the test's own directory, so kubectl's discovery and OpenAPI caches
(``~/.kube/cache``) start empty and never leak between tests."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _modelserver import train_iris
from conftest import KubectlRun, ServerProcess, kubectl_env, kubectl_runner, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
Kubectl = KubectlRun


@pytest.fixture
def kube_env(ketch_server: ServerProcess, tmp_path: Path) -> dict[str, str]:
    return kubectl_env(ketch_server, tmp_path, "kube")


@pytest.fixture
def kubectl(kube_env: dict[str, str]) -> KubectlRun:
    return kubectl_runner(kube_env)


@pytest.fixture
def watch(kube_env: dict[str, str]) -> Iterator[Callable[..., list[str]]]:
    """``watch(*args)``: start ``kubectl *args`` in the background; the list it returns
    fills with its output lines."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> list[str]:
        proc = subprocess.Popen(["kubectl", *args], env=kube_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
                         daemon=True).start()
        return lines

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def test_api_resources_lists_ketch_and_core_kinds(kubectl: Kubectl) -> None:
    out = kubectl("api-resources").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["jobs"][1:] == ["kj", "ketch.dev/v1", "true", "Job"]
    assert rows["inferenceservices"][1:] == ["isvc", "serving.kserve.io/v1beta1", "true",
                                             "InferenceService"]
    assert rows["pipelineruns"][2] == "pipelines.ketch.dev/v1"
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]
    assert rows["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]
    assert "configmaps" in rows and "events" in rows
    assert "Server Version: v1.32.0+ketch." in kubectl("version").stdout


def test_job_apply_get_watch_describe_logs_delete(kubectl: Kubectl, ketch_server: ServerProcess,
                                                  watch: Callable[..., list[str]]) -> None:
    events = watch("get", "jobs.ketch.dev", "-w")
    applied = kubectl("apply", "-f", str(EXAMPLES / "hello-job.yaml"), "-v=6")
    assert "job.ketch.dev/hello created" in applied.stdout
    # The default --validate=strict, left to the server since its OpenAPI says it can.
    assert "fieldValidation=Strict" in applied.stderr
    wait_for(lambda: any("Succeeded" in line for line in events), timeout=60,
             message="kubectl get -w to show the job Succeeded")
    assert events[0].split()[0] == "NAME" and any(line.startswith("hello ") for line in events)

    # Plain `jobs` resolves through discovery to ketch's Job (no batch/v1 here).
    got = kubectl("get", "jobs").stdout.splitlines()
    ours = subprocess.run([sys.executable, "-m", "ketch.cli", "get", "jobs", "-n", "kube"],
                          env=ketch_server.env, capture_output=True, text=True, timeout=60,
                          check=True).stdout.splitlines()
    assert got[0].split() == ours[0].split() == ["NAME", "PHASE", "ATTEMPTS", "EXIT", "AGE"]
    assert got[1].split()[:4] == ours[1].split()[:4] == ["hello", "Succeeded", "1", "0"]
    wide = kubectl("get", "kj", "-o", "wide").stdout.splitlines()[0].split()
    assert "STARTED" in wide and "REASON" in wide

    assert "hello from ketch on" in kubectl("logs", "hello-1").stdout
    pods = kubectl("get", "pods").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:4] == ["hello-1", "0/1", "Completed", "0"]
    described = kubectl("describe", "jobs.ketch.dev", "hello").stdout
    assert "Events:" in described and "Started" in described

    assert 'job.ketch.dev "hello" deleted' in kubectl("delete", "jobs.ketch.dev",
                                                       "hello").stdout
    gone = kubectl("get", "jobs.ketch.dev", "hello", ok=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr


def test_unknown_field_is_refused_with_its_path(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: bad}\n"
                        "spec:\n  command: [echo, hi]\n  resources: {cpu: '1', gpuz: 1}\n")
    refused = kubectl("apply", "-f", str(manifest), ok=False)
    assert refused.returncode == 1
    assert "spec.resources.gpuz" in refused.stderr and "unknown field" in refused.stderr
    assert kubectl("get", "jobs.ketch.dev", "-o", "name").stdout == ""


def test_pipeline_run_apply_and_watch(kubectl: Kubectl,
                                      watch: Callable[..., list[str]]) -> None:
    kubectl("apply", "-f", str(EXAMPLES / "pipelines" / "hello-run.yaml"))
    events = watch("get", "runs", "hello-run", "-w")
    wait_for(lambda: any("Succeeded" in line for line in events), timeout=90,
             message="kubectl get -w to show the run Succeeded")
    assert "hello from a pipeline step" in kubectl("logs", "hello-run-say-1").stdout
    assert kubectl("get", "pipelineruns.pipelines.ketch.dev", "hello-run", "-o",
                   "jsonpath={.status.phase}").stdout == "Succeeded"


def test_inference_service_apply_get_wait(kubectl: Kubectl, tmp_path: Path,
                                          stop_services: None) -> None:
    model = train_iris(tmp_path / "iris")
    manifest = tmp_path / "iris.yaml"
    manifest.write_text((EXAMPLES / "serving" / "iris.yaml").read_text().replace(
        "file:///tmp/ketch-models/iris", model.as_uri()))
    assert "inferenceservice.serving.kserve.io/iris created" in kubectl(
        "apply", "-f", str(manifest)).stdout
    assert kubectl("get", "isvc").stdout.splitlines()[1].split()[0] == "iris"
    kubectl("wait", "--for=condition=Ready", "isvc/iris", "--timeout=120s")
    assert kubectl("get", "isvc", "iris", "-o",
                   "jsonpath={.status.url}").stdout.startswith("http")
    # A model replica's log, found as KServe's own pods are: by the service's labels.
    replicas = kubectl("get", "pods", "-l",
                       "serving.kserve.io/inferenceservice=iris,component=predictor",
                       "-o", "name").stdout.split()
    assert replicas and all(name.startswith("pod/") for name in replicas)
    log = kubectl("logs", replicas[0]).stdout
    assert f"storage-initializer: resolving storageUri {model.as_uri()}" in log


def test_explain(kubectl: Kubectl) -> None:
    top = kubectl("explain", "jobs.ketch.dev").stdout
    assert "KIND:       Job" in top and "spec" in top
    spec = kubectl("explain", "jobs.ketch.dev.spec").stdout
    assert "command\t<[]string>" in spec and "backoffLimit\t<integer>" in spec
    assert "data\t<map[string]string>" in kubectl("explain", "configmaps").stdout
