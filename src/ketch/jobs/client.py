"""``client.jobs``: Jobs through a ``ketch.Client`` (the component declares it).

A thin facade over the client's resource calls: ``submit`` writes a ``Job``
(``ketch.dev/v1``), the rest read, follow, cancel and wait for it by name. Nothing
heavy is imported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ketch.core.errors import FieldError, InvalidError

if TYPE_CHECKING:
    from ketch.client import Client, ResourceList
    from ketch.core.resources import Resource

__all__ = ["JobsClient"]

KIND = "job"


class JobsClient:
    """Run a command or a Python function to completion, as a ``Job``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def submit(self, name: str, command: Sequence[str] | None = None, *,
               python: str | None = None, args: Sequence[str] = (),
               env: Mapping[str, str] | None = None, working_dir: str | None = None,
               backoff_limit: int = 0, active_deadline_seconds: int | None = None,
               resources: Mapping[str, Any] | None = None,
               labels: Mapping[str, str] | None = None,
               namespace: str | None = None) -> Resource:
        """Create the Job ``name``: ``command`` (an argv list) or ``python``
        (``module:function``, called with ``args``); the server validates the rest."""
        if (command is None) == (python is None):
            raise InvalidError("invalid job", [FieldError(
                "spec.command", "give exactly one of command (a list) or python "
                "('module:function')")])
        spec: dict[str, Any] = {"args": list(args), "backoffLimit": backoff_limit}
        if command is not None:
            spec["command"] = list(command)
        if python is not None:
            spec["python"] = python
        if env:
            spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
        if working_dir:
            spec["workingDir"] = working_dir
        if active_deadline_seconds:
            spec["activeDeadlineSeconds"] = active_deadline_seconds
        if resources:
            spec["resources"] = dict(resources)
        return self._client.create({"apiVersion": "ketch.dev/v1", "kind": "Job",
                                    "metadata": {"name": name, "labels": dict(labels or {})},
                                    "spec": spec}, namespace=namespace)

    def get(self, name: str, *, namespace: str | None = None) -> Resource:
        return self._client.get(KIND, name, namespace=namespace)

    def list(self, *, namespace: str | None = None,
             label_selector: str | None = None) -> ResourceList:
        return self._client.list(KIND, namespace=namespace, label_selector=label_selector)

    def logs(self, name: str, *, namespace: str | None = None, follow: bool = False,
             attempt: int | None = None) -> Iterator[bytes]:
        return self._client.logs(KIND, name, namespace=namespace, follow=follow,
                                 attempt=attempt)

    def cancel(self, name: str, *, namespace: str | None = None) -> Resource:
        """Stop the Job: its running attempt is killed, phase Cancelled (kept)."""
        return self._client.patch(KIND, name, {"spec": {"cancel": True}}, namespace=namespace)

    def wait(self, name: str, *, namespace: str | None = None,
             timeout: float = 60.0) -> Resource:
        """The Job once Succeeded; ``KetchError`` at once if it fails or is cancelled."""
        return self._client.wait(KIND, name, condition="Succeeded", namespace=namespace,
                                 timeout=timeout)

    def delete(self, name: str, *, namespace: str | None = None) -> Resource:
        return self._client.delete(KIND, name, namespace=namespace)
