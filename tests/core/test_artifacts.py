"""The artifact store keeps every key inside its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import InvalidError, NotFoundError


def test_round_trip_and_uri(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "art"))
    uri = store.put_bytes(b"hello", "logs/a/b.txt")
    assert Path(uri).read_bytes() == b"hello"
    assert store.read_bytes("logs/a/b.txt") == b"hello"
    assert b"".join(store.iter_bytes("logs/a/b.txt", chunk_size=2)) == b"hello"
    src = tmp_path / "local.bin"
    src.write_bytes(b"x" * 100)
    store.put_file(str(src), "models/m.bin")
    assert store.exists("models/m.bin")
    store.delete("models/m.bin")
    assert not store.exists("models/m.bin")
    with pytest.raises(NotFoundError, match=r"models/m\.bin"):
        store.read_bytes("models/m.bin")


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../../b", "", "."])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    store = ArtifactStore(str(tmp_path / "art"))
    with pytest.raises(InvalidError, match="relative path inside the store"):
        store.put_bytes(b"x", key)
    assert not (tmp_path / "escape").exists()


def test_other_fsspec_backends_by_uri() -> None:
    store = ArtifactStore("memory://ketch-test-bucket/root")
    uri = store.put_bytes(b"data", "k/v")
    assert uri == "memory://ketch-test-bucket/root/k/v"
    assert store.read_bytes("k/v") == b"data"
