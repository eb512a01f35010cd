"""A pipeline used as a component of another (twice), its outputs consumed downstream."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component
def make(text: str, out: Output[Dataset]):
    with open(out.path, "w") as fh:
        fh.write(text)


@dsl.component
def length(data: Input[Dataset]) -> int:
    with open(data.path) as fh:
        return len(fh.read())


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="measure")
def measure(text: str) -> int:
    made = make(text=text)
    return length(data=made.outputs["out"]).output


@dsl.pipeline(name="nested")
def nested(first: str = "abc", second: str = "defgh") -> int:
    one = measure(text=first)
    two = measure(text=second)
    return add(a=one.output, b=two.output).output


EXPECTED = {
    "pipeline": "nested",
    "arguments": {},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": 8}},
    "tasks": {
        "measure": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 3}},
                    "tasks": {"length": {"phase": "Succeeded"}}},
        "measure-2": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 5}}},
        "add": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 8}}},
    },
}
