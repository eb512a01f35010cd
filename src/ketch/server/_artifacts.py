"""Read-only access to artifact bytes at ``/api/ketch/artifacts``, for the dashboard's
previews (metrics, HTML, Markdown, dataset heads).

``GET /api/ketch/artifacts?uri=U`` describes what ``U`` is (file or directory, size,
the entries of a directory); ``GET /api/ketch/artifacts/content?uri=U&maxBytes=N``
returns at most ``N`` bytes of a file (``X-Ketch-Truncated: true`` when there was
more). ``U`` is an artifact URI as the lineage tables and a run's status record it: a
local path or a URI under the artifact store's root. Anything else is refused, and
so is a local path that leaves the root through ``..`` or a symbolic link: the store
may sit beside the user's own files, and this route must not become a way to read
them.

Content is always sent as ``application/octet-stream`` with ``nosniff`` and a
sandboxing Content-Security-Policy, so an HTML artifact opened directly from this
route never runs as a page of the dashboard's origin.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import FieldError, InvalidError, NotFoundError
from ketch.core.runtime import Runtime
from ketch.server._schemas import ArtifactInfo, documented

__all__ = ["DEFAULT_PREVIEW_BYTES", "MAX_PREVIEW_BYTES", "artifacts_router"]

PREFIX = "/api/ketch/artifacts"
DEFAULT_PREVIEW_BYTES = 1 << 20
MAX_PREVIEW_BYTES = 16 << 20
_MAX_ENTRIES = 200
_CHUNK = 65536
_SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "no-store",
}

Uri = Annotated[str, Query(min_length=1, max_length=4096,
                           description="An artifact URI under the artifact store's root")]
MaxBytes = Annotated[int, Query(alias="maxBytes", ge=1, le=MAX_PREVIEW_BYTES,
                                description="Return at most this many bytes")]


def _outside(uri: str, why: str) -> InvalidError:
    return InvalidError("artifact outside the artifact store",
                        [FieldError("uri", f"{uri!r} {why}")])


class _Located:
    """Where an artifact URI points: a local path (checked against the resolved root)
    or a key of a remote store."""

    def __init__(self, store: ArtifactStore, uri: str) -> None:
        self.uri = uri
        self.local: Path | None = None
        self.key = ""
        root = store.root_uri
        local_root = root.removeprefix("file://")
        if "://" not in local_root:
            path = uri.removeprefix("file://")
            if "://" in path or not os.path.isabs(path):
                raise _outside(uri, "is not an absolute path under the store's root")
            real_root = Path(local_root).resolve()
            # resolve() follows symbolic links, so a link inside the store that points
            # out of it is caught here as well as a plain "..".
            real = Path(path).resolve()
            if not real.is_relative_to(real_root):
                raise _outside(uri, f"is not under the artifact store root {local_root!r}")
            self.local = real
            self.key = real.relative_to(real_root).as_posix()
        else:
            prefix = root.rstrip("/") + "/"
            if not uri.startswith(prefix):
                raise _outside(uri, f"is not under the artifact store root {root!r}")
            self.key = uri[len(prefix):]
            # The store refuses keys that climb out (``..``) or are absolute.
            store.uri(self.key)

    def describe(self, store: ArtifactStore) -> dict[str, Any]:
        body: dict[str, Any] = {"uri": self.uri, "key": self.key}
        if self.local is not None:
            if self.local.is_dir():
                entries = sorted(os.scandir(self.local), key=lambda e: e.name)
                body.update(type="directory", entries=[
                    {"name": e.name, "type": "directory" if e.is_dir() else "file",
                     "size": None if e.is_dir() else e.stat().st_size}
                    for e in entries[:_MAX_ENTRIES]], truncated=len(entries) > _MAX_ENTRIES)
                return body
            if not self.local.is_file():
                raise NotFoundError(f"artifact {self.uri!r} does not exist")
            body.update(type="file", size=self.local.stat().st_size)
            return body
        if not store.exists(self.key):
            raise NotFoundError(f"artifact {self.uri!r} does not exist")
        body.update(type="file", size=None)
        return body

    def head(self, store: ArtifactStore, limit: int) -> tuple[Iterator[bytes], bool]:
        """The first ``limit`` bytes, chunked, and whether the file holds more."""
        if self.local is not None:
            if self.local.is_dir():
                raise InvalidError("artifact is a directory", [FieldError(
                    "uri", f"{self.uri!r} is a directory; list it without /content")])
            if not self.local.is_file():
                raise NotFoundError(f"artifact {self.uri!r} does not exist")
            size = self.local.stat().st_size
            return _read_local(self.local, limit), size > limit
        data = bytearray()
        for chunk in store.iter_bytes(self.key, _CHUNK):
            data += chunk
            if len(data) > limit:
                return iter([bytes(data[:limit])]), True
        return iter([bytes(data)]), False


def _read_local(path: Path, limit: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        left = limit
        while left > 0 and (chunk := handle.read(min(_CHUNK, left))):
            left -= len(chunk)
            yield chunk


def artifacts_router(runtime: Runtime) -> APIRouter:
    """Read-only routes over the runtime's artifact store."""
    router = APIRouter(prefix=PREFIX, tags=["artifacts"])

    @router.get("", summary="Describe an artifact (file size, or a directory's entries)",
                response_model=None, responses=documented(ArtifactInfo))
    async def describe(uri: Uri) -> dict[str, Any]:
        store = runtime.artifacts
        return await run_in_threadpool(lambda: _Located(store, uri).describe(store))

    @router.get("/content", summary="The first bytes of an artifact file",
                response_class=StreamingResponse)
    async def content(uri: Uri, max_bytes: MaxBytes = DEFAULT_PREVIEW_BYTES) -> StreamingResponse:
        store = runtime.artifacts
        chunks, truncated = await run_in_threadpool(
            lambda: _Located(store, uri).head(store, max_bytes))
        headers = {**_SAFE_HEADERS, "X-Ketch-Truncated": "true" if truncated else "false"}
        return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)

    return router
