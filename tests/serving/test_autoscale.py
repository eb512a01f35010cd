"""Autoscaling: the KPA-like decision on its own (fast), then end to end with real
processes: up under load and back down, and scale to zero with the first request
held in the front until a replica is ready."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import httpx
import pytest
from _router_support import (
    ROW,
    front_stats,
    isvc,
    replicas,
)

from _modelserver import train_iris
from conftest import ServerProcess, wait_for
from ketch import Client
from ketch.serving._autoscale import ScalePolicy, ScaleState, desired_replicas
from ketch.serving._front_pool import Revision, Router

FAST = {"autoscaling.knative.dev/window": "6s"}


def _decide(policy: ScalePolicy, state: ScaleState, samples: list[float], *, now: float,
            current: int, queued: int = 0) -> int:
    return desired_replicas(policy, state, now=now, current=current, ready=current,
                            samples=samples, queued=queued)


def test_scales_up_at_once_in_panic_and_down_only_after_the_window() -> None:
    policy = ScalePolicy(min_replicas=1, max_replicas=5, target=1.0, window=10.0)
    state = ScaleState()
    # A burst: the last second alone wants 4 replicas, twice what runs: panic.
    assert _decide(policy, state, [0.0] * 9 + [4.0], now=100.0, current=1) == 4
    # Load gone, but still within the window since the panic: no scale down.
    assert _decide(policy, state, [0.0] * 10, now=105.0, current=4) == 4
    # A whole window without panic: down, at most halving per step.
    assert _decide(policy, state, [0.0] * 10, now=111.0, current=4) == 2
    assert _decide(policy, state, [0.0] * 10, now=112.0, current=2) == 1


def test_stable_load_sets_the_count_within_bounds() -> None:
    policy = ScalePolicy(min_replicas=2, max_replicas=3, target=2.0, window=10.0)
    assert _decide(policy, ScaleState(), [5.0] * 10, now=0.0, current=3) == 3
    assert _decide(policy, ScaleState(), [20.0] * 10, now=0.0, current=3) == 3  # max
    assert _decide(policy, ScaleState(), [0.0] * 10, now=0.0, current=2) == 2  # min


def test_scale_to_zero_needs_a_quiet_window_and_a_held_request_wakes_it() -> None:
    policy = ScalePolicy(min_replicas=0, max_replicas=2, target=1.0, window=6.0)
    state = ScaleState()
    assert _decide(policy, state, [0.5] + [0.0] * 5, now=0.0, current=1) == 1
    assert _decide(policy, state, [0.0] * 3, now=1.0, current=1) == 1  # too few samples
    assert _decide(policy, state, [0.0] * 6, now=2.0, current=1) == 0
    assert _decide(policy, state, [0.0] * 6, now=3.0, current=0) == 0
    assert _decide(policy, state, [0.0] * 6, now=4.0, current=0, queued=1) == 1
    retained = ScalePolicy(min_replicas=0, max_replicas=1, target=1.0, window=6.0,
                           scale_to_zero_retention=30.0)
    kept = ScaleState()
    assert _decide(retained, kept, [0.0] * 6, now=0.0, current=1) == 1
    assert _decide(retained, kept, [0.0] * 6, now=31.0, current=1) == 0


def test_front_measures_time_weighted_concurrency_and_requests_per_second() -> None:
    rev = Revision("r", now=100.0)
    rev.add_concurrency(2, 100.0)
    rev.close_bucket(101.0)
    rev.requests += 3
    rev.add_concurrency(-2, 101.5)  # two in flight for half of the second second
    rev.close_bucket(102.0)
    rev.requests += 5
    rev.close_bucket(103.0)
    seen = rev.stats(10)
    assert seen["concurrency"] == [2.0, 1.0, 0.0]
    assert seen["requestsPerSecond"] == [3, 5]
    assert rev.stats(1)["concurrency"] == [0.0]


def test_router_splits_exactly_and_spreads_evenly() -> None:
    router = Router()
    router.configure({"revisions": [
        {"name": "new", "percent": 20, "backends": [{"id": "a", "address": "unix:/a"}]},
        {"name": "old", "percent": 80, "backends": [{"id": "b", "address": "unix:/b"}]}]})
    picks = [router.choose().name for _ in range(100)]  # type: ignore[union-attr]
    assert picks.count("new") == 20
    # Evenly spread: never two canary requests in a row at 20%.
    assert all(not (x == y == "new") for x, y in itertools.pairwise(picks))


def test_router_picks_the_least_outstanding_replica_under_the_limit() -> None:
    router = Router()
    router.configure({"containerConcurrency": 2, "revisions": [{"name": "r", "percent": 100,
                      "backends": [{"id": i, "address": f"unix:/{i}"} for i in "abc"]}]})
    rev = router.revisions["r"]
    a, b, c = rev.backends
    a.outstanding, b.outstanding, c.outstanding = 1, 0, 2
    assert rev.pick(2) is b
    b.outstanding = 2
    assert rev.pick(2) is a
    a.outstanding = 2
    assert rev.pick(2) is None  # all full: the request queues
    a.down = True
    a.outstanding = 0
    assert rev.pick(2) is None  # a replica out of rotation takes nothing
    # A new table keeps the replicas it still names, with their counters.
    removed, _ = router.configure({"containerConcurrency": 2, "revisions": [
        {"name": "r", "percent": 100, "backends": [{"id": "b", "address": "unix:/b"}]}]})
    assert {x.id for x in removed} == {"a", "c"} and router.revisions["r"].backends == [b]


@pytest.mark.slow
@pytest.mark.usefixtures("stop_services")
def test_scales_up_under_load_and_back_down(ketch_server: ServerProcess,
                                            tmp_path: Path) -> None:
    model = train_iris(tmp_path / "iris")
    # Each request is held 50 ms in the replica (an async transformer), so six clients
    # mean about six requests in flight however slowly a busy machine runs the clients:
    # with a ~1 ms model, Python client threads on 2 shared cores kept in-flight near 1.
    code = tmp_path / "hold"
    code.mkdir()
    (code / "hold.py").write_text(
        "import asyncio\n\n"
        "class Hold:\n"
        "    async def preprocess(self, payload, headers=None):\n"
        "        await asyncio.sleep(0.05)\n"
        "        return payload\n\n"
        "    def postprocess(self, response, headers=None):\n"
        "        return response\n")
    with Client(ketch_server.url) as client:
        service = isvc("elastic", model.as_uri(), FAST, minReplicas=1, maxReplicas=3,
                       scaleMetric="concurrency", scaleTarget=1)
        service["spec"]["transformer"] = {"python": {"class": "hold:Hold",
                                                     "codeDir": str(code)}}
        client.apply(service)
        url = client.wait("isvc", "elastic", condition="Ready", timeout=120).status["url"]
        stop = threading.Event()
        failures: list[int] = []

        def load() -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                while not stop.is_set():
                    code = http.post("/v1/models/elastic:predict", json=ROW).status_code
                    if code != 200:
                        failures.append(code)

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(replicas(client.get("isvc", "elastic"))) >= 2, timeout=90,
                     message="scaled up under load")
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert failures == []
        wait_for(lambda: len(replicas(client.get("isvc", "elastic"), ready=False)) == 1,
                 timeout=90, message="scaled back down to minReplicas")
        assert client.get("isvc", "elastic").status["conditions"][0]["status"] == "True"


@pytest.mark.slow
@pytest.mark.usefixtures("stop_services")
def test_scale_to_zero_holds_the_first_request_until_a_replica_is_ready(
        ketch_server: ServerProcess, tmp_path: Path) -> None:
    model = train_iris(tmp_path / "iris")
    with Client(ketch_server.url) as client:
        client.apply(isvc("sleepy", model.as_uri(), FAST, minReplicas=0, maxReplicas=1))
        url = client.wait("isvc", "sleepy", condition="Ready", timeout=120).status["url"]
        # No traffic for a whole window: no replica left, and the service stays Ready.
        wait_for(lambda: not replicas(client.get("isvc", "sleepy"), ready=False),
                 timeout=90, message="scaled to zero")
        obj = client.get("isvc", "sleepy")
        assert obj.status["conditions"][0]["status"] == "True"
        assert obj.status["readyReplicas"] == 0
        # The first request waits in the front while a replica starts, then is served.
        reply = httpx.post(f"{url}/v1/models/sleepy:predict", json=ROW, timeout=90)
        assert reply.status_code == 200 and reply.json() == {"predictions": [0]}
        # The controller records the replica it started; on a busy machine a moment later.
        wait_for(lambda: len(replicas(client.get("isvc", "sleepy"))) == 1, timeout=30,
                 message="the woken replica recorded")
        stats = front_stats(client, "sleepy")["revisions"]["sleepy-predictor-00001"]
        assert stats["requests"] == 1 and stats["queued"] == 0
