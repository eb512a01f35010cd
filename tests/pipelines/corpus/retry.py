"""PipelineTask.set_retry: a step that fails on its first attempt succeeds on the second."""

from kfp import dsl


@dsl.component
def flaky(marker_dir: str, run_id: str = dsl.PIPELINE_JOB_ID_PLACEHOLDER) -> int:
    import os

    marker = os.path.join(marker_dir, f"ketch-corpus-retry-{run_id}")
    if not os.path.exists(marker):
        os.makedirs(marker_dir, exist_ok=True)
        with open(marker, "w") as fh:
            fh.write("failed once")
        raise RuntimeError("first attempt fails on purpose")
    return 42


@dsl.pipeline(name="retry")
def retry(marker_dir: str = "/tmp") -> int:
    task = flaky(marker_dir=marker_dir)
    task.set_retry(num_retries=2, backoff_duration="0s", backoff_factor=1.0)
    return task.output


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": 42}},
    "tasks": {"flaky": {"phase": "Succeeded", "attempts": 2,
                        "outputs": {"parameters": {"Output": 42}}}},
}
