"""Search spaces for ``client.tuning.tune``, as ``kubeflow.katib.search`` writes them:
each function returns the Experiment parameter it stands for (less its name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["categorical", "double", "int"]

_builtin_int = int


def _range(kind: str, low: object, high: object, step: object,
           distribution: str | None) -> dict[str, Any]:
    space: dict[str, Any] = {"min": str(low), "max": str(high)}
    if step is not None:
        space["step"] = str(step)
    if distribution is not None:
        space["distribution"] = distribution
    return {"parameterType": kind, "feasibleSpace": space}


def double(min: float, max: float, step: float | None = None,
           distribution: str | None = None) -> dict[str, Any]:
    return _range("double", min, max, step, distribution)


def int(min: _builtin_int, max: _builtin_int, step: _builtin_int | None = None,
        distribution: str | None = None) -> dict[str, Any]:
    return _range("int", min, max, step, distribution)


def categorical(list: Sequence[Any]) -> dict[str, Any]:
    # ``list``: katib.search.categorical's own argument name.
    return {"parameterType": "categorical", "feasibleSpace": {"list": [str(v) for v in list]}}
