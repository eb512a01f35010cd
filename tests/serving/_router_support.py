"""Shared pieces of the router, canary and autoscaling tests: InferenceService
documents, the front's admin routes, and replica processes (the iris model and the
``stop_services`` fixture are in ``tests/_modelserver.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import psutil

from ketch import Client
from ketch.serving._router_units import admin_secret

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


def copy_model(src: Path, dest: Path) -> str:
    """The same model at another URI: a new revision for the controller."""
    shutil.copytree(src, dest)
    return dest.as_uri()


def isvc(name: str, uri: str, annotations: dict[str, str] | None = None,
         **predictor: Any) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"predictor": {**predictor, "model": {
                "modelFormat": {"name": "sklearn"}, "storageUri": uri}}}}


def admin(client: Client, name: str, token: str | None = None) -> httpx.Client:
    """An HTTP client of the service front's admin routes (the controller's channel), at
    its published address with its admin credential (derived from the platform
    ``token`` where the server has one)."""
    status = client.get("isvc", name).status
    return httpx.Client(base_url=f"{status['url']}/ketch/admin", timeout=5.0, headers={
        "authorization": f"Bearer {admin_secret(token, status['front'])}"})


def front_stats(client: Client, name: str) -> dict[str, Any]:
    with admin(client, name) as front:
        return front.get("/stats", params={"seconds": 5}).json()  # type: ignore[no-any-return]


def replicas(obj: Any, *, ready: bool = True) -> list[dict[str, Any]]:
    """The replicas recorded in status (ready ones by default), all revisions."""
    return [rep for rev in obj.status.get("revisions") or [] for rep in rev["replicas"]
            if rep.get("ready") or not ready]


def model_server_process(replica: dict[str, Any]) -> psutil.Process:
    """The model server of a replica (the executor's handle names its shell wrapper)."""
    wrapper = psutil.Process(replica["handle"]["pid"])
    return next(p for p in wrapper.children(recursive=True)
                if "ketch.serving.modelserver" in " ".join(p.cmdline()))


def traffic(obj: Any) -> list[tuple[str, int]]:
    entries = obj.status.get("components", {}).get("predictor", {}).get("traffic") or []
    return [(t["revisionName"], t["percent"]) for t in entries]
