"""The resource store: ``open_store(url)`` picks the backend by URL scheme."""

from __future__ import annotations

from collections.abc import Sequence

from ketch.core.errors import InvalidError
from ketch.core.store._base import Lease, ListResult, RawEvent, ResourceStore, WatchEvent
from ketch.core.store._migrate import SchemaBranch

__all__ = [
    "Lease", "ListResult", "RawEvent", "ResourceStore", "SchemaBranch", "WatchEvent",
    "open_store",
]

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def open_store(url: str, *, migrate: bool = True,
               schemas: Sequence[SchemaBranch] = ()) -> ResourceStore:
    """Open the store at ``url`` (SQLAlchemy URL), migrating core's schema and the
    components' ``schemas`` to their heads."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme == "postgres":
        url = "postgresql" + url[len("postgres"):]
        scheme = "postgresql"
    if scheme in ("postgresql",) and "+" not in url.split(":", 1)[0]:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    if scheme not in _SQL_SCHEMES:
        raise InvalidError(f"unsupported database URL scheme {scheme!r}; "
                           "use sqlite:///PATH or postgresql://USER@HOST/DB")
    from ketch.core.store._sql import SqlResourceStore

    return SqlResourceStore(url, migrate=migrate, schemas=schemas)
