"""The model server's Prometheus metrics, kept as plain counters (no client library on
the hot path: an observation is a bisect and two additions).

Exposed on the replica's ``GET /metrics`` in the Prometheus text format:
requests by endpoint and status, request latency, predict latency and batch size
histograms, and the request logger's sent and dropped events.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "Histogram", "ReplicaMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    """A cumulative histogram over fixed upper bounds (``le``)."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def render(self, name: str, labels: str) -> list[str]:
        """Prometheus text lines (``_bucket``, ``_sum``, ``_count``) for this histogram."""
        lines, running = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            lines.append(f'{name}_bucket{{{labels},le="{bound:g}"}} {running}')
        lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum{{{labels}}} {self.total:.6f}")
        lines.append(f"{name}_count{{{labels}}} {self.count}")
        return lines


class ReplicaMetrics:
    """Everything one model server counts, rendered on ``/metrics``.

    Not thread-safe: observed on the event loop only.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.predict = Histogram(LATENCY_BUCKETS)
        self.batch = Histogram(BATCH_BUCKETS)
        self.logger_sent = 0
        self.logger_dropped = 0
        self.logger_failed = 0

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get(endpoint)
        if hist is None:
            hist = self.latency[endpoint] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition (version 0.0.4)."""
        m = f'model="{_label(self.model)}"'
        out = ["# HELP ketch_inference_requests_total Requests answered, by endpoint and "
               "HTTP status.", "# TYPE ketch_inference_requests_total counter"]
        for (endpoint, status), n in sorted(self.requests.items()):
            out.append(f'ketch_inference_requests_total{{{m},endpoint="{endpoint}",'
                       f'code="{status}"}} {n}')
        out += ["# HELP ketch_inference_request_duration_seconds Time from a request's "
                "last byte to its answer, by endpoint.",
                "# TYPE ketch_inference_request_duration_seconds histogram"]
        for endpoint, hist in sorted(self.latency.items()):
            out += hist.render("ketch_inference_request_duration_seconds",
                               f'{m},endpoint="{endpoint}"')
        out += ["# HELP ketch_predict_duration_seconds Time in the model's predict, per "
                "call (a batch is one call).", "# TYPE ketch_predict_duration_seconds histogram"]
        out += self.predict.render("ketch_predict_duration_seconds", m)
        out += ["# HELP ketch_batch_size Rows (instances) per predict call.",
                "# TYPE ketch_batch_size histogram"]
        out += self.batch.render("ketch_batch_size", m)
        out += ["# HELP ketch_request_logger_events_total Request logger events, by outcome "
                "(sent, dropped when its buffer was full, failed to deliver).",
                "# TYPE ketch_request_logger_events_total counter"]
        for outcome, n in (("sent", self.logger_sent), ("dropped", self.logger_dropped),
                           ("failed", self.logger_failed)):
            out.append(f'ketch_request_logger_events_total{{{m},outcome="{outcome}"}} {n}')
        return ("\n".join(out) + "\n").encode()
