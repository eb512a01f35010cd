"""The deprecated dsl.Condition (same as dsl.If); loading it warns DeprecationWarning."""

from kfp import dsl


@dsl.component
def threshold() -> float:
    return 0.7


@dsl.component
def accept(value: float) -> str:
    return f"accepted {value}"


@dsl.pipeline(name="condition-legacy")
def condition_legacy(minimum: float = 0.5):
    measured = threshold()
    with dsl.Condition(measured.output >= minimum):
        accept(value=measured.output)


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "tasks": {
        "threshold": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 0.7}}},
        "condition-1": {"phase": "Succeeded", "tasks": {
            "accept": {"phase": "Succeeded",
                       "outputs": {"parameters": {"Output": "accepted 0.7"}}}}},
    },
}
