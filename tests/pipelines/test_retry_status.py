"""A task with ``set_retry`` whose sibling fails while it is between attempts keeps
retrying, as a step already running finishes (Argo's fail-fast stops only new tasks):
its status is what really happened to it, never ``Skipped``/``UpstreamFailed``."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PIPELINE = textwrap.dedent('''
    from ketch import dsl

    @dsl.component
    def flaky(marker_dir: str, succeed_on: int) -> int:
        import os

        os.makedirs(marker_dir, exist_ok=True)
        attempt = len(os.listdir(marker_dir)) + 1
        open(os.path.join(marker_dir, f"attempt-{attempt}"), "w").close()
        if attempt < succeed_on:
            raise RuntimeError(f"attempt {attempt} fails on purpose")
        return attempt

    @dsl.component
    def fail_after_first_attempts(first: str, second: str):
        import os
        import time

        # Fail once both flaky tasks have begun their first attempt, so this failure
        # lands while they run or wait for their retry.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                os.path.exists(os.path.join(d, "attempt-1")) for d in (first, second)):
            time.sleep(0.02)
        raise RuntimeError("the sibling fails on purpose")

    @dsl.pipeline(name="retry-beside-a-failure")
    def retry_beside_a_failure(base: str):
        recovers = flaky(marker_dir=f"{base}/recovers", succeed_on=2)
        recovers.set_retry(num_retries=3, backoff_duration="1s")
        gives_up = flaky(marker_dir=f"{base}/gives-up", succeed_on=99)
        gives_up.set_retry(num_retries=2, backoff_duration="1s", backoff_factor=1.0)
        fail_after_first_attempts(first=f"{base}/recovers", second=f"{base}/gives-up")
''')


def test_retrying_task_reports_its_own_outcome_when_a_sibling_fails(client: Any,
                                                                    tmp_path: Path) -> None:
    pipeline = tmp_path / "retry_beside_a_failure.py"
    pipeline.write_text(PIPELINE)
    result = client.create_run_from_pipeline_package(
        pipeline, arguments={"base": str(tmp_path / "markers")}, enable_caching=False)
    run = result.wait_for_run_completion(timeout=120)
    assert run.status["phase"] == "Failed"
    tasks = run.status["tasks"]
    assert tasks["fail-after-first-attempts"]["phase"] == "Failed"

    recovers = tasks["flaky"]
    assert (recovers["phase"], recovers["attempts"]) == ("Succeeded", 2), recovers
    assert recovers["outputs"]["parameters"] == {"Output": 2}
    assert "reason" not in recovers

    gives_up = tasks["flaky-2"]
    assert (gives_up["phase"], gives_up["attempts"]) == ("Failed", 3), gives_up
    assert "attempt 3 fails on purpose" in gives_up["message"]
    assert "reason" not in gives_up
    assert sorted(p.name for p in (tmp_path / "markers" / "gives-up").iterdir()) == [
        "attempt-1", "attempt-2", "attempt-3"]


def test_cancel_between_attempts_says_cancelled_with_the_attempts(client: Any,
                                                                   tmp_path: Path) -> None:
    pipeline = tmp_path / "retry_beside_a_failure.py"
    pipeline.write_text(PIPELINE.replace('backoff_duration="1s"', 'backoff_duration="600s"'))
    result = client.create_run_from_pipeline_package(
        pipeline, arguments={"base": str(tmp_path / "markers")}, enable_caching=False)

    def waiting_for_retry() -> bool:
        tasks = client.get_run(result.run_id).status.get("tasks") or {}
        return all((tasks.get(t) or {}).get("attempts") == 1 and tasks[t]["phase"] == "Pending"
                   for t in ("flaky", "flaky-2"))

    wait_for(waiting_for_retry, timeout=60, message="both flaky tasks between attempts")
    client.terminate_run(result.run_id)
    run = result.wait_for_run_completion(timeout=60)
    assert run.status["phase"] == "Cancelled"
    for name in ("flaky", "flaky-2"):
        st = run.status["tasks"][name]
        assert (st["phase"], st["attempts"]) == ("Cancelled", 1), st
        assert "reason" not in st
