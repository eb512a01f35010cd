"""The corpus runs in ketch with the expected results: each pipeline compiled by the
real ``kfp==2.16.1`` (and, separately, by ``ketch.compiler`` from the same file with
only the import changed), submitted as a PipelineRun, and its finished status checked
against the file's ``EXPECTED`` (phase, pipeline outputs, per-task phases and outputs,
nested DAGs, attempts, log lines)."""

from __future__ import annotations

import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _kfp import corpus_files, load_expected
from conftest import start_server, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CORPUS = sorted(p.name for p in corpus_files())


def _ketch_ir(path: Path, name: str | None) -> dict[str, Any]:
    """ketch's own compiler on the file, as a user would after changing the import."""
    from ketch.pipelines.compiler import load_pipeline_file

    with warnings.catch_warnings():
        # dsl.Condition warns that it is deprecated, as kfp's does; the corpus uses it.
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_pipeline_file(path, name)


def _run_name(source: str, file: str) -> str:
    return f"{source}-{file.removesuffix('.py').replace('_', '-')}"


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory: pytest.TempPathFactory,
                  kfp_corpus_ir: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every corpus pipeline, both compilations, submitted at once to one server."""
    server = start_server(tmp_path_factory.mktemp("corpus") / "home")
    try:
        with Client(server.url) as client:
            names = []
            for path in corpus_files():
                expected = load_expected(path)
                for source in ("kfp", "ketch"):
                    ir = (kfp_corpus_ir[path.name] if source == "kfp"
                          else _ketch_ir(path, expected.get("pipeline")))
                    name = _run_name(source, path.name)
                    client.create({"apiVersion": "pipelines.ketch.dev/v1",
                                   "kind": "PipelineRun", "metadata": {"name": name},
                                   "spec": {"pipelineSpec": ir, "caching": False,
                                            "arguments": expected.get("arguments", {})}})
                    names.append(name)

            def all_done() -> dict[str, Any] | None:
                runs = {n: client.get("pipelinerun", n) for n in names}
                if all(r.status.get("phase") in ("Succeeded", "Failed", "Cancelled")
                       for r in runs.values()):
                    return runs
                return None

            runs = wait_for(all_done, timeout=480, interval=0.5, message="every corpus run")
            logs = {}
            for name in names:
                logs[name] = b"".join(client.logs("pipelinerun", name)).decode()
            yield {"runs": runs, "logs": logs}
    finally:
        server.kill(signal.SIGTERM)


def _matches(expected: Any, actual: Any, where: str) -> list[str]:
    """Where ``actual`` differs from ``expected`` (a dict matches on the keys it names)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, got {actual!r}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing (have {sorted(actual)})")
            else:
                problems += _matches(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list) and expected and isinstance(expected[0], dict):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for p in _matches(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


@pytest.mark.parametrize("source", ["kfp", "ketch"])
@pytest.mark.parametrize("file", CORPUS)
def test_corpus_pipeline_runs_with_expected_results(file: str, source: str,
                                                    finished_runs: dict[str, Any]) -> None:
    expected = load_expected(next(p for p in corpus_files() if p.name == file))
    name = _run_name(source, file)
    run = finished_runs["runs"][name]
    status = run.status
    want = {k: expected[k] for k in ("phase", "outputs", "tasks") if k in expected}
    problems = _matches(want, status, "status")
    assert not problems, (f"{name}: " + "\n".join(problems)
                          + f"\nmessage: {status.get('message')}")
    for task, text in (expected.get("logs_contain") or {}).items():
        # Lines are prefixed with the task's path: [exit-handler-1/fail-with] ...
        lines = [line for line in finished_runs["logs"][name].splitlines()
                 if line.startswith((f"[{task}]", "[")) and f"{task}] " in line]
        assert any(text in line for line in lines), finished_runs["logs"][name][-2000:]
