"""``client.serving``: InferenceServices through a ``ketch.Client`` (declared by the
serving component), shaped after ``KServeClient``'s create/get/wait/delete.

A thin facade over the client's resource calls; nothing heavy is imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ketch.client import Client, ResourceList
    from ketch.core.resources import Resource

__all__ = ["ServingClient"]

KIND = "inferenceservice"


class ServingClient:
    """Create, find, wait for and delete ``InferenceService`` resources."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, name: str, storage_uri: str, model_format: str, *,
               namespace: str | None = None) -> Resource:
        """Create or update (apply) the service ``name`` serving ``storage_uri``."""
        doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
               "metadata": {"name": name},
               "spec": {"predictor": {"model": {"modelFormat": {"name": model_format},
                                                "storageUri": storage_uri}}}}
        return self._client.apply(doc, namespace=namespace)[0][0]

    def get(self, name: str, *, namespace: str | None = None) -> Resource:
        return self._client.get(KIND, name, namespace=namespace)

    def list(self, *, namespace: str | None = None,
             label_selector: str | None = None) -> ResourceList:
        return self._client.list(KIND, namespace=namespace, label_selector=label_selector)

    def wait_ready(self, name: str, *, namespace: str | None = None,
                   timeout: float = 120.0) -> Resource:
        """The service once Ready; ``KetchError`` at once if it is stalled (a model
        that cannot load), ``TimeoutError`` after ``timeout`` seconds."""
        return self._client.wait(KIND, name, condition="Ready", namespace=namespace,
                                 timeout=timeout)

    def url(self, name: str, *, namespace: str | None = None) -> str | None:
        """The service's URL (``status.url``), None until it has one."""
        url = self.get(name, namespace=namespace).status.get("url")
        return str(url) if url else None

    def delete(self, name: str, *, namespace: str | None = None) -> Resource:
        return self._client.delete(KIND, name, namespace=namespace)
