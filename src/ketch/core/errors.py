"""Typed errors: every user-visible failure in ketch is one of these.

Hierarchy (each class has a stable ``code`` and an HTTP status; the REST client
rebuilds the same class from the server's error body, so callers catch the same
thing embedded or remote)::

    KetchError (500, "Internal")
    ├── InvalidError (422, "Invalid")            bad input: field path + message
    │   └── BadRequestError (400, "BadRequest")  undecodable body, bad selector, over a limit
    ├── RequestEntityTooLargeError (413)         request body or object over its size limit
    ├── NotFoundError (404, "NotFound")
    │   └── UnknownKindError (404, "UnknownKind")
    ├── AlreadyExistsError (409, "AlreadyExists")
    ├── ConflictError (409, "Conflict")          stale resourceVersion
    │   └── ApplyConflictError (409, "Conflict") server-side apply: fields other managers own
    ├── GoneError (410, "Expired")               watch resourceVersion too old
    ├── UnauthorizedError (401, "Unauthorized")
    ├── UnavailableError (503, "ServiceUnavailable")
    ├── StoreError (500, "StoreError")           database failures, rewrapped
    └── ExecutorError (500, "ExecutorError")     executor backend failures
        └── InsufficientResourcesError (503)     no free slots at the moment
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "ApplyConflictError",
    "BadRequestError",
    "ConflictError",
    "ExecutorError",
    "FieldError",
    "GoneError",
    "InsufficientResourcesError",
    "InvalidError",
    "KetchError",
    "NotFoundError",
    "RequestEntityTooLargeError",
    "StoreError",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownKindError",
    "UnsupportedMediaTypeError",
    "error_from_body",
]


class KetchError(Exception):
    """Root of every ketch error."""

    code: ClassVar[str] = "Internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_body(self) -> dict[str, Any]:
        """The error as a Kubernetes-style ``Status`` body."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": self.message,
            "reason": self.code,
            "code": self.http_status,
        }


class FieldError:
    """One wrong field: a dotted path (``spec.resources.cpu``) and what is wrong."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def __repr__(self) -> str:
        return f"FieldError({self.path!r}, {self.message!r})"


class InvalidError(KetchError):
    """The input is malformed; ``fields`` name each wrong field path."""

    code = "Invalid"
    http_status = 422

    def __init__(self, message: str, fields: list[FieldError] | None = None,
                 source: str | None = None) -> None:
        self.fields = list(fields or [])
        self.source = source
        text = message
        if self.fields:
            text = f"{message}: " + "; ".join(str(f) for f in self.fields)
        if source:
            text = f"{source}: {text}"
        super().__init__(text)

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["details"] = {
            "causes": [{"field": f.path, "message": f.message} for f in self.fields]
        }
        return body


class BadRequestError(InvalidError):
    """Input the server cannot even decode or parse (a body nested or aliased past the
    limits, a malformed label selector): 400, where Kubernetes answers 400 too."""

    code = "BadRequest"
    http_status = 400


class RequestEntityTooLargeError(KetchError):
    """A request body or a stored object over its size limit."""

    code = "RequestEntityTooLarge"
    http_status = 413


class UnsupportedMediaTypeError(KetchError):
    """A request body in an encoding the server does not read (Kubernetes' protobuf)."""

    code = "UnsupportedMediaType"
    http_status = 415


class NotFoundError(KetchError):
    code = "NotFound"
    http_status = 404


class UnknownKindError(NotFoundError):
    code = "UnknownKind"


class AlreadyExistsError(KetchError):
    code = "AlreadyExists"
    http_status = 409


class ConflictError(KetchError):
    """A write carried a stale ``resourceVersion``: re-read and try again."""

    code = "Conflict"
    http_status = 409


class ApplyConflictError(ConflictError):
    """A server-side apply would change fields other managers own; ``causes`` name
    each field and its manager (``FieldManagerConflict``), as kube-apiserver's do."""

    def __init__(self, message: str, causes: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.causes = causes

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["details"] = {"causes": self.causes}
        return body


class GoneError(KetchError):
    code = "Expired"
    http_status = 410


class UnauthorizedError(KetchError):
    code = "Unauthorized"
    http_status = 401


class UnavailableError(KetchError):
    code = "ServiceUnavailable"
    http_status = 503


class StoreError(KetchError):
    code = "StoreError"


class ExecutorError(KetchError):
    code = "ExecutorError"


class InsufficientResourcesError(ExecutorError):
    """The unit does not fit the free slots right now (another unit took them
    between ``fits`` and ``submit``); try again when slots free up."""

    code = "InsufficientResources"
    http_status = 503


_BY_CODE: dict[str, type[KetchError]] = {
    cls.code: cls
    for cls in (
        KetchError, InvalidError, BadRequestError, RequestEntityTooLargeError, NotFoundError,
        UnknownKindError, AlreadyExistsError, ConflictError, GoneError, UnauthorizedError,
        UnavailableError, StoreError, ExecutorError, InsufficientResourcesError,
    )
}


def error_from_body(status: int, body: Any) -> KetchError:
    """Rebuild the typed error a server sent (used by the REST client)."""
    if not isinstance(body, dict):
        return KetchError(f"HTTP {status}: {body!r}"[:500])
    message = str(body.get("message") or f"HTTP {status}")
    cls = _BY_CODE.get(str(body.get("reason")))
    if cls is None:
        cls = next((c for c in _BY_CODE.values() if c.http_status == status), KetchError)
    if issubclass(cls, InvalidError):
        err = cls.__new__(cls)
        KetchError.__init__(err, message)
        causes = (body.get("details") or {}).get("causes") or []
        err.fields = [FieldError(c.get("field", ""), c.get("message", "")) for c in causes]
        err.source = None
        return err
    return cls(message)
