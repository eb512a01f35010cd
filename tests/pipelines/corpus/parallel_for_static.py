"""dsl.ParallelFor over constant lists (numbers, and dicts read field by field), with a
parallelism limit, fanned in with dsl.Collected."""

# ruff: noqa: UP006, UP035 - written as a KFP user writes it (typing
# names, Optional, list/dict defaults that kfp records as the parameters' defaults).

from typing import List

from kfp import dsl


@dsl.component
def square(x: int) -> int:
    return x * x


@dsl.component
def multiply(a: int, b: int) -> int:
    return a * b


@dsl.component
def total(values: List[int]) -> int:
    return sum(values)


@dsl.pipeline(name="parallel-for-static")
def parallel_for_static() -> int:
    with dsl.ParallelFor([1, 2, 3, 4], parallelism=2) as x:
        squared = square(x=x)
    with dsl.ParallelFor([{"a": 1, "b": 10}, {"a": 2, "b": 20}]) as pair:
        product = multiply(a=pair.a, b=pair.b)
    total(values=dsl.Collected(product.output))
    summed = total(values=dsl.Collected(squared.output))
    return summed.output


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": 30}},
    "tasks": {
        "for-loop-2": {"phase": "Succeeded"},
        "for-loop-4": {"phase": "Succeeded"},
        "total": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 50}}},
        "total-2": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 30}}},
    },
}
