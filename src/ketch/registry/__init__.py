"""Model registry: the Kubeflow Model Registry API on ketch's own store.

The official ``model-registry`` Python client works against it unchanged
(``ModelRegistry("http://127.0.0.1", 8080, author=..., is_secure=False)``).
ketch's own SDK is ``ketch.registry.client.ModelRegistry``; the CLI is
``ketch models``. This package imports nothing heavy itself, so the CLI can
load ``ketch.registry.cli`` cheaply.
"""
