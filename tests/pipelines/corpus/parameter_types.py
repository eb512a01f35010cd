"""Every parameter type in and out: str, int, float, bool, list, dict, Optional, defaults,
and NamedTuple outputs consumed by name."""

# ruff: noqa: UP006, UP035, UP045, B006 - written as a KFP user writes it (typing
# names, Optional, list/dict defaults that kfp records as the parameters' defaults).

from typing import Dict, List, NamedTuple, Optional

from kfp import dsl


@dsl.component
def describe(text: str, count: int, ratio: float, flag: bool, items: List[int],
             mapping: Dict[str, int], note: Optional[str] = None,
             scale: float = 2.0) -> NamedTuple("Described", [("summary", str), ("total", int),
                                                              ("scaled", float), ("ok", bool),
                                                              ("doubled", list),
                                                              ("keys", dict)]):
    from collections import namedtuple

    out = namedtuple("Described", ["summary", "total", "scaled", "ok", "doubled", "keys"])
    summary = f"{text}:{count}:{note}"
    return out(summary, count + sum(items) + sum(mapping.values()), ratio * scale, not flag,
               [i * 2 for i in items], {k: v + 1 for k, v in mapping.items()})


@dsl.component
def join(summary: str, total: int, ok: bool) -> str:
    return f"{summary}|{total}|{ok}"


@dsl.pipeline(name="parameter-types")
def parameter_types(text: str = "hi", count: int = 2, ratio: float = 0.25, flag: bool = True,
                    items: list = [1, 2], mapping: dict = {"a": 1},
                    note: Optional[str] = None) -> str:
    described = describe(text=text, count=count, ratio=ratio, flag=flag, items=items,
                         mapping=mapping)
    joined = join(summary=described.outputs["summary"], total=described.outputs["total"],
                  ok=described.outputs["ok"])
    return joined.output


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": "hi:2:None|6|False"}},
    "tasks": {
        "describe": {"phase": "Succeeded", "outputs": {"parameters": {
            "summary": "hi:2:None", "total": 6, "scaled": 0.5, "ok": False,
            "doubled": [2, 4], "keys": {"a": 2}}}},
        "join": {"phase": "Succeeded", "outputs": {"parameters": {"Output": "hi:2:None|6|False"}}},
    },
}
