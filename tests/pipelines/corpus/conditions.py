"""dsl.If / dsl.Elif / dsl.Else on a task output and a pipeline parameter, with a
named branch; the untaken branches are Skipped."""

from kfp import dsl


@dsl.component
def score(value: int) -> int:
    return value * 10


@dsl.component
def say(message: str) -> str:
    return message


@dsl.pipeline(name="conditions")
def conditions(value: int = 4, mode: str = "strict"):
    scored = score(value=value)
    with dsl.If(scored.output > 50, name="high"):
        say(message="high")
    with dsl.Elif(scored.output > 20):
        say(message="medium")
    with dsl.Else():
        say(message="low")
    with dsl.If(mode == "strict"):
        say(message="strict mode")


EXPECTED = {
    "arguments": {"value": 4, "mode": "lenient"},
    "phase": "Succeeded",
    "tasks": {
        "score": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 40}}},
        "condition-branches-1": {"phase": "Succeeded", "tasks": {
            "condition-2": {"phase": "Skipped"},
            "condition-3": {"phase": "Succeeded", "tasks": {
                "say-2": {"phase": "Succeeded", "outputs": {"parameters": {"Output": "medium"}}},
            }},
            "condition-4": {"phase": "Skipped"},
        }},
        "condition-5": {"phase": "Skipped"},
    },
}
