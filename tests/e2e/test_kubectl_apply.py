"""The real ``kubectl apply --server-side`` (v1.32 on PATH) against ``ketch up``, through
the kubeconfig ``ketch kubeconfig`` writes and with kubectl's default validation: create,
change, a conflict with another ``--field-manager`` (shown, exit code 1, nothing written),
``--force-conflicts`` taking the field over, and ``managedFields`` as ``kubectl get
--show-managed-fields`` prints them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import KubectlRun, ServerProcess, kubectl_env, kubectl_runner

pytestmark = pytest.mark.slow

Kubectl = KubectlRun

# A Job that sleeps, so it is still running (and its spec may change) through the test.
MANIFEST = """apiVersion: ketch.dev/v1
kind: Job
metadata:
  name: web
  labels: {{tier: {tier}}}
spec:
  command: [sleep, "600"]
"""


@pytest.fixture
def kubectl(ketch_server: ServerProcess, tmp_path: Path) -> Kubectl:
    return kubectl_runner(kubectl_env(ketch_server, tmp_path, "ssa"))


def test_kubectl_apply_server_side(kubectl: Kubectl, ketch_server: ServerProcess,
                                   tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"

    def apply(tier: str, *flags: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        manifest.write_text(MANIFEST.format(tier=tier))
        return kubectl("apply", "--server-side", "-f", str(manifest), *flags, ok=ok)

    def current() -> dict[str, object]:
        got = kubectl("get", "jobs.ketch.dev", "web", "-o", "json", "--show-managed-fields")
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)  # type: ignore[no-any-return]

    created = apply("front")
    assert created.returncode == 0, created.stderr
    assert "job.ketch.dev/web serverside-applied" in created.stdout
    changed = apply("middle")
    assert changed.returncode == 0, changed.stderr
    assert "serverside-applied" in changed.stdout
    obj = current()
    assert obj["metadata"]["labels"] == {"tier": "middle"}  # type: ignore[index]
    owners = {(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]}  # type: ignore[index]
    assert owners == {("kubectl", "Apply")}
    version = obj["metadata"]["resourceVersion"]  # type: ignore[index]

    conflict = apply("back", "--field-manager", "other", ok=False)
    assert conflict.returncode == 1
    assert 'conflict with "kubectl"' in conflict.stderr
    assert ".metadata.labels.tier" in conflict.stderr
    assert current()["metadata"]["resourceVersion"] == version  # type: ignore[index]

    forced = apply("back", "--field-manager", "other", "--force-conflicts")
    assert forced.returncode == 0, forced.stderr
    obj = current()
    assert obj["metadata"]["labels"] == {"tier": "back"}  # type: ignore[index]
    entries = {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"]}  # type: ignore[index]
    assert entries["other"]["f:metadata"] == {"f:labels": {"f:tier": {}}}
    # kubectl keeps the command (same value, shared), no longer the label.
    assert "f:metadata" not in entries["kubectl"]
    kubectl("delete", "jobs.ketch.dev", "web", "--wait=false")


def test_kubectl_client_side_apply_patch_types_and_the_upgrade_to_server_side(
        kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "api.yaml"
    manifest.write_text(MANIFEST.format(tier="a").replace("name: web", "name: api"))
    created = kubectl("apply", "-f", str(manifest))
    assert created.returncode == 0 and "job.ketch.dev/api created" in created.stdout

    def managers() -> dict[str, object]:
        got = kubectl("get", "jobs.ketch.dev", "api", "-o", "json", "--show-managed-fields")
        meta = json.loads(got.stdout)["metadata"]
        return {"finalizers": meta.get("finalizers"), "labels": meta.get("labels"),
                "owners": [(e["manager"], e["operation"]) for e in meta["managedFields"]]}

    assert managers()["owners"] == [("kubectl-client-side-apply", "Update")]
    strategic = kubectl("patch", "jobs.ketch.dev", "api",
                        "-p", '{"metadata":{"labels":{"x":"1"}}}', ok=False)
    assert strategic.returncode == 1
    assert "strategic merge patch is not supported" in strategic.stderr
    merged = kubectl("patch", "jobs.ketch.dev", "api", "--type=merge",
                     "-p", '{"metadata":{"labels":{"tier":"b"}}}')
    assert merged.returncode == 0, merged.stderr
    failed = kubectl("patch", "jobs.ketch.dev", "api", "--type=json",
                     "-p", '[{"op":"test","path":"/metadata/labels/tier","value":"zz"}]',
                     ok=False)
    assert failed.returncode == 1 and "/metadata/labels/tier" in failed.stderr
    added = kubectl("patch", "jobs.ketch.dev", "api", "--type=json",
                    "-p", '[{"op":"add","path":"/metadata/labels/x","value":"1"}]')
    assert added.returncode == 0, added.stderr
    state = managers()
    assert state["labels"] == {"tier": "b", "x": "1"}
    assert ("kubectl-patch", "Update") in state["owners"]  # type: ignore[operator]

    # The finalizer admission added is nobody's, so the apply leaves it.
    upgraded = kubectl("apply", "--server-side", "-f", str(manifest), "--force-conflicts")
    assert upgraded.returncode == 0, upgraded.stderr
    state = managers()
    assert state["finalizers"] == ["ketch.dev/job-cleanup"]
    assert ("kubectl", "Apply") in state["owners"]  # type: ignore[operator]
    assert state["labels"] == {"tier": "a", "x": "1"}, state
    kubectl("delete", "jobs.ketch.dev", "api", "--wait=false")
