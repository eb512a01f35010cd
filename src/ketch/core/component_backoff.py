"""ONE backoff formula for every component: ``min(base * factor ** (n - 1), cap)``.

Kubernetes' shapes: a Job's retries (10 s doubling to 6 min there, 1 s to 60 s here),
a workqueue's per-key failures (5 ms doubling), KFP's ``retryPolicy`` (backoffDuration,
backoffFactor, backoffMaxDuration) all are this one curve with other constants.
"""

from __future__ import annotations

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, *, base: float, cap: float, factor: float = 2.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1: after the first failure).

    ``base`` for the first, multiplied by ``factor`` for each further one, never more
    than ``cap``; a huge ``attempt`` gives ``cap``, not an overflow."""
    if attempt < 1:
        raise ValueError(f"backoff attempt {attempt!r}: attempts count from 1")
    if base < 0 or cap < 0:
        raise ValueError(f"backoff base {base!r} and cap {cap!r} must not be negative")
    if factor <= 0:
        raise ValueError(f"backoff factor {factor!r} must be positive")
    try:
        delay = base * factor ** (attempt - 1)
    except OverflowError:
        return cap
    return min(delay, cap)
