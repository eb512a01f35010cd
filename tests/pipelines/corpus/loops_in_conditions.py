"""Control flow nested: a loop inside a condition, a condition inside a loop reading the
loop item and an outer task output."""

# ruff: noqa: UP006, UP035, SIM117 - written as a KFP user writes it (typing
# names, Optional, list/dict defaults that kfp records as the parameters' defaults).

from typing import List

from kfp import dsl


@dsl.component
def numbers(count: int) -> List[int]:
    return list(range(count))


@dsl.component
def is_even(x: int) -> bool:
    return x % 2 == 0


@dsl.component
def record(x: int, base: int) -> int:
    return x + base


@dsl.pipeline(name="loops-in-conditions")
def loops_in_conditions(count: int = 4, enabled: bool = True):
    listed = numbers(count=count)
    with dsl.If(enabled == True):  # noqa: E712 - a pipeline condition, not Python truth
        with dsl.ParallelFor(listed.output, parallelism=3) as x:
            even = is_even(x=x)
            with dsl.If(even.output == True):  # noqa: E712
                record(x=x, base=count)


EXPECTED = {
    "arguments": {"count": 4, "enabled": True},
    "phase": "Succeeded",
    "tasks": {
        "numbers": {"phase": "Succeeded", "outputs": {"parameters": {"Output": [0, 1, 2, 3]}}},
        "condition-1": {"phase": "Succeeded"},
    },
}
