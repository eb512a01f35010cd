"""The real ``kubectl`` (v1.32 on PATH) on ketch's core kinds and pods, through the
kubeconfig ``ketch kubeconfig`` writes: ``get pods``, ``logs``, ``delete pod`` (which
waits until the pod is gone), ``describe`` showing events, ``create -f`` of a ConfigMap
and a Secret."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess, kubectl_env, kubectl_runner, wait_for

pytestmark = pytest.mark.slow

JOBS = "/apis/ketch.dev/v1/namespaces/kube/jobs"


@pytest.fixture
def kubectl(ketch_server: ServerProcess, tmp_path: Path) -> Callable[..., str]:
    """``kubectl(*args)``: its stdout, asserting it exited 0."""
    run = kubectl_runner(kubectl_env(ketch_server, tmp_path, "kube"))
    return lambda *args: run(*args).stdout


def test_kubectl_pods_logs_delete_describe(kubectl: Callable[..., str], ketch_server: ServerProcess,
                                           tmp_path: Path) -> None:
    run = kubectl
    code = "import time; [print(f'line {i}') for i in range(5)]; " \
           "import sys; sys.stdout.flush(); time.sleep(60)"
    job = {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "k"},
           "spec": {"command": [sys.executable, "-c", code], "backoffLimit": 1}}
    assert httpx.post(ketch_server.url + JOBS, json=job).status_code == 201
    wait_for(lambda: "k-1" in run("get", "pods", "-o", "name"), message="pod k-1")
    wait_for(lambda: run("logs", "k-1", "--tail=2") == "line 3\nline 4\n",
             message="the pod's last two lines")
    assert run("get", "pod", "k-1", "-o", "jsonpath={.metadata.labels.job-name}") == "k"
    assert "deleted" in run("delete", "pod", "k-1")
    wait_for(lambda: "k-2" in run("get", "pods", "-o", "name"), message="the retry's pod")
    described = run("describe", "jobs.ketch.dev", "k")
    assert "Events:" in described and "Started" in described and "(x2 over" in described
    httpx.delete(f"{ketch_server.url}{JOBS}/k")

    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                        "data: {lr: '0.1'}\n---\napiVersion: v1\nkind: Secret\n"
                        "metadata: {name: s}\nstringData: {token: abc}\n")
    run("create", "-f", str(manifest))
    assert run("get", "configmap", "c", "-o", "jsonpath={.data.lr}") == "0.1"
    assert run("get", "secret", "s", "-o", "jsonpath={.data.token}") == "YWJj"
