"""The artifact store: fsspec behind one small class, local directory by default.

Keys are relative POSIX paths (``logs/default/jobs/hello/attempt-1.log``); a key
that is absolute or climbs out with ``..`` is refused, so user-supplied names
never escape the store's root. Any fsspec URI works as the root (``s3://b/p``,
``gs://...``, ``memory://...``) when its fsspec implementation is installed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

import fsspec

from ketch.core.errors import FieldError, InvalidError, NotFoundError, StoreError

__all__ = ["ArtifactStore"]


class ArtifactStore:
    """Reads and writes artifacts under one root URI. Thread-safe (fsspec is)."""

    def __init__(self, root_uri: str) -> None:
        try:
            fs, root = fsspec.core.url_to_fs(root_uri)
        except (ImportError, ValueError) as err:
            raise StoreError(f"artifact store {root_uri!r} cannot be opened: {err}") from None
        self._fs: Any = fs
        self._root = root.rstrip("/")
        self.root_uri = root_uri.rstrip("/")
        if self._is_local:
            fs.makedirs(self._root, exist_ok=True)

    @property
    def _is_local(self) -> bool:
        return "file" in _protocols(self._fs)

    def _path(self, key: str) -> str:
        norm = posixpath.normpath(key.replace("\\", "/"))
        if not key or norm.startswith(("/", "..")) or norm == ".":
            raise InvalidError("bad artifact key", [
                FieldError("key", f"{key!r} must be a relative path inside the store")])
        return f"{self._root}/{norm}"

    def uri(self, key: str) -> str:
        """The full URI of ``key`` (what lineage records)."""
        path = self._path(key)
        if self._is_local:
            return path
        return f"{self.root_uri}/{path[len(self._root) + 1:]}"

    def put_file(self, local_path: str, key: str) -> str:
        """Copy a local file in; returns its URI."""
        path = self._path(key)
        self._fs.makedirs(posixpath.dirname(path), exist_ok=True)
        self._fs.put_file(local_path, path)
        return self.uri(key)

    def put_bytes(self, data: bytes, key: str) -> str:
        path = self._path(key)
        self._fs.makedirs(posixpath.dirname(path), exist_ok=True)
        self._fs.pipe_file(path, data)
        return self.uri(key)

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))

    def read_bytes(self, key: str) -> bytes:
        try:
            return bytes(self._fs.cat_file(self._path(key)))
        except FileNotFoundError:
            raise NotFoundError(f"artifact {key!r} not found in {self.root_uri}") from None

    def iter_bytes(self, key: str, chunk_size: int = 65536) -> Iterator[bytes]:
        try:
            with self._fs.open(self._path(key), "rb") as handle:
                while chunk := handle.read(chunk_size):
                    yield chunk
        except FileNotFoundError:
            raise NotFoundError(f"artifact {key!r} not found in {self.root_uri}") from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self._fs.exists(path):
            self._fs.rm(path, recursive=True)


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)

