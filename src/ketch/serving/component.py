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
    """The model server's log: the revision loading, else the one serving."""
    revision = obj.status.get("pending") or obj.status.get("active") or {}
    handle = revision.get("handle") or (runtime.executor.lookup(revision["unitId"])
                                        if revision.get("unitId") else None)
    if handle is None:
        return iter(())
    return runtime.executor.logs(handle, follow=options.follow)


def _proxy(runtime: Runtime) -> Any:
    from ketch.serving._proxy import proxy_router

    return proxy_router(runtime)


component = Component(
    name="serving",
    description="Model serving: KServe InferenceServices with the V1 and Open Inference "
                "Protocol data planes",
    kinds=(INFERENCE_SERVICE,),
    controllers=(InferenceServiceController,),
    log_readers={INFERENCE_SERVICE.key: _logs},
    routers=(_proxy,),
)
