"""``/openapi/v3``: the OpenAPI v3 documents kubectl reads, one per group version.

Each is cut from the server's own schema (``/openapi.json``, built from the routes and
the kinds' models, so it can never describe routes that are not there): the paths under
``/apis/{group}/{version}/`` (or ``/api/v1/``), each operation marked with
``x-kubernetes-group-version-kind`` and ``x-kubernetes-action``, and the schemas they
reach, a kind's own marked too. kubectl finds in them that PATCH takes
``fieldValidation`` (so ``apply --validate=strict`` leaves validation to the server)
and the schema ``kubectl explain`` prints.

Kubernetes' Go OpenAPI decoder reads OpenAPI 3.0, where JSON Schema 2020 (what pydantic
writes) differs: a numeric ``exclusiveMinimum`` and an object ``discriminator`` would
fail the whole document, so they are rewritten here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from ketch.core.errors import NotFoundError
from ketch.core.kinds import KindInfo, KindRegistry
from ketch.core.resources import TOP_LEVEL_FIELDS

__all__ = ["openapi_v3_router"]

_REF = "#/components/schemas/"
_ACTIONS = {"get": "get", "post": "post", "put": "put", "patch": "patch", "delete": "delete"}


def _base(info: KindInfo) -> str:
    return f"apis/{info.group}/{info.version}" if info.group else f"api/{info.version}"


def _kind_of(rest: list[str], infos: dict[str, KindInfo]) -> KindInfo | None:
    """The kind a path below a group version is about: ``namespaces/{ns}/jobs/...``,
    ``jobs`` (every namespace), or ``namespaces[/{name}]`` itself."""
    if len(rest) >= 3 and rest[0] == "namespaces":
        return infos.get(rest[2])
    return infos.get(rest[0]) if rest else None


def _gvk(info: KindInfo) -> dict[str, str]:
    return {"group": info.group, "version": info.version, "kind": info.kind}


def _for_go(node: Any) -> Any:
    """``node`` rewritten into what Kubernetes' OpenAPI 3.0 decoder accepts."""
    if isinstance(node, list):
        return [_for_go(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options and len(options) == 2:
        # pydantic's `X | None`: OpenAPI 3.0 says it as X, nullable (and explain then
        # prints X's type, not <Object>).
        node = {**next(o for o in options if o != {"type": "null"}),
                **{k: v for k, v in node.items() if k != "anyOf"}, "nullable": True}
    for key, value in node.items():
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "discriminator" and not isinstance(value, str):
            out[key] = value.get("propertyName", "") if isinstance(value, dict) else ""
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = _for_go(value)
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(ref.removeprefix(_REF))
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _wire_schema(info: KindInfo, schema: dict[str, Any],
                 schemas: dict[str, Any]) -> dict[str, Any]:
    """A kind's object schema as the wire has it: a core kind whose fields are at the
    top level (a ConfigMap's ``data``) has them there, not under ``spec``."""
    out = copy.deepcopy(schema)
    fields = TOP_LEVEL_FIELDS.get((info.api_version, info.kind))
    props = out.get("properties", {})
    if fields and "spec" in props:
        spec = props.pop("spec")
        target = schemas.get(str(spec.get("$ref", "")).removeprefix(_REF), spec)
        for name, prop in target.get("properties", {}).items():
            if name in fields:
                props[name] = prop
        props.pop("status", None)  # none of these kinds has one on the wire
    out["x-kubernetes-group-version-kind"] = [_gvk(info)]
    return out


def group_version_doc(full: dict[str, Any], base: str, infos: list[KindInfo]) -> dict[str, Any]:
    """The OpenAPI v3 document of one group version, cut from ``full``."""
    by_plural = {i.plural: i for i in infos}
    schemas: dict[str, Any] = full.get("components", {}).get("schemas", {})
    paths: dict[str, Any] = {}
    for path, item in full.get("paths", {}).items():
        if not path.startswith(f"/{base}/"):
            continue
        info = _kind_of(path.removeprefix(f"/{base}/").split("/"), by_plural)
        if info is None:
            continue
        marked = {}
        for method, operation in item.items():
            op = dict(operation)
            if method in _ACTIONS:
                collection = not path.endswith("{name}")
                op["x-kubernetes-action"] = ("list" if method == "get" and collection
                                             else _ACTIONS[method])
                op["x-kubernetes-group-version-kind"] = _gvk(info)
            marked[method] = op
        paths[path] = marked
    wanted: set[str] = set()
    _refs(paths, wanted)
    wanted |= {i.kind for i in infos if i.kind in schemas}
    done: dict[str, Any] = {}
    while wanted:
        name = wanted.pop()
        if name in done or name not in schemas:
            continue
        done[name] = schemas[name]
        _refs(schemas[name], wanted)
    for info in infos:
        if info.kind in done:
            done[info.kind] = _wire_schema(info, done[info.kind], schemas)
    doc = {"openapi": "3.0.0", "info": {"title": "ketch", "version": full["info"]["version"]},
           "paths": paths, "components": {"schemas": done}}
    result: dict[str, Any] = _for_go(doc)
    return result


def openapi_v3_router(app: FastAPI, registry: KindRegistry) -> APIRouter:
    router = APIRouter(tags=["discovery"])
    by_base: dict[str, list[KindInfo]] = {}
    for info in registry:
        by_base.setdefault(_base(info), []).append(info)
    # Built on first use: the app's schema needs every route added first.
    docs: dict[str, tuple[bytes, str]] = {}

    def document(base: str) -> tuple[bytes, str]:
        if base not in docs:
            body = json.dumps(group_version_doc(app.openapi(), base, by_base[base]),
                              sort_keys=True).encode()
            docs[base] = (body, hashlib.sha512(body).hexdigest()[:32].upper())
        return docs[base]

    # Not in /openapi.json: these are that document again, in kubectl's shape.
    @router.get("/openapi/v3", include_in_schema=False)
    async def index() -> dict[str, Any]:
        return {"paths": {base: {"serverRelativeURL":
                                 f"/openapi/v3/{base}?hash={document(base)[1]}"}
                          for base in sorted(by_base)}}

    @router.get("/openapi/v3/{base:path}", include_in_schema=False)
    async def one(base: str) -> Response:
        if base not in by_base:
            raise NotFoundError(f"no OpenAPI v3 document for {base!r}")
        body, digest = document(base)
        return Response(body, media_type="application/json", headers={"Etag": f'"{digest}"'})

    return router
