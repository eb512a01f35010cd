"""ketch's registry SDK: the shapes of the upstream ``model_registry.ModelRegistry``
over ketch's REST API, with the same connection setup as ``ketch.Client``
(``ketch.core.rest``); ``client.registry`` is one over the client's own connection.

Entities are returned as the API's JSON objects (dicts with ``id``, ``name``,
``customProperties`` in typed form, ...); ``metadata`` arguments take plain
Python values and are typed on the way in, as the upstream client does.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from ketch.core.errors import (
    AlreadyExistsError,
    InvalidError,
    KetchError,
    NotFoundError,
    UnavailableError,
)
from ketch.core.rest import RestSession, connect
from ketch.registry.uri import SCHEME, parse_model_uri

__all__ = ["ModelRegistry", "from_metadata", "resolve_model_uri", "to_metadata"]

_PREFIX = "/api/model_registry/v1"


def to_metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values to typed custom properties (bool, int, float, str)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[key] = {"bool_value": value, "metadataType": "MetadataBoolValue"}
        elif isinstance(value, int):
            out[key] = {"int_value": str(value), "metadataType": "MetadataIntValue"}
        elif isinstance(value, float):
            out[key] = {"double_value": value, "metadataType": "MetadataDoubleValue"}
        else:
            out[key] = {"string_value": str(value), "metadataType": "MetadataStringValue"}
    return out


def from_metadata(props: dict[str, Any]) -> dict[str, Any]:
    """Typed custom properties back to plain values."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if "int_value" in value:
            out[key] = int(value["int_value"])
        else:
            out[key] = next((v for k, v in value.items() if k.endswith("_value")), None)
    return out


class ModelRegistry:
    """Register, find, update, archive and delete models.

    Args:
        host: server URL; default: the ketch server for this ``KETCH_HOME``
            (started in the background when none runs), or ``KETCH_HOST``.
        namespace: the ketch namespace the registry lives in.
        author: default author of versions and owner of models.
    """

    def __init__(self, host: str | None = None, *, namespace: str = "default",
                 author: str | None = None, token: str | None = None,
                 timeout: float = 30.0, session: RestSession | None = None) -> None:
        session = session or connect(host, token=token, timeout=timeout)
        self.url = session.url
        self.namespace = namespace
        self.author = author
        self._http = session.client(_PREFIX, params={"namespace": namespace})

    @classmethod
    def from_client(cls, client: Any) -> ModelRegistry:
        """``client.registry``: this registry over a ``ketch.Client``'s connection and
        default namespace."""
        return cls(namespace=client.namespace, session=client.rest)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise UnavailableError(f"cannot reach ketch at {self.url}: {err}") from None
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text}
        if response.status_code >= 400:
            message = str(body.get("message") or body) if isinstance(body, dict) else str(body)
            error: type[KetchError] = {404: NotFoundError, 409: AlreadyExistsError,
                                       400: InvalidError, 422: InvalidError}.get(
                response.status_code, KetchError)
            raise error(message)
        return body

    def _find(self, path: str, **params: str) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", path, params=params))
        except NotFoundError:
            return None

    # -- reads ----------------------------------------------------------------

    def get_registered_model(self, name: str) -> dict[str, Any] | None:
        return self._find("/registered_model", name=name)

    def get_model_version(self, name: str, version: str) -> dict[str, Any] | None:
        model = self.get_registered_model(name)
        if model is None:
            raise NotFoundError(f"model {name!r} does not exist")
        return self._find("/model_version", name=version, parentResourceId=model["id"])

    def get_model_artifact(self, name: str, version: str) -> dict[str, Any] | None:
        mv = self.get_model_version(name, version)
        if mv is None:
            raise NotFoundError(f"version {version!r} of model {name!r} does not exist")
        items = self._call("GET", f"/model_versions/{mv['id']}/artifacts",
                           params={"artifactType": "model-artifact"})["items"]
        return dict(items[0]) if items else None

    def list_models(self, *, filter_query: str | None = None,
                    page_size: int = 100) -> list[dict[str, Any]]:
        return self._all("/registered_models", filter_query, page_size)

    def list_versions(self, name: str, *, page_size: int = 100) -> list[dict[str, Any]]:
        model = self.get_registered_model(name)
        if model is None:
            raise NotFoundError(f"model {name!r} does not exist")
        return self._all(f"/registered_models/{model['id']}/versions", None, page_size)

    def _all(self, path: str, filter_query: str | None, page_size: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            params: dict[str, Any] = {"pageSize": page_size, "orderBy": "CREATE_TIME"}
            if token:
                params["nextPageToken"] = token
            if filter_query:
                params["filterQuery"] = filter_query
            page = self._call("GET", path, params=params)
            items += page["items"]
            token = page["nextPageToken"]
            if not token:
                return items

    # -- writes ---------------------------------------------------------------

    def register_model(self, name: str, uri: str, *, model_format_name: str,
                       model_format_version: str = "", version: str,
                       description: str | None = None, author: str | None = None,
                       owner: str | None = None, metadata: dict[str, Any] | None = None,
                       storage_key: str | None = None, storage_path: str | None = None,
                       service_account_name: str | None = None,
                       model_source_kind: str | None = None,
                       model_source_class: str | None = None,
                       model_source_group: str | None = None,
                       model_source_id: str | None = None,
                       model_source_name: str | None = None) -> dict[str, Any]:
        """Create the model if needed, then the version and its model artifact.

        Called inside a ketch Job (``KETCH_JOB_NAME`` is set), the artifact records
        that Job as its source (``modelSourceKind: job``); inside a pipeline step
        (``KETCH_PIPELINE_RUN``), the run (``modelSourceKind: kfp``, class
        ``pipelinerun``, as KFP records it); unless ``model_source_*`` say otherwise.
        Returns the new version; ``AlreadyExistsError`` if it exists.
        """
        if model_source_kind is None and os.environ.get("KETCH_PIPELINE_RUN"):
            # Registered from a pipeline step: the run is the source, as KFP records it.
            model_source_kind = "kfp"
            model_source_class = model_source_class or "pipelinerun"
            model_source_group = model_source_group or os.environ.get(
                "KETCH_PIPELINE_RUN_NAMESPACE")
            model_source_name = model_source_name or os.environ["KETCH_PIPELINE_RUN"]
            model_source_id = model_source_id or os.environ.get("KETCH_PIPELINE_RUN_UID")
        elif model_source_kind is None and os.environ.get("KETCH_JOB_NAME"):
            # Registered from inside a ketch Job: record that Job as the source.
            model_source_kind = "job"
            model_source_class = model_source_class or "ketch.dev/v1/Job"
            model_source_group = model_source_group or os.environ.get("KETCH_JOB_NAMESPACE")
            model_source_name = model_source_name or os.environ["KETCH_JOB_NAME"]
            model_source_id = model_source_id or os.environ.get("KETCH_JOB_UID")
        model = self.get_registered_model(name)
        if model is None:
            model = self._call("POST", "/registered_models", json=_clean({
                "name": name, "owner": owner or self.author}))
        mv = self._call("POST", "/model_versions", json=_clean({
            "name": version, "registeredModelId": model["id"], "description": description,
            "author": author or self.author,
            "customProperties": to_metadata(metadata) if metadata else None}))
        self._call("POST", f"/model_versions/{mv['id']}/artifacts", json=_clean({
            "artifactType": "model-artifact", "name": name, "uri": uri,
            "modelFormatName": model_format_name,
            "modelFormatVersion": model_format_version or None, "storageKey": storage_key,
            "storagePath": storage_path, "serviceAccountName": service_account_name,
            "modelSourceKind": model_source_kind, "modelSourceClass": model_source_class,
            "modelSourceGroup": model_source_group, "modelSourceId": model_source_id,
            "modelSourceName": model_source_name}))
        return dict(mv)

    def update_version(self, name: str, version: str, **fields: Any) -> dict[str, Any]:
        mv = self._need_version(name, version)
        return dict(self._call("PATCH", f"/model_versions/{mv['id']}", json=fields))

    def archive(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Set a model (or one version) to ARCHIVED."""
        if version is None:
            model = self._need_model(name)
            return dict(self._call("PATCH", f"/registered_models/{model['id']}",
                                   json={"state": "ARCHIVED"}))
        return self.update_version(name, version, state="ARCHIVED")

    def delete(self, name: str, version: str | None = None) -> None:
        """Delete a model with all its versions, or one version (goes beyond upstream,
        which has no delete). Refused while a deployed InferenceService serves it."""
        if version is None:
            self._call("DELETE", f"/registered_models/{self._need_model(name)['id']}")
        else:
            self._call("DELETE", f"/model_versions/{self._need_version(name, version)['id']}")

    def _need_model(self, name: str) -> dict[str, Any]:
        model = self.get_registered_model(name)
        if model is None:
            raise NotFoundError(f"model {name!r} does not exist")
        return model

    def _need_version(self, name: str, version: str) -> dict[str, Any]:
        mv = self.get_model_version(name, version)
        if mv is None:
            raise NotFoundError(f"version {version!r} of model {name!r} does not exist")
        return mv


def resolve_model_uri(uri: str, registry: ModelRegistry) -> str:
    """``model-registry://NAME/VERSION`` -> the model artifact's storage URI.

    Other components (serving) call this to load what the registry points at.
    """
    if not uri.startswith(SCHEME):
        return uri
    name, version = parse_model_uri(uri)
    artifact = registry.get_model_artifact(name, version)
    if artifact is None or not artifact.get("uri"):
        raise NotFoundError(f"{uri}: the version has no model artifact with a uri")
    return str(artifact["uri"])


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}
