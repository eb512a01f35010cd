"""Kubernetes API discovery, built from the kind registry: what ``kubectl`` reads to
find the kinds (``api-resources``, resolving ``jobs`` to ``jobs.ketch.dev/v1``).

``/version`` (``version.Info``), ``/api`` (``APIVersions``), ``/api/v1`` and
``/apis/{group}/{version}`` (``APIResourceList``), ``/apis`` (``APIGroupList``, without
the core group ``""``) and ``/apis/{group}`` (``APIGroup``). ``/api`` and ``/apis`` also
answer aggregated discovery (``apidiscovery.k8s.io`` v2 or v2beta1
``APIGroupDiscoveryList``, every group's resources in one answer), which client-go asks
for first and recognizes only by the parameters of the answer's ``Content-Type``.
"""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ketch import __version__
from ketch.core.errors import NotFoundError
from ketch.core.kinds import KindInfo, KindRegistry
from ketch.server._core_v1 import SERVED_VERBS

__all__ = ["KUBE_MAJOR", "KUBE_MINOR", "discovery_router", "version_info"]

# The Kubernetes API release whose wire ketch speaks: kubectl warns when the server's
# minor version is more than one away from its own, and reads nothing else from it.
KUBE_MAJOR, KUBE_MINOR = "1", "32"
_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
_STATUS_VERBS = ("get", "patch", "update")
_DISCOVERY_GROUP = "apidiscovery.k8s.io"


def version_info() -> dict[str, str]:
    """``version.Info``: a semantic gitVersion with ketch's version as build metadata
    (``v1.32.0+ketch.0.1.0``), which kubectl's skew check parses."""
    build = re.sub(r"[^0-9A-Za-z.-]+", "-", __version__).strip(".-") or "unknown"
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(),
                                                           platform.machine().lower())
    return {
        "major": KUBE_MAJOR, "minor": KUBE_MINOR,
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0+ketch.{build}",
        "gitCommit": "", "gitTreeState": "", "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": sys.implementation.name,
        "platform": f"{sys.platform}/{machine}",
    }


@dataclass(frozen=True)
class _Resource:
    """One entry of a resource list: a kind, or one of its subresources."""

    name: str
    info: KindInfo
    verbs: tuple[str, ...]
    sub: str | None = None


def _resources(info: KindInfo) -> list[_Resource]:
    # A status subresource only where the kind has a status to read or write.
    verbs, status_verbs = SERVED_VERBS.get(info.key) or (
        _VERBS, _STATUS_VERBS if info.status_model.model_fields else ())
    out = [_Resource(info.plural, info, verbs)]
    if status_verbs:
        out.append(_Resource(f"{info.plural}/status", info, status_verbs, "status"))
    if info.has_logs:
        out.append(_Resource(f"{info.plural}/log", info, ("get",), "log"))
    return out


def _categories(info: KindInfo) -> list[str]:
    # ketch's own kinds are what `kubectl get ketch` (and `get all`) shows; of the core
    # kinds only pods are in "all", as in Kubernetes.
    if info.group:
        return ["all", "ketch"]
    return ["all"] if info.plural == "pods" else []


def resource_list(group_version: str, infos: Iterable[KindInfo]) -> dict[str, Any]:
    """``APIResourceList`` of one group version."""
    entries: list[dict[str, Any]] = []
    for info in infos:
        for res in _resources(info):
            entry: dict[str, Any] = {
                "name": res.name, "singularName": "" if res.sub else info.singular,
                "namespaced": info.namespaced, "kind": info.kind, "verbs": list(res.verbs)}
            if res.sub is None:
                entry["shortNames"] = list(info.short_names)
                entry["categories"] = _categories(info)
            entries.append(entry)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": entries}


def _aggregated_version(version: str, infos: list[KindInfo]) -> dict[str, Any]:
    resources = []
    for info in infos:
        main, *subs = _resources(info)
        kind = {"group": info.group, "version": info.version, "kind": info.kind}
        resources.append({
            "resource": info.plural, "responseKind": kind,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "singularResource": info.singular, "verbs": list(main.verbs),
            "shortNames": list(info.short_names), "categories": _categories(info),
            "subresources": [{"subresource": s.sub, "responseKind": kind,
                              "verbs": list(s.verbs)} for s in subs]})
    return {"version": version, "resources": resources, "freshness": "Current"}


def _discovery_version(request: Request) -> str | None:
    """``v2`` or ``v2beta1`` when ``Accept`` asks for aggregated discovery first (before
    any plain type it also accepts), else None."""
    for media in request.headers.get("accept", "").split(","):
        base, *params = (p.strip() for p in media.split(";"))
        named = dict(p.partition("=")[::2] for p in params)
        if named.get("g") == _DISCOVERY_GROUP and named.get("as") == "APIGroupDiscoveryList":
            if named.get("v") in ("v2", "v2beta1") and base.lower() == "application/json":
                return named["v"]
            continue
        if base.lower() in ("application/json", "*/*", "application/*"):
            return None
    return None


def _aggregated(version: str, groups: dict[str, dict[str, list[KindInfo]]]) -> JSONResponse:
    items = [{"metadata": {"name": group},
              "versions": [_aggregated_version(v, infos) for v, infos in versions.items()]}
             for group, versions in groups.items()]
    body = {"kind": "APIGroupDiscoveryList", "apiVersion": f"{_DISCOVERY_GROUP}/{version}",
            "metadata": {}, "items": items}
    # client-go takes the answer as aggregated only when these three parameters are there.
    media = f"application/json;g={_DISCOVERY_GROUP};v={version};as=APIGroupDiscoveryList"
    return JSONResponse(body, media_type=media, headers={"Vary": "Accept"})


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": listed,
            "preferredVersion": listed[0]}


def _by_group(registry: KindRegistry) -> dict[str, dict[str, list[KindInfo]]]:
    groups: dict[str, dict[str, list[KindInfo]]] = {}
    for info in registry:
        groups.setdefault(info.group, {}).setdefault(info.version, []).append(info)
    return groups


def discovery_router(registry: KindRegistry) -> APIRouter:
    """The discovery routes. ``/apis/{group}`` and ``/apis/{group}/{version}`` match
    any path of that shape, so this router goes after every other one."""
    router = APIRouter(tags=["discovery"])
    groups = _by_group(registry)
    core = groups.get("", {})
    named = {g: vs for g, vs in sorted(groups.items()) if g}

    @router.get("/version", summary="The server's version (Kubernetes version.Info)")
    async def version() -> dict[str, str]:
        return version_info()

    @router.get("/api", summary="The core group's versions (or aggregated discovery)",
                response_model=None)
    async def api(request: Request) -> dict[str, Any] | JSONResponse:
        wanted = _discovery_version(request)
        if wanted:
            return _aggregated(wanted, {"": core})
        return {"kind": "APIVersions", "versions": list(core),
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": request.url.netloc}]}

    @router.get("/api/{version}", summary="The core group's resources")
    async def api_version(version: str) -> dict[str, Any]:
        if version not in core:
            raise NotFoundError(f"the server could not find the requested resource "
                                f"(no core API version {version!r})")
        return resource_list(version, core[version])

    @router.get("/apis", summary="The API groups (or aggregated discovery)",
                response_model=None)
    async def apis(request: Request) -> dict[str, Any] | JSONResponse:
        wanted = _discovery_version(request)
        if wanted:
            return _aggregated(wanted, named)
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [_api_group(g, list(vs)) for g, vs in named.items()]}

    @router.get("/apis/{group}", summary="One API group")
    async def api_group(group: str) -> dict[str, Any]:
        if group not in named:
            raise NotFoundError(f"the server could not find the requested resource "
                                f"(no API group {group!r})")
        return _api_group(group, list(named[group]))

    @router.get("/apis/{group}/{version}", summary="One group version's resources")
    async def group_version(group: str, version: str) -> dict[str, Any]:
        if version not in named.get(group, {}):
            raise NotFoundError(f"the server could not find the requested resource "
                                f"(no API group version {group}/{version})")
        return resource_list(f"{group}/{version}", named[group][version])

    return router
