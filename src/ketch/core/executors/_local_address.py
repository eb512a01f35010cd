"""Where the local executor's server units listen: a free loopback port (the endpoint,
``host:port``) and, as this backend's own shortcut on one host, a unix socket beside it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["UNIT_HOST", "free_port", "unit_socket"]

UNIT_HOST = "127.0.0.1"


def free_port(host: str = UNIT_HOST) -> int:
    """A TCP port free on ``host`` (loopback by default) now; the unit binds it a
    moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def unit_socket(runs_dir: Path, port: int) -> str | None:
    """This backend's shortcut to a server unit on this host: a unix socket it may
    listen on besides its port (``KETCH_UNIT_UDS``), named by that port, so a peer given
    the endpoint ``127.0.0.1:PORT`` finds ``<dir>/PORT.sock`` beside its own (loopback
    TCP costs a serving front about a tenth of its requests/s). The endpoint stays
    ``host:port``: callers never see it. None when the path is too long for AF_UNIX."""
    path = runs_dir / ".sockets" / f"{port}.sock"
    if len(os.fsencode(path)) > 107:
        return None
    path.parent.mkdir(mode=0o700, exist_ok=True)
    # The port was free a moment ago, so a socket by its name is a killed unit's.
    path.unlink(missing_ok=True)
    return str(path)
