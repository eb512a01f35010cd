"""Every path and artifact URI the pipeline engine builds from names in a run goes
through :func:`under`, which refuses one that leaves its root.

Task, component and output names are checked at load (``_ir``), so a well-formed run
never trips this; it is the second line: a name that slipped past, an artifact key
listed by a remote store, or an artifact URI mapped to a local mount path cannot make
the control plane write outside ``KETCH_HOME``, the artifact store or a step's mount
root.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TypeVar, overload

from ketch.core.errors import FieldError, InvalidError

__all__ = ["under"]

_Root = TypeVar("_Root", str, Path)


def _outside(where: str, joined: str, root: str) -> InvalidError:
    return InvalidError("path outside its root", [FieldError(
        where, f"{joined!r} is not under {root!r} (a name with '..' or '/' in it?)")])


def _join(root: str, parts: tuple[str, ...], where: str, shown: str | None = None) -> str:
    base = posixpath.normpath(root) if root else "."
    joined = posixpath.normpath(posixpath.join(base, *(str(p) for p in parts)))
    if any(posixpath.isabs(str(p)) for p in parts) or not (
            joined == base or joined.startswith(base.rstrip("/") + "/")):
        shown = shown or root
        raise _outside(where, "/".join([shown.rstrip("/"), *(str(p) for p in parts)]), shown)
    return joined


@overload
def under(root: Path, *parts: str, where: str) -> Path: ...


@overload
def under(root: str, *parts: str, where: str) -> str: ...


def under(root: str | Path, *parts: str, where: str) -> str | Path:
    """``root`` joined with ``parts``, normalized; ``InvalidError`` naming ``where``
    (the task or field the parts came from) if the result is not under ``root``.

    ``root`` may be a local path (``Path`` or ``str``) or a URI (``s3://bucket/prefix``):
    a URI keeps its scheme and is checked on its path part.
    """
    if isinstance(root, Path):
        return Path(_join(str(root), parts, where))
    if "://" in root:
        scheme, rest = root.split("://", 1)
        # The bucket (or host) is part of the root: a part may not climb out of it.
        lead = "" if rest.startswith("/") else "/"
        return f"{scheme}://{_join(lead + rest, parts, where, root)[len(lead):]}"
    return _join(root, parts, where)
