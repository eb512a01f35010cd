"""The ketch client: one REST client for the CLI, the SDK and the dashboard's peers."""

from __future__ import annotations

from ketch.client._client import Client, KindRef, ResourceList, WatchEvent

__all__ = ["Client", "KindRef", "ResourceList", "WatchEvent"]
