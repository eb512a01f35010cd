"""Configuration from the environment: one frozen ``Settings`` per control plane.

Every setting has an embedded default, so a laptop needs none of them:

============================  ==============================================
``KETCH_HOME``                state directory (default ``~/.ketch``)
``KETCH_DATABASE_URL``        SQLAlchemy URL (default SQLite in KETCH_HOME)
``KETCH_ARTIFACTS_URI``       fsspec URI (default ``KETCH_HOME/artifacts``)
``KETCH_EXECUTOR``            ``local`` (default), ``ray``, or another registered backend
``KETCH_RAY_ADDRESS``         the ray backend's cluster: ``auto`` (default), ``HOST:PORT``,
                              ``ray://HOST:10001``, or ``local`` (a cluster of this process)
``KETCH_RAY_NODE_LABELS``     only Ray nodes with these labels take units: ``k=v,k2=v2``
``KETCH_HOST``                a server to talk to instead of the local one
``KETCH_TOKEN``               bearer token sent to / required by the server
``KETCH_CPUS``                CPU slots of the local executor (default: cores),
                              a quantity: ``8``, ``1.5``, ``500m``
``KETCH_MEMORY``              memory slots, bytes or a quantity such as ``16Gi``
``KETCH_GPUS``                GPU ids, e.g. ``0,1``; ``,`` for none (default:
                              ``nvidia-smi -L``)
``KETCH_MAX_REQUEST_BYTES``   largest API request body (default 3 MiB, as
                              kube-apiserver's, 3145728)
``KETCH_CHANGE_LOG_SECONDS``  how long the change log keeps a revision for watches
                              to resume from (default 300, as kube-apiserver's
                              compaction interval; at most 1,000 revisions either way)
============================  ==============================================

``KETCH_CPUS``, ``KETCH_MEMORY`` and ``KETCH_GPUS`` are checked when ``Settings``
is made, so a bad value stops ``ketch up`` (or the background server) before
anything starts, naming the variable; every component reads the parsed values
(``cpu_slots``, ``memory_slots``, ``gpu_ids``), never the raw text.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ketch.core.errors import InvalidError
from ketch.core.quantity import parse_cpu, parse_memory

Q = TypeVar("Q", int, float)

__all__ = ["DEFAULT_CHANGE_LOG_SECONDS", "DEFAULT_MAX_REQUEST_BYTES", "Settings", "redact_url"]

# kube-apiserver's limit on a request body (apiserver.MaxRequestBodyBytes): 3 MiB.
DEFAULT_MAX_REQUEST_BYTES = 3 * 1024 * 1024
# kube-apiserver compacts etcd's history every 5 minutes (--etcd-compaction-interval).
DEFAULT_CHANGE_LOG_SECONDS = 300


def _env(name: str, environ: dict[str, str]) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _positive_int(name: str, environ: dict[str, str], default: int) -> int:
    text = _env(name, environ)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidError(f"{name}={text!r} must be a positive whole number of bytes")
    return int(text)


# What CUDA_VISIBLE_DEVICES takes: an index, or a GPU / MIG UUID as nvidia-smi -L shows it.
_GPU_ID = re.compile(r"^(?:[0-9]+|(?:GPU|MIG)-[0-9A-Za-z/-]+)$")


def _positive_quantity(variable: str, text: str | None, parse: Callable[[str], Q],
                       what: str, examples: str, minimum: str) -> Q | None:
    """``parse(text)`` of a quantity variable, refused in one line naming it."""
    if text is None:
        return None
    try:
        value = parse(text)
    except ValueError:
        raise InvalidError(f"{variable}={text!r} is not a {what} quantity: use "
                           f"{examples}") from None
    if value <= 0:
        raise InvalidError(f"{variable}={text!r} must be {minimum}")
    return value


def _cpu_slots(text: str | None) -> float | None:
    return _positive_quantity("KETCH_CPUS", text, parse_cpu, "CPU",
                              "cores such as 8, 1.5 or 500m", "more than 0 cores")


def _memory_slots(text: str | None) -> int | None:
    return _positive_quantity("KETCH_MEMORY", text, parse_memory, "memory",
                              "bytes or a quantity such as 16Gi, 512Mi or 512M",
                              "at least 1 byte")


def _gpu_ids(text: str | None) -> list[str] | None:
    if text is None:
        return None
    ids = [part.strip() for part in text.split(",")]
    ids = [part for part in ids if part]
    bad = [part for part in ids if not _GPU_ID.match(part)]
    if bad:
        raise InvalidError(f"KETCH_GPUS={text!r}: {bad[0]!r} is not a GPU id; use indices "
                           f"or UUIDs separated by commas, such as 0,1 (',' for none)")
    if len(set(ids)) != len(ids):
        raise InvalidError(f"KETCH_GPUS={text!r} names a GPU twice")
    return ids


def _labels(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidError(f"KETCH_RAY_NODE_LABELS must be key=value pairs separated by "
                               f"commas, not {text!r}")
        labels[key.strip()] = value.strip()
    return labels


def redact_url(url: str) -> str:
    """A database URL fit to show: the password masked, whether it comes as
    ``user:password@`` or as a ``password=`` query parameter (libpq and psycopg take
    both), for every message and log line that names the URL."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    end = re.search(r"[/?#]", rest)
    netloc, tail = (rest[:end.start()], rest[end.start():]) if end else (rest, "")
    if "@" in netloc:
        cred, _, host = netloc.rpartition("@")
        user, colon, _ = cred.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"{cred}@{host}"
    tail = re.sub(r"(?i)((?:^|[?&;])password=)[^&;#]*", r"\1***", tail)
    return f"{head}://{netloc}{tail}"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one control plane or client."""

    home: Path
    database_url: str
    artifacts_uri: str
    executor: str = "local"
    host: str | None = None
    token: str | None = None
    cpus: str | None = None
    memory: str | None = None
    gpus: str | None = None
    unit_index: str | None = None
    ray_address: str = "auto"
    ray_node_labels: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    change_log_seconds: int = DEFAULT_CHANGE_LOG_SECONDS
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here, not where an executor is built: a bad value is one error
        # naming the variable before a server binds, locks its home or starts work.
        _cpu_slots(self.cpus)
        _memory_slots(self.memory)
        _gpu_ids(self.gpus)
        _labels(self.ray_node_labels)

    @property
    def cpu_slots(self) -> float | None:
        """``KETCH_CPUS`` in cores, or None for the backend's default (all cores)."""
        return _cpu_slots(self.cpus)

    @property
    def memory_slots(self) -> int | None:
        """``KETCH_MEMORY`` in bytes, or None for the backend's default (all RAM)."""
        return _memory_slots(self.memory)

    @property
    def gpu_ids(self) -> list[str] | None:
        """``KETCH_GPUS`` as ids (``[]`` for ``,``: none), or None to detect them."""
        return _gpu_ids(self.gpus)

    @property
    def ray_labels(self) -> dict[str, str]:
        """``KETCH_RAY_NODE_LABELS`` as a mapping (empty: every node)."""
        return _labels(self.ray_node_labels)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read ``KETCH_*`` variables; missing ones take the embedded defaults."""
        env = dict(os.environ if environ is None else environ)
        home = Path(_env("KETCH_HOME", env) or Path.home() / ".ketch").expanduser().resolve()
        db = _env("KETCH_DATABASE_URL", env) or f"sqlite:///{home / 'ketch.db'}"
        artifacts = _env("KETCH_ARTIFACTS_URI", env) or str(home / "artifacts")
        return cls(
            home=home,
            database_url=db,
            artifacts_uri=artifacts,
            executor=_env("KETCH_EXECUTOR", env) or "local",
            host=_env("KETCH_HOST", env),
            token=_env("KETCH_TOKEN", env),
            cpus=_env("KETCH_CPUS", env),
            memory=_env("KETCH_MEMORY", env),
            gpus=_env("KETCH_GPUS", env),
            unit_index=_env("KETCH_UNIT_INDEX", env),
            ray_address=_env("KETCH_RAY_ADDRESS", env) or "auto",
            ray_node_labels=_env("KETCH_RAY_NODE_LABELS", env),
            max_request_bytes=_positive_int("KETCH_MAX_REQUEST_BYTES", env,
                                            DEFAULT_MAX_REQUEST_BYTES),
            change_log_seconds=_positive_int("KETCH_CHANGE_LOG_SECONDS", env,
                                             DEFAULT_CHANGE_LOG_SECONDS),
        )

    @property
    def unit_index_dir(self) -> Path | None:
        """Where the local executors of every control plane on this database, on this
        host, find each other's units (``KETCH_UNIT_INDEX``; by default a directory of
        the user's cache named after the database). None for the home's own SQLite
        database, which no other control plane uses."""
        if self.unit_index is not None:
            return Path(self.unit_index).expanduser()
        if self.database_url == f"sqlite:///{self.home / 'ketch.db'}":
            return None
        digest = hashlib.sha256(redact_url(self.database_url).encode()).hexdigest()[:16]
        return Path.home() / ".cache" / "ketch" / "units" / digest

    @property
    def runs_dir(self) -> Path:
        """Where the local executor keeps per-work-unit scratch files (logs while running)."""
        return self.home / "runs"
