"""Kubernetes resource quantities: ``500m`` CPU, ``512Mi`` / ``1G`` memory, ``1e3``.

The grammar is Kubernetes' (``resource.Quantity``): a non-negative decimal
number (``2``, ``1.5``, ``.5``, a leading ``+``) then a binary suffix (``Ki`` ..
``Ei``), a decimal one (``n u m k M G T P E``) or a decimal exponent (``e3``).
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_cpu", "parse_memory"]

_QUANTITY = re.compile(
    r"^\s*\+?(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+)|(?P<suffix>[A-Za-z]*))\s*$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "E": 10**18, "m": 10**-3, "u": 10**-6, "n": 10**-9}


def _parse(value: str | int | float, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number or a quantity string")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"{what} {value!r} is not a finite number")
        number, factor = float(value), 1.0
    else:
        match = _QUANTITY.match(value)
        if not match:
            raise ValueError(f"{what} {value!r} is not a quantity (e.g. 500m, 2, 1.5Gi)")
        number = float(match.group("number"))
        if match.group("exponent") is not None:
            try:
                factor = 10.0 ** int(match.group("exponent"))
            except OverflowError:
                raise ValueError(f"{what} {value!r} is too large") from None
        else:
            suffix = match.group("suffix")
            known = _BINARY.get(suffix) or _DECIMAL.get(suffix)
            if known is None:
                raise ValueError(f"{what} {value!r} has unknown suffix {suffix!r}")
            factor = float(known)
    if number < 0:
        raise ValueError(f"{what} must not be negative")
    result = number * factor
    if not math.isfinite(result):
        raise ValueError(f"{what} {value!r} is too large")
    return result


def parse_cpu(value: str | int | float) -> float:
    """CPU cores: ``2``, ``0.5``, ``"500m"``."""
    return _parse(value, "cpu")


def parse_memory(value: str | int | float) -> int:
    """Bytes: ``1073741824``, ``"1Gi"``, ``"512M"``."""
    return int(_parse(value, "memory"))
