"""kfp's rule for making a name unique: append ``-2``, ``-3``... until it is free."""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["unique_name"]


def unique_name(name: str, taken: Collection[str]) -> str:
    """``name`` if free in ``taken``, else the first free ``name-N`` (N from 2)."""
    if name not in taken:
        return name
    index = 2
    while f"{name}-{index}" in taken:
        index += 1
    return f"{name}-{index}"
