"""dsl.OneOf: the output of whichever If/Else branch ran, for a parameter and an
artifact, consumed downstream and returned from the pipeline."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output


@dsl.component
def coin(heads: bool) -> str:
    return "heads" if heads else "tails"


@dsl.component
def label(text: str) -> str:
    return f"got {text}"


@dsl.component
def write(text: str, out: Output[Artifact]):
    with open(out.path, "w") as fh:
        fh.write(text)


@dsl.component
def read(data: Input[Artifact]) -> str:
    with open(data.path) as fh:
        return fh.read()


@dsl.pipeline(name="oneof")
def oneof(heads: bool = True) -> str:
    flipped = coin(heads=heads)
    with dsl.If(flipped.output == "heads"):
        heads_label = label(text="heads")
        heads_file = write(text="H")
    with dsl.Else():
        tails_label = label(text="tails")
        tails_file = write(text="T")
    read(data=dsl.OneOf(heads_file.outputs["out"], tails_file.outputs["out"]))
    return dsl.OneOf(heads_label.output, tails_label.output)


EXPECTED = {
    "arguments": {"heads": False},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": "got tails"}},
    "tasks": {
        "coin": {"phase": "Succeeded", "outputs": {"parameters": {"Output": "tails"}}},
        "condition-branches-1": {"phase": "Succeeded", "tasks": {
            "condition-2": {"phase": "Skipped"},
            "condition-3": {"phase": "Succeeded"},
        }},
        "read": {"phase": "Succeeded", "outputs": {"parameters": {"Output": "T"}}},
    },
}
