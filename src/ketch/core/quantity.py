"""Kubernetes resource quantities: ``500m`` CPU, ``512Mi`` / ``1G`` memory."""

from __future__ import annotations

import re

__all__ = ["parse_cpu", "parse_memory"]

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "E": 10**18, "m": 10**-3}


def _parse(value: str | int | float, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number or a quantity string")
    if isinstance(value, int | float):
        number, suffix = float(value), ""
    else:
        match = _QUANTITY.match(value)
        if not match:
            raise ValueError(f"{what} {value!r} is not a quantity (e.g. 500m, 2, 1.5Gi)")
        number, suffix = float(match.group(1)), match.group(2)
    factor = _BINARY.get(suffix) or _DECIMAL.get(suffix)
    if factor is None:
        raise ValueError(f"{what} {value!r} has unknown suffix {suffix!r}")
    if number < 0:
        raise ValueError(f"{what} must not be negative")
    return number * factor


def parse_cpu(value: str | int | float) -> float:
    """CPU cores: ``2``, ``0.5``, ``"500m"``."""
    return _parse(value, "cpu")


def parse_memory(value: str | int | float) -> int:
    """Bytes: ``1073741824``, ``"1Gi"``, ``"512M"``."""
    return int(_parse(value, "memory"))
