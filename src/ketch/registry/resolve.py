"""``model-registry://NAME/VERSION`` inside the control plane: resolve and record.

For components that run in the same process as the registry (serving's
controller): it reads and writes the store directly, no HTTP round trip. Clients
elsewhere use ``ketch.registry.client.resolve_model_uri``.

Serving a registered model is recorded as Kubeflow Model Registry's
InferenceService controller records it: a ``ServingEnvironment`` named after the
namespace, and in it an ``InferenceService`` entity named after the service, pointing
at the registered model and version, ``desiredState: DEPLOYED``, its URL in the
``url`` custom property. That entity is what refuses deleting a served model (409);
undeploying sets ``desiredState: UNDEPLOYED``, as upstream does on deletion.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ketch.core.errors import NotFoundError
from ketch.core.store import ResourceStore
from ketch.registry.uri import SCHEME, parse_model_uri

if TYPE_CHECKING:
    from ketch.registry._store import RegistryStore

__all__ = ["SCHEME", "Deployment", "deploy_in_store", "resolve_in_store", "undeploy_in_store"]


@dataclass(frozen=True)
class Deployment:
    """What serving a registry URI recorded: the entities' ids and the storage URI."""

    storage_uri: str
    registered_model_id: str
    model_version_id: str
    inference_service_id: str
    # Why serving this is questionable ("version forest-1 is ARCHIVED"), else "".
    warning: str = ""


def _lookup(store: ResourceStore, uri: str,
            namespace: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(registered model, model version, storage URI); ``NotFoundError`` names what
    is missing."""
    from ketch.registry._store import PageRequest, RegistryStore

    name, version = parse_model_uri(uri)
    registry = RegistryStore(store)
    try:
        model = registry.find(namespace, ("RegisteredModel",), name=name)
    except NotFoundError:
        raise NotFoundError(f"{uri}: no registered model {name!r} in namespace "
                            f"{namespace!r}") from None
    try:
        mv = registry.find(namespace, ("ModelVersion",), name=version,
                           parent_id=str(model["id"]))
    except NotFoundError:
        raise NotFoundError(f"{uri}: model {name!r} has no version {version!r}") from None
    page = registry.list(namespace, ("ModelArtifact",), PageRequest(page_size=1),
                         parent_id=int(mv["id"]))
    if not page.items or not page.items[0].get("uri"):
        raise NotFoundError(f"{uri}: version {version!r} has no model artifact with a uri")
    return model, mv, str(page.items[0]["uri"])


def resolve_in_store(store: ResourceStore, uri: str, namespace: str = "default") -> str:
    """The model artifact's URI for ``model-registry://NAME/VERSION`` (other URIs
    come back unchanged). ``NotFoundError`` names what is missing."""
    if not uri.startswith(SCHEME):
        return uri
    return _lookup(store, uri, namespace)[2]


def deploy_in_store(store: ResourceStore, uri: str, namespace: str, *, service: str,
                    url: str | None = None, runtime: str = "ketch") -> Deployment:
    """Resolve ``uri`` and record that inference service ``service`` serves it
    (created, or updated to this version and ``DEPLOYED``)."""
    from ketch.registry._store import PageRequest, RegistryStore

    model, mv, storage_uri = _lookup(store, uri, namespace)
    registry = RegistryStore(store)
    env = _serving_environment(registry, namespace)
    body: dict[str, Any] = {"modelVersionId": str(mv["id"]), "desiredState": "DEPLOYED",
                               "runtime": runtime}
    if url:
        body["customProperties"] = {"url": {"string_value": url,
                                            "metadataType": "MetadataStringValue"}}
    found = registry.list(namespace, ("InferenceService",), PageRequest(
        filter_query=f'name = "{service}"'), parent_id=int(env["id"])).items
    current = found[0] if found else None
    if current is not None and current.get("registeredModelId") != str(model["id"]):
        # registeredModelId is immutable (upstream too): a service that now serves
        # another model is a new entity.
        registry.delete(namespace, ("InferenceService",), str(current["id"]))
        current = None
    if current is None:
        entity = registry.create(namespace, "InferenceService", {
            **body, "name": service, "registeredModelId": str(model["id"]),
            "servingEnvironmentId": str(env["id"])})
    else:
        entity = registry.patch(namespace, ("InferenceService",), str(current["id"]), body)
    name, version = parse_model_uri(uri)
    warning = ""
    if model.get("state") == "ARCHIVED":
        warning = f"{uri}: model {name!r} is ARCHIVED"
    elif mv.get("state") == "ARCHIVED":
        warning = f"{uri}: version {version!r} of model {name!r} is ARCHIVED"
    return Deployment(storage_uri=storage_uri, registered_model_id=str(model["id"]),
                      model_version_id=str(mv["id"]),
                      inference_service_id=str(entity["id"]), warning=warning)


def record_url_in_store(store: ResourceStore, namespace: str, inference_service_id: str,
                        url: str) -> None:
    """Record the URL a recorded inference service answers at (known only once its
    front has started, after the service was recorded); gone already: nothing to do."""
    from ketch.registry._store import RegistryStore

    with contextlib.suppress(NotFoundError):
        RegistryStore(store).patch(namespace, ("InferenceService",), inference_service_id, {
            "customProperties": {"url": {"string_value": url,
                                         "metadataType": "MetadataStringValue"}}})


def undeploy_in_store(store: ResourceStore, namespace: str, inference_service_id: str) -> None:
    """Mark the recorded inference service ``UNDEPLOYED`` (gone already: nothing to do),
    so the model it served can be deleted."""
    from ketch.registry._store import RegistryStore

    with contextlib.suppress(NotFoundError):
        RegistryStore(store).patch(namespace, ("InferenceService",), inference_service_id,
                                   {"desiredState": "UNDEPLOYED"})


def _serving_environment(registry: RegistryStore, namespace: str) -> dict[str, Any]:
    """The namespace's ServingEnvironment (upstream names it after the namespace)."""
    from ketch.core.errors import AlreadyExistsError

    try:
        return registry.find(namespace, ("ServingEnvironment",), name=namespace)
    except NotFoundError:
        pass
    try:
        return registry.create(namespace, "ServingEnvironment", {"name": namespace})
    except AlreadyExistsError:  # another control plane made it meanwhile
        return registry.find(namespace, ("ServingEnvironment",), name=namespace)
