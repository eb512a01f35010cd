"""The serving component's slice (entry point ``ketch.components``).

References, not imports: the CLI and ``ketch.Client`` read this declaration without
loading the controller, the model server or pydantic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ketch.core.component import CliVerb, Component, DashboardRoute, Facade

if TYPE_CHECKING:
    from ketch.core.kinds import LogOptions
    from ketch.core.resources import Resource
    from ketch.core.runtime import Runtime

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


def _stop_all() -> Callable[[], str]:
    """``ketch stop --all``: the services' units, read while the server still knows
    them, stopped once it is gone (nothing restarts them then)."""
    from ketch.serving.cli import service_units, stop_units

    units = service_units()
    return lambda: f"stopped {stop_units(units)} inference service processes"


component = Component(
    name="serving",
    description="Model serving: KServe InferenceServices with the V1 and Open Inference "
                "Protocol data planes, replicas behind a router, canary rollouts and "
                "autoscaling",
    kinds=("ketch.serving._kind:INFERENCE_SERVICE",),
    controllers=("ketch.serving._controller:InferenceServiceController",),
    log_readers={"inferenceservices.serving.kserve.io": _logs},
    pods={"inferenceservices.serving.kserve.io": "ketch.serving._pods:service_pods"},
    routers=(_proxy,),
    cli=(CliVerb("serve", "ketch.serving.cli:serve",
                 "Serve a model: create (or update) an InferenceService and print its URL."),),
    sdk=Facade("serving", "ketch.serving.client:ServingClient"),
    dashboard=(DashboardRoute("/serving", "Serving", ("inferenceservices",)),),
    stop_all="ketch.serving.component:_stop_all",
)
