"""The storage initializer: ``storageUri`` to a local path, run inside the replica.

KServe fetches a predictor's model in an init container of the pod; ketch does it
in the replica's own process, before the model loads (``modelserver --storage-uri``),
so a large download holds that replica's unit and never a controller worker.

``file://`` URIs and plain paths are used in place; any other fsspec URI (``s3://``,
``gs://``, ``https://``, ...) is copied once into the model cache of the host the
replica runs on (``KETCH_MODEL_CACHE``, else ``$XDG_CACHE_HOME/ketch/models``, else
``~/.cache/ketch/models``), keyed by the URI. ``model-registry://`` URIs are resolved to
their storage URI by the controller (a database lookup) before the replica starts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["StorageUriError", "fetch_model", "model_cache"]


class StorageUriError(Exception):
    """The model at ``storageUri`` cannot be had: missing, unreadable, or unsupported."""


def model_cache() -> Path:
    """Where downloaded models are kept on this host."""
    explicit = os.environ.get("KETCH_MODEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ketch" / "models"


def fetch_model(uri: str, cache: Path | None = None) -> Path:
    """A local file or directory holding the model at ``uri``."""
    if uri.startswith("model-registry://"):
        raise StorageUriError(f"storageUri {uri!r}: a model-registry URI is resolved by "
                              "the control plane, not in the replica")
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path if parsed.scheme else uri)).expanduser()
        if not path.exists():
            raise StorageUriError(f"storageUri {uri!r}: {path} does not exist")
        return path
    return _download(uri, cache or model_cache())


def _download(uri: str, cache: Path) -> Path:
    import fsspec

    target = cache / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if (target / ".complete").exists():
        return target / "model"
    # A partial copy of its own: two replicas of one model may download at once on
    # one host; the first to finish renames its copy into place, the other drops its own.
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.partial")
    partial.mkdir(parents=True)
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.exists(path):
            raise StorageUriError(f"storageUri {uri!r} does not exist")
        if fs.isdir(path):
            fs.get(path.rstrip("/") + "/", str(partial / "model") + "/", recursive=True)
        else:
            (partial / "model").mkdir()
            fs.get(path, str(partial / "model" / (os.path.basename(path) or "model")))
    except (ImportError, ValueError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise StorageUriError(f"storageUri {uri!r} cannot be read: {err}") from None
    except StorageUriError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise StorageUriError(f"storageUri {uri!r} could not be copied: {err}") from None
    (partial / ".complete").touch()
    try:
        partial.rename(target)
    except OSError:  # another replica's copy got there first
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / ".complete").exists():
            raise StorageUriError(f"storageUri {uri!r}: cannot place the copy at "
                                  f"{target}") from None
    return target / "model"
