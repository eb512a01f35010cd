"""A ``KETCH_HOME``'s control plane: its lock and its ``server.json``.

The server writes both; the client and the CLI read them to find (or start) the server
of a home. They live in core so neither face imports the server to do so.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from ketch.core.errors import ConflictError

__all__ = ["HomeLock", "ServerInfo"]


class ServerInfo:
    """Reading and writing ``KETCH_HOME/server.json``."""

    def __init__(self, home: Path) -> None:
        self.path = home / "server.json"

    def read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)

    def remove_if_mine(self) -> None:
        data = self.read()
        if data is not None and data.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)


class HomeLock:
    """The one-control-plane-per-home lock: ``flock`` on ``KETCH_HOME/control-plane.pid``.

    The file holds the holder's pid and mode (JSON), for messages only: the lock
    itself, not the file's presence, says whether a control plane runs.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "control-plane.pid"
        self._fd: int | None = None

    def acquire(self, mode: str) -> None:
        """Take the lock for this process or raise ``ConflictError`` naming the holder."""
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by units
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConflictError(self.busy_message()) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "mode": mode}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def holder(self) -> dict[str, Any] | None:
        """``{"pid", "mode"}`` of the process holding the lock, or None when free."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    data = json.loads(os.pread(fd, 4096, 0) or b"{}")
                except ValueError:
                    data = {}  # the holder is between truncate and write
                return data if isinstance(data, dict) else {}
            return None
        finally:
            os.close(fd)

    def busy_message(self) -> str:
        holder = self.holder() or {}
        info = ServerInfo(self.home).read() or {}
        pid = holder.get("pid") or info.get("pid") or "?"
        where = (f" at {info['url']}" if info.get("url") and info.get("pid") == pid
                 else " (still starting)")
        mode = holder.get("mode")
        return (f"a ketch control plane already runs for KETCH_HOME={self.home}: pid {pid}"
                f"{f' (ketch {mode})' if mode else ''}{where}; one control plane per home: "
                f"use that one, or stop it first with `ketch stop`")
