"""Reading resources from YAML or JSON text, one or many documents.

Errors name the source (file name or ``<stdin>``), the document number and the
line where YAML went wrong, so a user can fix the file at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ketch.core.codec import decode_body, safe_load_all
from ketch.core.errors import FieldError, InvalidError
from ketch.core.field_validation import FieldValidation, UnknownFields
from ketch.core.kinds import KindInfo, KindRegistry, validation_fields
from ketch.core.resources import DEFAULT_NAMESPACE, Resource

__all__ = ["load_documents", "parse_resource", "with_type_of"]


def load_documents(text: str, source: str = "<input>") -> list[dict[str, Any]]:
    """Parse every document of a YAML (or JSON) stream; skip empty documents.

    A ``kind: List`` document (as ``kubectl get -o yaml`` writes) expands to its items.
    The server's body decoder reads it (``ketch.core.codec.safe_load_all``), with its
    limits on aliasing and nesting.
    """
    docs = safe_load_all(text, source)
    out: list[dict[str, Any]] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise InvalidError(f"document {index} is a {type(doc).__name__}, not a mapping",
                               source=source)
        if doc.get("kind") == "List" or (doc.get("kind", "").endswith("List")
                                         and isinstance(doc.get("items"), list)):
            out.extend(item for item in doc["items"] if isinstance(item, dict))
        else:
            out.append(doc)
    return out


def parse_json_body(raw: bytes, source: str = "request body") -> Any:
    """A request body as JSON (or YAML, which is a superset), with a clear error
    (``BadRequestError``, 400, as Kubernetes answers a body it cannot decode)."""
    return decode_body(raw, source)


def with_type_of(doc: Any, info: KindInfo) -> Any:
    """``doc`` with the ``apiVersion`` and ``kind`` of the URL it was sent to where it
    leaves them out, as kube-apiserver decodes a create or update body with the
    endpoint's kind as its default: the Kubernetes Python client sends
    ``V1ConfigMap(metadata=..., data=...)`` without them. One that names another kind
    is still refused (``parse_resource``'s kind mismatch)."""
    if not isinstance(doc, dict):
        return doc
    defaults = {"apiVersion": info.api_version, "kind": info.kind}
    missing = {key: value for key, value in defaults.items() if doc.get(key) in (None, "")}
    return {**doc, **missing} if missing else doc


def parse_resource(doc: Any, registry: KindRegistry, *, source: str | None = None,
                   namespace: str | None = None, expect: KindInfo | None = None,
                   validation: FieldValidation | None = None) -> tuple[KindInfo, Resource]:
    """Validate one document into ``(kind, resource)``; ``InvalidError`` names the field.

    ``validation``: the request's ``fieldValidation``, which drops unknown fields (and
    refuses or warns about them) before validation; without it they are invalid."""
    if not isinstance(doc, dict):
        raise InvalidError("a resource must be a mapping", source=source)
    missing = [FieldError(f, "required") for f in ("apiVersion", "kind", "metadata")
               if f not in doc or doc[f] in (None, "")]
    if "metadata" in doc and isinstance(doc["metadata"], dict) and not doc["metadata"].get("name"):
        missing.append(FieldError("metadata.name", "required"))
    if missing:
        label = _label(doc)
        raise InvalidError(f"invalid {label}", missing, source)
    if not isinstance(doc["apiVersion"], str) or not isinstance(doc["kind"], str):
        raise InvalidError("invalid resource",
                           [FieldError("apiVersion", "must be a string")], source)
    if expect is not None and (doc["kind"], doc["apiVersion"]) != (expect.kind,
                                                                    expect.api_version):
        # A body for another kind (or version) sent to this kind's URL is bad input
        # for this request, not an unknown kind.
        field = "kind" if doc["kind"] != expect.kind else "apiVersion"
        raise InvalidError("kind mismatch", [FieldError(
            field, f"{doc['apiVersion']}/{doc['kind']} cannot be sent to "
            f"{expect.plural}.{expect.group} ({expect.api_version}/{expect.kind})")], source)
    info = registry.for_object(doc["apiVersion"], doc["kind"])
    body = dict(doc)
    meta = dict(body["metadata"]) if isinstance(body["metadata"], dict) else body["metadata"]
    if isinstance(meta, dict):
        if namespace and not meta.get("namespace"):
            meta["namespace"] = namespace
        if namespace and meta.get("namespace") and meta["namespace"] != namespace:
            raise InvalidError("namespace mismatch", [FieldError(
                "metadata.namespace", f"{meta['namespace']!r} does not match the request's "
                f"namespace {namespace!r}")], source)
        meta.setdefault("namespace", DEFAULT_NAMESPACE)
    body["metadata"] = meta
    if validation is not None and validation.drops:
        found = UnknownFields()
        body = validation.prune(Resource, body, "", found)
        for part in ("spec", "status"):
            if isinstance(body.get(part), dict) and body[part]:
                model = info.spec_model if part == "spec" else info.status_model
                body[part] = validation.prune(model, body[part], part, found)
        validation.settle(found, info.kind, info.version)
    try:
        resource = Resource.model_validate(body)
    except ValidationError as err:
        raise InvalidError(f"invalid {_label(doc)}", validation_fields(err), source) from None
    return info, info.validate(resource, source)


def _label(doc: dict[str, Any]) -> str:
    kind = doc.get("kind") or "resource"
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"),
                                                                 dict) else None
    return f"{kind} {name!r}" if name else str(kind)
