"""Canary rollouts as KServe does them: ``canaryTrafficPercent`` splits traffic between
the new revision and the last one rolled out at 100%, promotion moves all traffic to
the new one and stops the old, ``canaryTrafficPercent: 0`` rolls back, and a revision
that cannot load never gets traffic. Real ``ketch up``, fronts and model servers; each
response names its revision in the ``ketch-revision`` header."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from _router_support import (
    ROW,
    copy_model,
    isvc,
    model_server_process,
    replicas,
    traffic,
)

from _modelserver import train_iris
from conftest import ServerProcess, wait_for
from ketch import Client

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("stop_services")]

REV1, REV2, REV3 = (f"flowers-predictor-0000{n}" for n in (1, 2, 3))


def _split(url: str, requests: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(requests):
            reply = http.post("/v1/models/flowers:predict", json=ROW)
            assert reply.status_code == 200, reply.text
            seen[reply.headers["ketch-revision"]] += 1
    return seen


def _predictor(client: Client) -> dict[str, Any]:
    return client.get("isvc", "flowers").status["components"]["predictor"]  # type: ignore[no-any-return]


def test_canary_split_promotion_and_rollback(ketch_server: ServerProcess,
                                             tmp_path: Path) -> None:
    first = train_iris(tmp_path / "v1")
    with Client(ketch_server.url) as client:
        client.apply(isvc("flowers", first.as_uri()))
        url = client.wait("isvc", "flowers", condition="Ready", timeout=120).status["url"]
        assert _split(url, 20) == {REV1: 20}

        # A new model with 20% of the traffic; the previous revision keeps the rest.
        client.patch("isvc", "flowers", {"spec": {"predictor": {
            "canaryTrafficPercent": 20,
            "model": {"storageUri": copy_model(first, tmp_path / "v2")}}}})
        wait_for(lambda: traffic(client.get("isvc", "flowers")) == [(REV2, 20), (REV1, 80)],
                 timeout=120, message="a 20/80 split")
        predictor = _predictor(client)
        assert predictor["traffic"] == [
            {"revisionName": REV2, "percent": 20, "latestRevision": True, "tag": "latest"},
            {"revisionName": REV1, "percent": 80, "latestRevision": False, "tag": "prev"}]
        assert predictor["latestReadyRevision"] == REV2
        assert predictor["latestRolledoutRevision"] == REV1
        got = subprocess.run([sys.executable, "-m", "ketch.cli", "get", "isvc"],
                             env=ketch_server.env, capture_output=True, text=True, check=True)
        header, row = got.stdout.splitlines()[:2]
        assert header.split()[:6] == ["NAME", "URL", "READY", "LATEST", "PREV", "REPLICAS"]
        assert row.split()[:6] == ["flowers", url, "True", "20", "80", "2"]
        split = _split(url, 1000)
        assert set(split) == {REV1, REV2}
        assert 150 <= split[REV2] <= 250, split
        old = [model_server_process(r) for r in replicas(client.get("isvc", "flowers"))
               if r["unitId"].endswith("-1-1")]
        assert len(old) == 1

        # Promotion: canaryTrafficPercent removed, all to the new revision, old stopped.
        client.patch("isvc", "flowers", {"spec": {"predictor": {"canaryTrafficPercent": None}}})
        wait_for(lambda: traffic(client.get("isvc", "flowers")) == [(REV2, 100)],
                 timeout=60, message="promotion")
        assert _split(url, 100) == {REV2: 100}
        predictor = _predictor(client)
        assert predictor["latestRolledoutRevision"] == REV2
        assert predictor["previousRolledoutRevision"] == REV1
        wait_for(lambda: not old[0].is_running() or old[0].status() == psutil.STATUS_ZOMBIE,
                 timeout=30, message="the old revision's replica stopped")

        # Another rollout at 30%, rolled back with canaryTrafficPercent: 0.
        client.patch("isvc", "flowers", {"spec": {"predictor": {
            "canaryTrafficPercent": 30,
            "model": {"storageUri": copy_model(first, tmp_path / "v3")}}}})
        wait_for(lambda: traffic(client.get("isvc", "flowers")) == [(REV3, 30), (REV2, 70)],
                 timeout=120, message="a 30/70 split")
        client.patch("isvc", "flowers", {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
        wait_for(lambda: traffic(client.get("isvc", "flowers")) == [(REV3, 0), (REV2, 100)],
                 timeout=60, message="rollback")
        assert _split(url, 200) == {REV2: 200}
        assert _predictor(client)["latestRolledoutRevision"] == REV2


def test_a_revision_that_cannot_load_never_gets_traffic(ketch_server: ServerProcess,
                                                        tmp_path: Path) -> None:
    first = train_iris(tmp_path / "v1")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.joblib").write_bytes(b"not a pickle")
    with Client(ketch_server.url) as client:
        client.apply(isvc("flowers", first.as_uri()))
        url = client.wait("isvc", "flowers", condition="Ready", timeout=120).status["url"]
        client.patch("isvc", "flowers", {"spec": {"predictor": {
            "canaryTrafficPercent": 50, "model": {"storageUri": broken.as_uri()}}}})
        failed = wait_for(lambda: (o := client.get("isvc", "flowers")).status[
            "modelStatus"].get("lastFailureInfo") and o, timeout=60,
            message="the load failure reported")
        info = failed.status["modelStatus"]["lastFailureInfo"]  # type: ignore[attr-defined]
        assert info["reason"] == "ModelLoadFailed"
        assert traffic(failed) == [(REV1, 100)]
        conditions = {c["type"]: c["status"] for c in failed.status["conditions"]}  # type: ignore[attr-defined]
        assert conditions["Ready"] == "True" and conditions["PredictorReady"] == "False"
        assert _split(url, 100) == {REV1: 100}
