"""ketch: the Kubeflow ML platform as one Python package.

``import ketch`` stays cheap: the client and heavier modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from ketch.client import Client


def __getattr__(name: str) -> Any:
    if name == "Client":
        from ketch.client import Client

        return Client
    raise AttributeError(f"module 'ketch' has no attribute {name!r}")
