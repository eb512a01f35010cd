"""Startup reachability of the local executor's server units (``startup_timeout_seconds``).

A ``serves`` unit with a startup limit must accept a TCP connection at its
endpoint within that limit, or it is stopped as ``EndpointUnreachable`` (what a
Kubernetes ``startupProbe`` with a ``tcpSocket`` check does). The state lives in
the unit's scratch directory, like the rest of the local executor's, so a
control plane that adopts the unit after a restart goes on checking (or knows it
already answered) without probing from scratch:

* ``startup``: ``{"endpoint", "deadline", "timeoutSeconds"}``, written at submit;
* ``ready``: a marker, written once a connection was accepted.

The existing monitor thread calls ``check`` on each tick for units that have not
answered yet: one non-blocking loopback connect each, no thread per unit.
"""

from __future__ import annotations

import json
import socket
import time
from enum import Enum
from pathlib import Path

from ketch.core.executors import _local_proc as proc

__all__ = ["READY_FILE", "STARTUP_FILE", "Startup", "check", "expect", "unreachable_message"]

STARTUP_FILE = "startup"
READY_FILE = "ready"
# A loopback connect is answered (accepted or refused) in microseconds; the bound only
# matters for a listener whose backlog is full, which drops the SYN silently.
_CONNECT_TIMEOUT = 0.2


class Startup(Enum):
    """Where a server unit stands: no limit to check, answered, still within its
    limit, or past it without ever answering."""

    UNCHECKED = "unchecked"
    READY = "ready"
    WAITING = "waiting"
    OVERDUE = "overdue"


def expect(directory: Path, endpoint: str, started: float, timeout_seconds: float) -> None:
    """Record that ``endpoint`` must answer within ``timeout_seconds`` of ``started``."""
    proc.atomic_write(directory / STARTUP_FILE, json.dumps({
        "endpoint": endpoint, "deadline": started + timeout_seconds,
        "timeoutSeconds": timeout_seconds}))


def _accepts(endpoint: str) -> bool:
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT):
            return True
    except (OSError, ValueError):
        return False


def check(directory: Path) -> Startup:
    """Probe the unit's endpoint once (unless it already answered) and say where it stands."""
    if (directory / READY_FILE).exists():
        return Startup.READY
    startup = proc.load_json(directory / STARTUP_FILE)
    if startup is None:
        return Startup.UNCHECKED
    if _accepts(str(startup["endpoint"])):
        (directory / READY_FILE).touch()
        return Startup.READY
    return Startup.OVERDUE if time.time() > float(startup["deadline"]) else Startup.WAITING


def unreachable_message(directory: Path) -> str:
    """The condition message of a unit stopped for never answering."""
    startup = proc.load_json(directory / STARTUP_FILE) or {}
    seconds = startup.get("timeoutSeconds")
    return (f"nothing accepted a TCP connection at {startup.get('endpoint')} within "
            f"{seconds:g} s of the start (startup_timeout_seconds)"
            if isinstance(seconds, int | float) else
            f"nothing accepted a TCP connection at {startup.get('endpoint')}")
