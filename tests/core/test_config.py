"""KETCH_CPUS / KETCH_MEMORY / KETCH_GPUS: every documented form works, a bad one stops
the control plane before anything starts, naming the variable."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ServerProcess, ketch_env
from ketch.core.artifacts import ArtifactStore
from ketch.core.config import Settings
from ketch.core.errors import InvalidError
from ketch.core.quantity import parse_cpu, parse_memory
from ketch.core.runtime import make_executor


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"KETCH_HOME": str(tmp_path / "home"), **env})


@pytest.mark.parametrize(("text", "cores"), [
    ("8", 8.0), ("0.5", 0.5), ("1.5", 1.5), ("500m", 0.5), (".5", 0.5), ("+2", 2.0),
    ("1e1", 10.0), (" 4 ", 4.0),
])
def test_every_cpu_form_is_read_as_cores(tmp_path: Path, text: str, cores: float) -> None:
    assert settings(tmp_path, KETCH_CPUS=text).cpu_slots == pytest.approx(cores)


@pytest.mark.parametrize(("text", "size"), [
    ("16Gi", 16 << 30), ("512Mi", 512 << 20), ("512M", 512_000_000), ("1073741824", 1 << 30),
    ("1.5Gi", 3 << 29), ("2k", 2000), ("1e9", 10**9),
])
def test_every_memory_form_is_read_as_bytes(tmp_path: Path, text: str, size: int) -> None:
    assert settings(tmp_path, KETCH_MEMORY=text).memory_slots == size


@pytest.mark.parametrize(("text", "ids"), [
    ("0,1", ["0", "1"]), ("0", ["0"]), (",", []), (" 2 , 3 ", ["2", "3"]),
    ("GPU-6f2a1c3e-8a1b-4c2d-9e0f-123456789abc", ["GPU-6f2a1c3e-8a1b-4c2d-9e0f-123456789abc"]),
    ("MIG-GPU-6f2a1c3e/1/0", ["MIG-GPU-6f2a1c3e/1/0"]),
])
def test_gpu_ids(tmp_path: Path, text: str, ids: list[str]) -> None:
    assert settings(tmp_path, KETCH_GPUS=text).gpu_ids == ids


def test_unset_or_empty_means_the_backends_default(tmp_path: Path) -> None:
    for s in (settings(tmp_path), settings(tmp_path, KETCH_CPUS="", KETCH_MEMORY=" ",
                                           KETCH_GPUS="")):
        assert (s.cpu_slots, s.memory_slots, s.gpu_ids) == (None, None, None)


@pytest.mark.parametrize(("name", "text", "says"), [
    ("KETCH_CPUS", "lots", "KETCH_CPUS='lots' is not a CPU quantity"),
    ("KETCH_CPUS", "2 cores", "KETCH_CPUS='2 cores' is not a CPU quantity"),
    ("KETCH_CPUS", "-1", "KETCH_CPUS='-1' is not a CPU quantity"),
    ("KETCH_CPUS", "0", "KETCH_CPUS='0' must be more than 0 cores"),
    ("KETCH_CPUS", "4x", "KETCH_CPUS='4x' is not a CPU quantity"),
    ("KETCH_MEMORY", "16GB", "KETCH_MEMORY='16GB' is not a memory quantity"),
    ("KETCH_MEMORY", "lots", "KETCH_MEMORY='lots' is not a memory quantity"),
    ("KETCH_MEMORY", "0", "KETCH_MEMORY='0' must be at least 1 byte"),
    ("KETCH_MEMORY", "1e999", "KETCH_MEMORY='1e999' is not a memory quantity"),
    ("KETCH_GPUS", "0;1", "KETCH_GPUS='0;1': '0;1' is not a GPU id"),
    ("KETCH_GPUS", "all", "KETCH_GPUS='all': 'all' is not a GPU id"),
    ("KETCH_GPUS", "0,0", "KETCH_GPUS='0,0' names a GPU twice"),
])
def test_a_bad_value_is_refused_naming_the_variable(tmp_path: Path, name: str, text: str,
                                                    says: str) -> None:
    with pytest.raises(InvalidError) as err:
        settings(tmp_path, **{name: text})
    assert err.value.message.startswith(says)
    # Settings made in code (dataclasses.replace, tests) are held to the same rule.
    good = settings(tmp_path)
    with pytest.raises(InvalidError, match=name):
        dataclasses.replace(good, **{name.removeprefix("KETCH_").lower(): text})  # type: ignore[arg-type]


def test_the_local_executor_gets_the_parsed_slots(tmp_path: Path) -> None:
    s = settings(tmp_path, KETCH_CPUS="500m", KETCH_MEMORY="512Mi", KETCH_GPUS=",")
    ex = make_executor(s, ArtifactStore(s.artifacts_uri))
    try:
        capacity = ex.capacity()
        assert (capacity.cpu, capacity.memory, capacity.gpu) == (0.5, 512 << 20, 0)
    finally:
        ex.close()


def test_quantity_parser_refuses_what_is_not_finite() -> None:
    for bad in (float("inf"), float("nan"), "1e400"):
        with pytest.raises(ValueError):
            parse_cpu(bad)
    with pytest.raises(ValueError, match="unknown suffix 'GB'"):
        parse_memory("1GB")
    assert parse_cpu("100u") == pytest.approx(1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["up", "server"])
def test_the_server_refuses_a_bad_cpu_count_before_anything_starts(tmp_path: Path,
                                                                   command: str) -> None:
    home = tmp_path / "home"
    env = ketch_env(home, KETCH_CPUS="lots")
    done = subprocess.run([sys.executable, "-m", "ketch.cli", command, "--port", "0"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: KETCH_CPUS='lots' is not a CPU quantity: use cores such as 8, 1.5 or 500m"]
    assert not home.exists(), "nothing (lock, database, server.json) was created"


@pytest.mark.slow
def test_a_client_refuses_to_start_a_background_server_with_a_bad_value(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = ketch_env(home, KETCH_MEMORY="16GB")
    done = subprocess.run([sys.executable, "-m", "ketch.cli", "get", "jobs"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith("error: KETCH_MEMORY='16GB' is not a "
                                                  "memory quantity")
    assert not (home / "server.json").exists()


@pytest.mark.slow
def test_a_server_with_half_a_core_runs_jobs(tmp_path: Path, server_factory: object) -> None:
    """``500m`` (a documented form) starts every component's controller, and a Job that
    asks for a quarter core runs."""
    server: ServerProcess = server_factory(  # type: ignore[operator]
        tmp_path / "home", command="up", KETCH_CPUS="500m", KETCH_MEMORY="1Gi", KETCH_GPUS=",")
    job = tmp_path / "job.yaml"
    job.write_text("apiVersion: ketch.dev/v1\nkind: Job\nmetadata: {name: quarter}\n"
                   "spec: {command: [python3, -c, 'print(42)'], "
                   "resources: {cpu: 250m, memory: 64Mi}}\n")

    def ketch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                              capture_output=True, text=True, timeout=90, check=False)

    assert ketch("apply", "-f", str(job)).returncode == 0
    waited = ketch("wait", "job", "quarter", "--for=condition=Succeeded", "--timeout",
                   "60s")
    assert waited.returncode == 0, waited.stderr
    assert ketch("logs", "job", "quarter").stdout == "42\n"


def test_the_unit_index_is_shared_by_the_control_planes_of_one_database(tmp_path: Path) -> None:
    """Homes on one shared database find each other's units (one index per database,
    whatever password the URL carries); a home's own SQLite database needs none."""
    own = Settings.from_env({"KETCH_HOME": str(tmp_path / "a")})
    assert own.unit_index_dir is None
    url = "postgresql+psycopg://ketch:{}@db:5432/ketch"
    first = Settings.from_env({"KETCH_HOME": str(tmp_path / "a"),
                               "KETCH_DATABASE_URL": url.format("one")})
    second = Settings.from_env({"KETCH_HOME": str(tmp_path / "b"),
                                "KETCH_DATABASE_URL": url.format("two")})
    other = Settings.from_env({"KETCH_HOME": str(tmp_path / "b"),
                               "KETCH_DATABASE_URL": url.format("one") + "2"})
    assert first.unit_index_dir is not None
    assert first.unit_index_dir == second.unit_index_dir != other.unit_index_dir
    assert "one" not in str(first.unit_index_dir)
    chosen = Settings.from_env({"KETCH_HOME": str(tmp_path / "a"),
                                "KETCH_UNIT_INDEX": str(tmp_path / "index")})
    assert chosen.unit_index_dir == tmp_path / "index"
