"""The front of an InferenceService, end to end: replicas behind it, least outstanding
requests, readiness gating, the bounded queue, SIGKILL replacement and metrics.

Real ``ketch up``, real front and model server processes, httpx clients."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from _router_support import (
    ROW,
    front_stats,
    isvc,
    model_server_process,
    replicas,
)

from _modelserver import train_iris
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = pytest.mark.slow


@pytest.fixture
def iris_dir(tmp_path: Path) -> Path:
    return train_iris(tmp_path / "iris")


def _post_ok(url: str) -> bool:
    try:
        return httpx.post(f"{url}/v1/models/phoenix:predict", json=ROW).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.usefixtures("stop_services")
def test_replicas_share_traffic_and_the_main_server_route_still_works(
        ketch_server: ServerProcess, iris_dir: Path) -> None:
    with Client(ketch_server.url) as client:
        client.apply(isvc("iris", iris_dir.as_uri(), minReplicas=2, maxReplicas=2))
        ready = client.wait("isvc", "iris", condition="Ready", timeout=120)
        wait_for(lambda: len(replicas(client.get("isvc", "iris"))) == 2, timeout=60,
                 message="two ready replicas")
        url = ready.status["url"]
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url) as http:
            for _ in range(40):
                reply = http.post("/v1/models/iris:predict", json=ROW)
                assert reply.status_code == 200 and reply.json() == {"predictions": [0]}
                assert reply.headers["ketch-revision"] == "iris-predictor-00001"
            # Sequential requests tie on outstanding requests: both replicas take some.
            served = [b["served"] for b in front_stats(client, "iris")["revisions"][
                "iris-predictor-00001"]["backends"]]
            assert len(served) == 2 and min(served) >= 10, served
            metrics = http.get("/metrics").text
        assert ('ketch_serving_requests_total{namespace="default",inferenceservice="iris",'
                'revision="iris-predictor-00001",code="200"} 40') in metrics
        assert "ketch_serving_request_duration_seconds_bucket" in metrics
        assert 'ketch_serving_replicas_ready{namespace="default",inferenceservice="iris",' \
               'revision="iris-predictor-00001"} 2' in metrics
        # The replicas' own families follow, labelled with revision and replica.
        assert metrics.count("# HELP ketch_predict_duration_seconds ") == 1
        replica_lines = [line for line in metrics.splitlines()
                         if line.startswith("ketch_inference_requests_total{")]
        assert len(replica_lines) >= 2 and all(
            'revision="iris-predictor-00001",replica="' in line for line in replica_lines)
        # The main server's route forwards to the front.
        routed = httpx.post(f"{ketch_server.url}/serving/default/iris/v1/models/iris:predict",
                            json=ROW)
        assert routed.status_code == 200 and routed.headers["ketch-revision"]
        obj = client.get("isvc", "iris")
        assert obj.status["readyReplicas"] == 2
        predictor = obj.status["components"]["predictor"]
        assert predictor["traffic"] == [{"revisionName": "iris-predictor-00001",
                                         "percent": 100, "latestRevision": True}]
        assert predictor["latestReadyRevision"] == "iris-predictor-00001"
        assert predictor["latestRolledoutRevision"] == "iris-predictor-00001"
        # The admin routes are the front's own, under /ketch/admin/, and refuse a request
        # without the front's admin credential; anything else goes to a replica.
        assert httpx.get(f"{url}/stats").status_code == 404
        assert httpx.get(f"{url}/ketch/admin/stats").status_code == 401
        assert httpx.put(f"{url}/ketch/admin/config", json={"revisions": []}
                         ).status_code == 401
        # Every front's metrics on one page of the main server, each family once.
        client.apply(isvc("iris-b", iris_dir.as_uri()))
        other = client.wait("isvc", "iris-b", condition="Ready", timeout=120).status["url"]
        assert httpx.post(f"{other}/v1/models/iris-b:predict", json=ROW).status_code == 200
        merged = httpx.get(f"{ketch_server.url}/serving/metrics").text
        assert merged.count("# HELP ketch_serving_requests_total ") == 1
        assert merged.count("# HELP ketch_batch_size ") == 1
        assert 'revision="iris-b-predictor-00001",replica="' in merged
        assert 'inferenceservice="iris",revision="iris-predictor-00001",code="200"} 41' \
            in merged
        assert 'inferenceservice="iris-b",revision="iris-b-predictor-00001",code="200"} 1' \
            in merged
        # ketch logs: the model server's log, its storage initializer first, serving at
        # the address its executor unit was given.
        logs = subprocess.run([sys.executable, "-m", "ketch.cli", "logs", "isvc", "iris"],
                              env=ketch_server.env, capture_output=True, text=True, check=True)
        assert "storage-initializer: resolving storageUri" in logs.stdout
        assert "modelserver: serving 'iris' (V1 and V2) on 127.0.0.1:" in logs.stdout


@pytest.mark.usefixtures("stop_services")
def test_full_queue_answers_503_and_the_service_keeps_serving(
        ketch_server: ServerProcess, iris_dir: Path) -> None:
    """One replica taking one request at a time, two places in the queue. The replica
    is paused with SIGSTOP so requests pile up deterministically."""
    with Client(ketch_server.url) as client:
        client.apply(isvc("tight", iris_dir.as_uri(), {"serving.ketch.dev/queue-limit": "2"},
                          containerConcurrency=1))
        url = client.wait("isvc", "tight", condition="Ready", timeout=120).status["url"]
        wait_for(lambda: replicas(client.get("isvc", "tight")), timeout=60,
                 message="a ready replica")
        server = model_server_process(replicas(client.get("isvc", "tight"))[0])
        with httpx.Client(base_url=url, timeout=30) as warm:  # the pooled connection
            assert warm.post("/v1/models/tight:predict", json=ROW).status_code == 200
        server.send_signal(signal.SIGSTOP)
        try:
            pool = ThreadPoolExecutor(3)
            held = [pool.submit(httpx.post, f"{url}/v1/models/tight:predict", json=ROW,
                                timeout=60) for _ in range(3)]

            def _stats() -> dict[str, int]:
                rev = front_stats(client, "tight")["revisions"]["tight-predictor-00001"]
                return {"inFlight": rev["inFlight"], "queued": rev["queued"]}

            wait_for(lambda: _stats() == {"inFlight": 1, "queued": 2}, timeout=30,
                     message="one request in flight and two queued")
            refused = httpx.post(f"{url}/v1/models/tight:predict", json=ROW, timeout=10)
            assert refused.status_code == 503
            assert "queue limit 2" in refused.json()["error"]
        finally:
            server.send_signal(signal.SIGCONT)
        assert [f.result().status_code for f in held] == [200, 200, 200]
        pool.shutdown()
        after = httpx.post(f"{url}/v1/models/tight:predict", json=ROW, timeout=10)
        assert after.status_code == 200 and after.json() == {"predictions": [0]}
        metrics = httpx.get(f"{url}/metrics").text
        assert 'code="503"} 1' in metrics and "ketch_serving_rejected_total" in metrics


@pytest.mark.usefixtures("stop_services")
def test_sigkilled_replica_is_replaced_and_loses_at_most_its_in_flight_requests(
        ketch_server: ServerProcess, iris_dir: Path) -> None:
    concurrency = 3  # per replica: the most requests that can be in flight on one
    with Client(ketch_server.url) as client:
        client.apply(isvc("sturdy", iris_dir.as_uri(), minReplicas=2, maxReplicas=2,
                          containerConcurrency=concurrency))
        url = client.wait("isvc", "sturdy", condition="Ready", timeout=120).status["url"]
        before = wait_for(lambda: len(r := replicas(client.get("isvc", "sturdy"))) == 2
                          and r, timeout=60, message="two ready replicas")
        victim = before[0]
        stop = threading.Event()
        codes: Counter[int | str] = Counter()
        lock = threading.Lock()

        def load() -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                while not stop.is_set():
                    try:
                        code: int | str = http.post("/v1/models/sturdy:predict",
                                                    json=ROW).status_code
                    except httpx.HTTPError as err:
                        code = type(err).__name__
                    with lock:
                        codes[code] += 1

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: codes[200] > 200, timeout=60, message="load flowing")
            model_server_process(victim).send_signal(signal.SIGKILL)
            killed_at = sum(codes.values())

            def replaced() -> bool:
                now = replicas(client.get("isvc", "sturdy"))
                ids = {r["unitId"] for r in now}
                return len(now) == 2 and victim["unitId"] not in ids

            wait_for(replaced, timeout=90, message="a replacement replica ready")
            served = codes[200]
            wait_for(lambda: codes[200] > served + 100, timeout=60,
                     message="load served after the replacement")
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        failed = sum(n for code, n in codes.items() if code != 200)
        assert killed_at > 0
        assert failed <= concurrency, codes
        obj = client.get("isvc", "sturdy")
        assert obj.status["revisions"][0]["restarts"] >= 1
        assert obj.status["conditions"][0]["status"] == "True"
        assert not psutil.pid_exists(victim["handle"]["pid"]) or \
            psutil.Process(victim["handle"]["pid"]).status() == psutil.STATUS_ZOMBIE


def test_killed_control_plane_and_front_are_repaired(server_factory: object,
                                                       tmp_path: Path, iris_dir: Path) -> None:
    """kill -9 of the main server: the front and replicas keep serving, and the next
    server adopts them (no second front, no replica started twice); kill -9 of the
    front: the controller starts another, at the address the executor gives it, and
    publishes that as the service's URL (the main server's /serving/... route, the
    stable address, follows it)."""
    home = tmp_path / "crash-home"
    first = server_factory(home, command="up")  # type: ignore[operator]
    with Client(first.url) as client:
        client.apply(isvc("phoenix", iris_dir.as_uri()))
        obj = client.wait("isvc", "phoenix", condition="Ready", timeout=120)
        wait_for(lambda: replicas(client.get("isvc", "phoenix")), timeout=60,
                 message="a ready replica")
        obj = client.get("isvc", "phoenix")
    url = obj.status["url"]
    front_pid = obj.status["front"]["handle"]["pid"]
    replica_ids = {r["unitId"] for r in replicas(obj)}
    first.kill(signal.SIGKILL)
    # The data plane does not need the control plane.
    assert httpx.post(f"{url}/v1/models/phoenix:predict", json=ROW).status_code == 200
    second = server_factory(home, command="up")  # type: ignore[operator]
    try:
        with Client(second.url) as client:
            def adopted() -> bool:
                now = client.get("isvc", "phoenix")
                return bool(now.status.get("controlPlane") != obj.status["controlPlane"] and \
                    now.status["conditions"][0]["status"] == "True")

            wait_for(adopted, timeout=60, message="the new control plane adopted it")
            now = client.get("isvc", "phoenix")
            assert now.status["front"]["handle"]["pid"] == front_pid
            assert {r["unitId"] for r in replicas(now)} == replica_ids
            assert now.status["url"] == url
            assert httpx.post(f"{url}/v1/models/phoenix:predict", json=ROW).status_code == 200
            # kill -9 of the front: a new one, its address published, routes pushed again.
            front = psutil.Process(front_pid).children()[0]
            front.kill()
            wait_for(lambda: client.get("isvc", "phoenix").status.get("frontRestarts") == 1
                     and client.get("isvc", "phoenix").status["conditions"][0]["status"]
                     == "True", timeout=60, message="the front restarted")
            restarted = client.get("isvc", "phoenix").status
            assert restarted["url"] == f"http://{restarted['front']['address']}"
            again = wait_for(lambda: _post_ok(restarted["url"]), timeout=30,
                             message="served again")
            assert again
            routed = httpx.post(f"{second.url}/serving/default/phoenix/v1/models/"
                                "phoenix:predict", json=ROW, timeout=30)
            assert routed.status_code == 200, routed.text
            front_pid = client.get("isvc", "phoenix").status["front"]["handle"]["pid"]
    finally:
        with Client(second.url) as client:
            client.delete("isvc", "phoenix")
            wait_for(lambda: not client.list("isvc").items, timeout=60,
                     message="deleted")
        assert wait_for(lambda: not psutil.pid_exists(front_pid) or
                        psutil.Process(front_pid).status() == psutil.STATUS_ZOMBIE,
                        timeout=30, message="front stopped")


@pytest.mark.usefixtures("stop_services")
def test_batcher_and_logger_reach_every_replica(ketch_server: ServerProcess, iris_dir: Path,
                                                tmp_path: Path) -> None:
    """The predictor's batcher and logger become the replicas' own options; a malformed
    one fails the revision with the field path, and the previous revision keeps serving."""
    events = tmp_path / "events.jsonl"
    with Client(ketch_server.url) as client:
        doc = isvc("logged", iris_dir.as_uri(), minReplicas=2, maxReplicas=2)
        doc["spec"]["predictor"]["batcher"] = {"maxBatchSize": 4, "maxLatency": 20}
        doc["spec"]["predictor"]["logger"] = {"url": events.as_uri(), "mode": "all"}
        client.apply(doc)
        url = client.wait("isvc", "logged", condition="Ready", timeout=120).status["url"]
        ready = wait_for(lambda: len(r := replicas(client.get("isvc", "logged"))) == 2 and r,
                         timeout=60, message="two ready replicas")
        for rep in ready:  # type: ignore[attr-defined]
            cmdline = model_server_process(rep).cmdline()
            assert cmdline[cmdline.index("--max-batch-size") + 1] == "4"
            assert cmdline[cmdline.index("--logger-url") + 1] == events.as_uri()
        assert httpx.post(f"{url}/v1/models/logged:predict", json=ROW).status_code == 200
        wait_for(lambda: events.exists() and events.read_text().count("\n") >= 2, timeout=30,
                 message="request and response logged")
        assert "org.kubeflow.serving.inference.request" in events.read_text()

        client.patch("isvc", "logged", {"spec": {"predictor": {"batcher": {
            "maxBatchSize": "lots"}}}})
        failed = wait_for(lambda: (o := client.get("isvc", "logged")).status[
            "modelStatus"].get("lastFailureInfo") and o, timeout=60,
            message="the bad batcher reported")
        info = failed.status["modelStatus"]["lastFailureInfo"]  # type: ignore[attr-defined]
        assert info["reason"] == "InvalidSpec"
        assert info["message"].startswith("predictor.batcher.maxBatchSize")
        assert httpx.post(f"{url}/v1/models/logged:predict", json=ROW).status_code == 200


@pytest.mark.usefixtures("stop_services")
def test_replicas_that_cannot_start_make_the_service_not_ready_until_they_can(
        ketch_server: ServerProcess, iris_dir: Path) -> None:
    with Client(ketch_server.url) as client:
        client.apply(isvc("fragile", iris_dir.as_uri()))
        client.wait("isvc", "fragile", condition="Ready", timeout=120)
        first = wait_for(lambda: replicas(client.get("isvc", "fragile")), timeout=60,
                         message="a ready replica")
        model = iris_dir / "model.joblib"
        model.rename(iris_dir / "model.aside")
        model_server_process(first[0]).kill()  # type: ignore[index]

        def condition() -> dict[str, str]:
            return client.get("isvc", "fragile").status["conditions"][0]  # type: ignore[no-any-return]

        down = wait_for(lambda: (c := condition())["status"] == "False" and c, timeout=60,
                        message="not Ready while replacements fail")
        assert down["reason"] == "ReplicaFailed" and "modelserver" in down["message"]  # type: ignore[index]
        (iris_dir / "model.aside").rename(model)
        wait_for(lambda: condition()["status"] == "True", timeout=90,
                 message="Ready again once a replica starts")
        url = client.get("isvc", "fragile").status["url"]
        assert httpx.post(f"{url}/v1/models/fragile:predict", json=ROW).status_code == 200
