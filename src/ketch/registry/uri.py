"""``model-registry://NAME/VERSION``: the one parser for the registry's URI scheme.

Imports nothing heavy, so the CLI can use it; the SDK and the in-process
resolver both parse through here.
"""

from __future__ import annotations

from ketch.core.errors import InvalidError

__all__ = ["SCHEME", "parse_model_uri"]

SCHEME = "model-registry://"


def parse_model_uri(uri: str) -> tuple[str, str]:
    """``(name, version)`` of a ``model-registry://NAME/VERSION`` URI."""
    name, _, version = uri[len(SCHEME):].strip("/").partition("/")
    if not uri.startswith(SCHEME) or not name or not version:
        raise InvalidError(f"{uri!r}: use model-registry://NAME/VERSION")
    return name, version
