"""@dsl.container_component with dsl.ContainerSpec, ConcatPlaceholder,
IfPresentPlaceholder, an OutputPath(str) parameter and an artifact path; run as a host
process where no container runtime exists."""

# ruff: noqa: UP045 - written as a KFP user writes it (typing
# names, Optional, list/dict defaults that kfp records as the parameters' defaults).

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.container_component
def greet(name: str, greeting: dsl.OutputPath(str), suffix: Optional[str] = None):
    return dsl.ContainerSpec(
        image="alpine:3.19",
        command=["sh", "-c",
                 dsl.ConcatPlaceholder(['mkdir -p "$(dirname "$0")" && printf "hello %s%s" ',
                                        '"$1" "$2" > "$0"']),
                 greeting],
        args=[name, dsl.IfPresentPlaceholder(input_name="suffix", then=[suffix],
                                             else_=["!"])],
    )


@dsl.container_component
def save(text: str, out: Output[Dataset]):
    return dsl.ContainerSpec(
        image="alpine:3.19",
        command=["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf "%s" "$0" > "$1"'],
        args=[text, out.path])


@dsl.component
def read(data: Input[Dataset]) -> str:
    with open(data.path) as fh:
        return fh.read()


@dsl.pipeline(name="container-component")
def container_component(name: str = "world") -> str:
    greeted = greet(name=name)
    saved = save(text=greeted.outputs["greeting"])
    return read(data=saved.outputs["out"]).output


EXPECTED = {
    "arguments": {"name": "world"},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": "hello world!"}},
    "tasks": {
        "greet": {"phase": "Succeeded",
                  "outputs": {"parameters": {"greeting": "hello world!"}}},
        "read": {"phase": "Succeeded", "outputs": {"parameters": {"Output": "hello world!"}}},
    },
}
