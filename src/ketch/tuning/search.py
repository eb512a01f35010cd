"""Search spaces for ``client.tuning.tune``, as ``kubeflow.katib.search`` writes them:
each function returns the Experiment parameter it stands for (less its name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["categorical", "double", "int"]

_builtin_int = int


def double(min: float, max: float, step: float | None = None,
           distribution: str | None = None) -> dict[str, Any]:
    space: dict[str, Any] = {"min": str(min), "max": str(max)}
    if step is not None:
        space["step"] = str(step)
    if distribution is not None:
        space["distribution"] = distribution
    return {"parameterType": "double", "feasibleSpace": space}


def int(min: _builtin_int, max: _builtin_int, step: _builtin_int | None = None,
        distribution: str | None = None) -> dict[str, Any]:
    space: dict[str, Any] = {"min": str(min), "max": str(max)}
    if step is not None:
        space["step"] = str(step)
    if distribution is not None:
        space["distribution"] = distribution
    return {"parameterType": "int", "feasibleSpace": space}


def categorical(list: Sequence[Any]) -> dict[str, Any]:
    # ``list``: katib.search.categorical's own argument name.
    return {"parameterType": "categorical", "feasibleSpace": {"list": [str(v) for v in list]}}
