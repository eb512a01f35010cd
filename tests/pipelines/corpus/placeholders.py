"""Runtime placeholders passed as arguments (job name/id, task name/id, root, times)."""

from typing import NamedTuple

from kfp import dsl


@dsl.component
def who_am_i(job_name: str, job_id: str, task_name: str, task_id: str, root: str,
             created: str) -> NamedTuple("Who", [("task_name", str), ("filled", bool)]):
    from collections import namedtuple

    values = [job_name, job_id, task_name, task_id, root, created]
    filled = all(v and "{{$" not in v for v in values)
    return namedtuple("Who", ["task_name", "filled"])(task_name, filled)


@dsl.pipeline(name="placeholders")
def placeholders():
    who_am_i(job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
             job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
             task_name=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
             task_id=dsl.PIPELINE_TASK_ID_PLACEHOLDER,
             root=dsl.PIPELINE_ROOT_PLACEHOLDER,
             created=dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER)


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "tasks": {"who-am-i": {"phase": "Succeeded", "outputs": {"parameters": {
        "task_name": "who-am-i", "filled": True}}}},
}
