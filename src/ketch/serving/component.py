"""The serving component as the server assembles it (entry point ``ketch.components``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ketch.core.kinds import Component, LogOptions
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.serving._controller import InferenceServiceController
from ketch.serving._kind import INFERENCE_SERVICE

__all__ = ["component"]


def _logs(runtime: Runtime, obj: Resource, options: LogOptions) -> Iterator[bytes]:
    """A service's log, as ``kubectl logs`` of its pod would show it: the latest
    revision's storage-initializer lines (resolving the model), then its first replica's
    model server (the one loading, or serving); a revision whose load failed shows the
    log of the replica that failed. The previous revision's replica while the latest
    has none and no log of its own."""
    latest = (obj.status.get("components") or {}).get("predictor", {}).get(
        "latestCreatedRevision")
    revisions = sorted(obj.status.get("revisions") or [],
                       key=lambda rev: rev.get("name") != latest)
    for revision in revisions:
        kept = [key for key in (revision.get("storageLog"), revision.get("lastLog"))
                if key and runtime.artifacts.exists(key)]
        for replica in revision.get("replicas") or []:
            handle = replica.get("handle") or runtime.executor.lookup(replica["unitId"])
            if handle is not None:
                return _chain(runtime, kept[:1], runtime.executor.logs(
                    handle, follow=options.follow))
        if kept:
            return _chain(runtime, kept, iter(()))
    return iter(())


def _chain(runtime: Runtime, keys: list[str], live: Iterator[bytes]) -> Iterator[bytes]:
    for key in keys:
        yield from runtime.artifacts.iter_bytes(key)
    yield from live


def _proxy(runtime: Runtime) -> Any:
    from ketch.serving._proxy import proxy_router

    return proxy_router(runtime)


component = Component(
    name="serving",
    description="Model serving: KServe InferenceServices with the V1 and Open Inference "
                "Protocol data planes, replicas behind a router, canary rollouts and "
                "autoscaling",
    kinds=(INFERENCE_SERVICE,),
    controllers=(InferenceServiceController,),
    log_readers={INFERENCE_SERVICE.key: _logs},
    routers=(_proxy,),
)
