"""Where a predictor's model is: ``storageUri`` to a local path the model server reads.

``file://`` URIs and plain paths are used in place; ``model-registry://NAME/VERSION``
is resolved through the registry first; any other fsspec URI (``s3://``, ``gs://``,
...) is copied once into ``KETCH_HOME/models/<hash>`` (KServe's storage initializer
does the same into the pod).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from ketch.core.errors import InvalidError, NotFoundError, StoreError
from ketch.core.store import ResourceStore

__all__ = ["local_model_path"]


def local_model_path(uri: str, *, store: ResourceStore, namespace: str, cache: Path) -> Path:
    """A local file or directory holding the model at ``uri``."""
    if uri.startswith("model-registry://"):
        from ketch.registry.resolve import resolve_in_store

        return local_model_path(resolve_in_store(store, uri, namespace), store=store,
                                namespace=namespace, cache=cache)
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path if parsed.scheme else uri)).expanduser()
        if not path.exists():
            raise NotFoundError(f"storageUri {uri!r}: {path} does not exist")
        return path
    return _download(uri, cache)


def _download(uri: str, cache: Path) -> Path:
    import fsspec

    target = cache / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if (target / ".complete").exists():
        return target / "model"
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.exists(path):
            raise NotFoundError(f"storageUri {uri!r} does not exist")
        if fs.isdir(path):
            fs.get(path.rstrip("/") + "/", str(partial / "model") + "/", recursive=True)
        else:
            (partial / "model").mkdir()
            fs.get(path, str(partial / "model" / os.path.basename(path)))
    except (ImportError, ValueError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise InvalidError(f"storageUri {uri!r} cannot be read: {err}") from None
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise StoreError(f"storageUri {uri!r} could not be copied: {err}") from None
    (partial / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target / "model"
