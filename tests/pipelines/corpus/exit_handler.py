"""dsl.ExitHandler: a step inside fails, the run fails, and the exit task still runs and
sees the failure through PipelineTaskFinalStatus."""

from kfp import dsl
from kfp.dsl import PipelineTaskFinalStatus


@dsl.component
def fail_with(message: str):
    raise RuntimeError(message)


@dsl.component
def never_runs() -> str:
    return "unreachable"


@dsl.component
def report(status: PipelineTaskFinalStatus) -> str:
    return f"{status.state}:{status.pipeline_task_name}"


@dsl.pipeline(name="exit-handler")
def exit_handler(message: str = "boom"):
    cleanup = report()
    with dsl.ExitHandler(cleanup, name="guarded"):
        failed = fail_with(message=message)
        never_runs().after(failed)


EXPECTED = {
    "arguments": {"message": "boom"},
    "phase": "Failed",
    "tasks": {
        "exit-handler-1": {"phase": "Failed", "tasks": {
            "fail-with": {"phase": "Failed"},
        }},
        "report": {"phase": "Succeeded"},
    },
    # The failing step's traceback names the user's exception.
    "logs_contain": {"fail-with": "RuntimeError: boom"},
}
