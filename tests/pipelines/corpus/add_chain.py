"""Two chained lightweight components; pipeline parameters with defaults; a pipeline output."""

from kfp import dsl


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="add-chain", description="Adds three numbers in two steps.")
def add_chain(a: int = 1, b: int = 2, c: int = 4) -> int:
    first = add(a=a, b=b)
    second = add(a=first.output, b=c)
    return second.output


EXPECTED = {
    "arguments": {"a": 1, "b": 2},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": 7}},
    "tasks": {
        "add": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 3}}},
        "add-2": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 7}}},
    },
}
