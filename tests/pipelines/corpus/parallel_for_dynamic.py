"""dsl.ParallelFor over a list produced by a task and over a list pipeline parameter;
artifacts made per iteration fanned in as Input[List[Dataset]]."""

# ruff: noqa: UP006, UP035, B006 - written as a KFP user writes it (typing
# names, Optional, list/dict defaults that kfp records as the parameters' defaults).

from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component
def make_names(count: int) -> List[str]:
    return [f"name-{i}" for i in range(count)]


@dsl.component
def write(name: str, out: Output[Dataset]):
    with open(out.path, "w") as fh:
        fh.write(name)
    out.metadata["name"] = name


@dsl.component
def read_all(datasets: Input[List[Dataset]]) -> str:
    texts = []
    for dataset in datasets:
        with open(dataset.path) as fh:
            texts.append(fh.read())
    return ",".join(sorted(texts))


@dsl.component
def shout(word: str) -> str:
    return word.upper()


@dsl.component
def join(words: List[str]) -> str:
    return " ".join(sorted(words))


@dsl.pipeline(name="parallel-for-dynamic")
def parallel_for_dynamic(count: int = 3, words: List[str] = ["b", "a"]) -> str:
    names = make_names(count=count)
    with dsl.ParallelFor(names.output) as name:
        written = write(name=name)
    read_all(datasets=dsl.Collected(written.outputs["out"]))
    with dsl.ParallelFor(words) as word:
        shouted = shout(word=word)
    joined = join(words=dsl.Collected(shouted.output))
    return joined.output


EXPECTED = {
    "arguments": {"count": 3},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": "A B"}},
    "tasks": {
        "make-names": {"phase": "Succeeded",
                       "outputs": {"parameters": {"Output": ["name-0", "name-1", "name-2"]}}},
        "read-all": {"phase": "Succeeded",
                     "outputs": {"parameters": {"Output": "name-0,name-1,name-2"}}},
        "join": {"phase": "Succeeded", "outputs": {"parameters": {"Output": "A B"}}},
    },
}
