"""The unprivileged OS user the local executor runs units as (``KETCH_RUN_AS_USER``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ketch.core.errors import ExecutorError

__all__ = ["RunAs"]


@dataclass(frozen=True)
class RunAs:
    """The unprivileged OS user units run as (``KETCH_RUN_AS_USER``)."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def resolve(cls, user: str) -> RunAs:
        import pwd

        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except (KeyError, ValueError):
            raise ExecutorError(f"KETCH_RUN_AS_USER={user!r}: no such user") from None
        if entry.pw_uid != os.geteuid() and os.geteuid() != 0:
            raise ExecutorError(f"KETCH_RUN_AS_USER={user!r} needs the ketch server to run "
                                f"as root (it runs as uid {os.geteuid()})")
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def check_reaches(self, directory: Path) -> None:
        """Raise unless this user can traverse every directory down to ``directory``
        (its wrapper writes the exit file there; ``~/.ketch`` under a 0700 ``/root``
        is the usual miss)."""
        for path in [directory, *directory.parents]:
            st = path.stat()
            bit = (0o100 if st.st_uid == self.uid else
                   0o010 if st.st_gid == self.gid else 0o001)
            if not st.st_mode & bit:
                raise ExecutorError(
                    f"KETCH_RUN_AS_USER={self.name!r}: that user cannot enter {path} "
                    f"(mode {st.st_mode & 0o777:o}), so its units could not record how "
                    f"they ended; make it traversable (chmod o+x {path}) or choose a "
                    f"KETCH_HOME it can reach")
