"""How many replicas a revision wants: Knative's KPA, on one machine.

The front measures, per revision and per second, the time-weighted average
concurrency (requests in flight plus queued) and the request count. From those:

* ``stable`` is the average over the stable window (``autoscaling.knative.dev/window``,
  60 s by default) and ``panic`` the average over the panic window (10% of it);
* the wanted count is ``ceil(metric / scaleTarget)``;
* **panic mode** starts when the panic window alone wants twice the replicas that are
  ready: the count then follows the panic window up at once and does not go down until
  a whole stable window passes without panic, so bursts scale up fast;
* going down follows the stable average, so a revision scales down only once the
  load has been lower for a stable window, and at most halves per step (Knative's
  max scale-down rate);
* with ``minReplicas: 0`` a revision that saw no request for a whole stable window
  (plus ``autoscaling.knative.dev/scale-to-zero-pod-retention-period``) goes to zero,
  and any queued request brings it back to at least one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ScalePolicy", "ScaleState", "desired_replicas"]


@dataclass(frozen=True)
class ScalePolicy:
    """The knobs, resolved from the InferenceService (see ``_controller.scale_policy``)."""

    min_replicas: int = 1
    max_replicas: int = 1
    metric: str = "concurrency"  # or "rps"
    target: float = 100.0  # per replica, in the metric's unit
    window: float = 60.0  # seconds
    panic_window_percentage: float = 10.0
    panic_threshold: float = 2.0  # the panic window wanting 200% of ready replicas
    scale_down_rate: float = 2.0
    scale_to_zero_retention: float = 0.0


@dataclass
class ScaleState:
    """What the autoscaler remembers between decisions (in memory; a restarted
    control plane starts a fresh window, as a restarted Knative autoscaler does)."""

    panic_since: float | None = None
    panic_high: int = 0
    idle_since: float | None = None


def desired_replicas(policy: ScalePolicy, state: ScaleState, *, now: float, current: int,
                     ready: int, samples: list[float], queued: int) -> int:
    """The replica count this revision should run now.

    Args:
        policy: The revision's scaling knobs.
        state: Carried from the previous decision; updated in place.
        now: A monotonic clock reading, seconds.
        current: Replicas running or starting.
        ready: Replicas ready (the base for panic and scale-down rate).
        samples: The metric per second, oldest first, newest last (at least the
            stable window where available).
        queued: Requests waiting in the front for a replica now.
    """
    window = max(1, int(policy.window))
    panic_len = max(1, int(policy.window * policy.panic_window_percentage / 100))
    stable_samples = samples[-window:]
    stable = sum(stable_samples) / len(stable_samples) if stable_samples else 0.0
    panic_samples = samples[-panic_len:]
    panic = sum(panic_samples) / len(panic_samples) if panic_samples else 0.0
    target = policy.target if policy.target > 0 else 1.0
    want_stable = math.ceil(stable / target - 1e-9)
    want_panic = math.ceil(panic / target - 1e-9)

    base = max(ready, 1)
    if ready and want_panic / base >= policy.panic_threshold:
        if state.panic_since is None:
            state.panic_high = 0
        state.panic_since = now
    elif state.panic_since is not None and now - state.panic_since > policy.window:
        state.panic_since = None
        state.panic_high = 0
    if state.panic_since is not None:
        # Never down while panicking, and follow the panic window up at once.
        state.panic_high = max(state.panic_high, want_panic, current)
        desired = state.panic_high
    else:
        desired = want_stable
        if ready > 1 and desired < ready:  # (from one replica, zero is a step of its own)
            desired = max(desired, math.ceil(ready / policy.scale_down_rate))

    if desired <= 0 < current:
        # Zero only after a whole window without traffic (and the retention period).
        quiet = len(stable_samples) >= window and not any(stable_samples) and not queued
        if not quiet:
            state.idle_since = None
            desired = max(desired, 1)
        else:
            state.idle_since = state.idle_since if state.idle_since is not None else now
            if now - state.idle_since < policy.scale_to_zero_retention:
                desired = max(desired, 1)
    else:
        state.idle_since = None
    if queued and desired < 1:
        desired = 1  # a held request wakes the revision up
    return max(policy.min_replicas, min(policy.max_replicas, desired))
