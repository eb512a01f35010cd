"""Where a unit's directory is, for every local executor whose control planes share
one database on this host.

Each control plane's local executor keeps its units under its own ``KETCH_HOME``.
Two control planes on one database with different homes adopt each other's work by
the handle in the object's status, but a control plane that died after starting a unit
and before writing its handle leaves only the unit id behind: ``lookup(unit_id)`` must
find that unit wherever it was started, or the adopter starts the same attempt twice.
So every submit first records ``unit id -> unit directory`` here, a symlink in a
directory of the user's own (mode 0700), named after the database; ``lookup`` reads it
when the unit is not in its own home.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["UnitIndex"]


class UnitIndex:
    """``unit id -> directory`` symlinks under ``root`` (created 0700, must be ours)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = root.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or \
                info.st_mode & 0o077:
            # Another user's (or a shared) directory could point our lookups at their
            # files: refuse it rather than trust it.
            raise PermissionError(f"unit index {root} must be a directory of this user's "
                                  "with mode 0700")
        self.root = root

    def record(self, unit_id: str, directory: Path) -> None:
        """Point ``unit_id`` at ``directory`` (atomically: a reader sees the old or the
        new target, never none)."""
        link = self.root / unit_id
        temporary = self.root / f".{unit_id}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(directory, temporary)
        os.replace(temporary, link)

    def find(self, unit_id: str) -> Path | None:
        """The directory ``unit_id`` was last started in, if it still exists."""
        try:
            target = Path(os.readlink(self.root / unit_id))
        except OSError:
            return None
        # Only a unit directory of that id: the name is the one check a planted link
        # of our own user cannot pass by accident.
        return target if target.name == unit_id and target.is_dir() else None

    def drop(self, unit_id: str, directory: Path) -> None:
        """Forget ``unit_id`` if it still points at ``directory`` (a newer start of the
        same id by another control plane keeps its entry)."""
        link = self.root / unit_id
        with contextlib.suppress(OSError):
            if Path(os.readlink(link)) == directory:
                link.unlink()
