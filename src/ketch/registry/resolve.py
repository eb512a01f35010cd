"""``model-registry://NAME/VERSION`` to a storage URI, inside the control plane.

For components that run in the same process as the registry (serving's
controller): it reads the store directly, no HTTP round trip. Clients elsewhere
use ``ketch.registry.client.resolve_model_uri``.
"""

from __future__ import annotations

from ketch.core.errors import NotFoundError
from ketch.core.store import ResourceStore
from ketch.registry.uri import SCHEME, parse_model_uri

__all__ = ["SCHEME", "resolve_in_store"]


def resolve_in_store(store: ResourceStore, uri: str, namespace: str = "default") -> str:
    """The model artifact's URI for ``model-registry://NAME/VERSION`` (other URIs
    come back unchanged). ``NotFoundError`` names what is missing."""
    if not uri.startswith(SCHEME):
        return uri
    from ketch.registry._store import PageRequest, RegistryStore

    name, version = parse_model_uri(uri)
    registry = RegistryStore(store)
    try:
        model = registry.find(namespace, ("RegisteredModel",), name=name)
    except NotFoundError:
        raise NotFoundError(f"{uri}: no registered model {name!r} in namespace "
                            f"{namespace!r}") from None
    try:
        mv = registry.find(namespace, ("ModelVersion",), name=version, parent_id=model["id"])
    except NotFoundError:
        raise NotFoundError(f"{uri}: model {name!r} has no version {version!r}") from None
    page = registry.list(namespace, ("ModelArtifact",), PageRequest(page_size=1),
                         parent_id=int(mv["id"]))
    if not page.items or not page.items[0].get("uri"):
        raise NotFoundError(f"{uri}: version {version!r} has no model artifact with a uri")
    return str(page.items[0]["uri"])
