"""One cached virtualenv per set of requirements, built where the unit runs.

A unit whose ``runtime_env`` has ``packages`` gets, per distinct set of requirements
and index URLs (and this interpreter's version), a virtualenv under the executor's
``venvs`` directory, built once and reused by every later unit. The unit's own
process builds it (``_entry``), so ``submit`` never waits for pip; units that need
the same venv at once wait on a file lock for the one that builds it, and pip's
output lands in the builder's log.

ketch's own environment stays visible inside the venv (a ``.pth`` file), behind the
venv's packages, so the unit's entry point and the libraries it pinned both import;
that is also where the venv's pip comes from when the parent has one (no
``ensurepip`` copy per venv, which costs seconds).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Requirements", "VenvCache", "VenvError"]

_READY = "ready"


class VenvError(Exception):
    """Building the venv failed; the message says what and where pip's output is."""


@dataclass(frozen=True)
class Requirements:
    """pip requirements and the index URLs pip looks in (the first replaces PyPI)."""

    packages: tuple[str, ...]
    index_urls: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        text = "\n".join([sys.version, *self.index_urls, "--", *sorted(self.packages)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class VenvCache:
    """Venvs under ``root``, one per requirement key. Safe across processes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, reqs: Requirements) -> Path:
        return self.root / reqs.key

    def ready(self, reqs: Requirements) -> Path | None:
        """The venv if it is built, else None (never builds)."""
        venv = self.path(reqs)
        return venv if (venv / _READY).exists() else None

    def ensure(self, reqs: Requirements, *, log: IO[str] | None = None) -> Path:
        """The venv for ``reqs``, built now unless it exists; another process
        building the same one is waited for. Raises ``VenvError``."""
        venv = self.ready(reqs)
        if venv is not None:
            return venv
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked(reqs, log):
            venv = self.ready(reqs)
            if venv is not None:
                return venv  # built by the process we waited for
            return self._build(reqs, self.path(reqs), log)

    @contextlib.contextmanager
    def _locked(self, reqs: Requirements, log: IO[str] | None) -> Iterator[None]:
        with open(self.root / f"{reqs.key}.lock", "w", encoding="utf-8") as lockf:
            try:
                fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _say(log, f"ketch: waiting for another unit to build the venv for "
                          f"{' '.join(reqs.packages)}")
                fcntl.flock(lockf, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lockf, fcntl.LOCK_UN)

    def _build(self, reqs: Requirements, venv: Path, log: IO[str] | None) -> Path:
        _say(log, f"ketch: building a venv for {' '.join(reqs.packages)} in {venv}")
        shutil.rmtree(venv, ignore_errors=True)  # a build that died half-way
        parent_pip = importlib.util.find_spec("pip") is not None
        args = [sys.executable, "-m", "venv", str(venv)]
        if parent_pip:
            args.insert(3, "--without-pip")
        _run(args, "creating the venv", log)
        python = venv / "bin" / "python"
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip()
        # ketch and its dependencies, behind whatever the unit pins. addsitedir (not a
        # bare path) so the parent's own .pth files (an editable install's import
        # hook) are processed too.
        parent = sysconfig.get_paths()["purelib"]
        Path(site, "_ketch_parent.pth").write_text(
            f"import site; site.addsitedir({parent!r})\n", encoding="utf-8")
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off"]
        for i, url in enumerate(reqs.index_urls):
            pip += ["--index-url" if i == 0 else "--extra-index-url", url]
        _run([*pip, "--", *reqs.packages],
             f"installing {' '.join(reqs.packages)}", log)
        (venv / _READY).write_text("\n".join(reqs.packages), encoding="utf-8")
        return venv


def _say(log: IO[str] | None, line: str) -> None:
    if log is not None:
        print(line, file=log, flush=True)


def _run(args: list[str], what: str, log: IO[str] | None) -> None:
    if log is not None:
        log.flush()
    # pip writes straight to the unit's log (inherited stdout/stderr) when there is one.
    out = None if log is not None else subprocess.DEVNULL
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              env={**os.environ, "PIP_NO_INPUT": "1"}, check=False)
    except OSError as err:
        raise VenvError(f"{what} failed: {err}") from None
    if done.returncode != 0:
        raise VenvError(f"{what} failed (exit code {done.returncode}; pip's output is "
                        f"in the unit's log)")
