"""``ketch kubeconfig`` with a token: the file holds it (mode 0600, read back by the real
kubectl), the output never shows it, and an http:// URL gets the warning that kubectl
will not send it there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TOKEN = "tok-5f3a9c"


def _kubeconfig(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env.update(KETCH_HOME=str(tmp_path / "home"), KETCH_TOKEN=TOKEN, HOME=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "ketch.cli", "kubeconfig", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("url", ["https://ketch.example:8443", "http://10.0.0.5:8080"])
def test_token_in_the_file_only(tmp_path: Path, url: str) -> None:
    done = _kubeconfig(tmp_path, "--server", url, "-n", "team-a")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "home" / "kubeconfig"  # the default: $KETCH_HOME/kubeconfig
    assert f"export KUBECONFIG={path}" in done.stdout
    assert TOKEN not in done.stdout + done.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["users"][0]["user"] == {"token": TOKEN}
    assert config["clusters"][0]["cluster"]["server"] == url
    assert config["contexts"][0]["context"]["namespace"] == "team-a"
    warned = "kubectl sends credentials only to https://" in done.stderr
    assert warned == url.startswith("http://")
    if shutil.which("kubectl"):
        seen = subprocess.run(["kubectl", "config", "view", "--minify", "-o",
                               "jsonpath={.contexts[0].context.namespace}"],
                              env={**os.environ, "KUBECONFIG": str(path), "HOME": str(tmp_path)},
                              capture_output=True, text=True, timeout=30, check=True)
        assert seen.stdout == "team-a"


def test_output_path_replaces_a_wider_file(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text("old")
    path.chmod(0o644)
    assert _kubeconfig(tmp_path, "--server", "https://k:1", "-o", str(path)).returncode == 0
    assert path.stat().st_mode & 0o777 == 0o600 and "old" not in path.read_text()
