"""``packages_to_install``: one cached virtualenv per set of requirements, when asked.

A KFP lightweight component's command installs its packages with pip before it runs
(``pip install ... 'pyyaml>=6' && "$0" "$@"``). By default ketch runs steps in its own
environment, as ``kfp.local``'s ``use_venv=False`` does, and ignores that line. A run
with ``installPackages: true`` (``ketch run --install-packages``) gets, per distinct set
of requirements and index URLs, a virtualenv under ``KETCH_HOME/pipelines/venvs/``,
built once in the background and reused by every later step and run. ketch's own
environment stays visible inside it (a ``.pth`` file), behind the venv's packages, so
the step's executor and the libraries the user pinned both import.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NOT_INSTALLED_ENV", "Requirements", "VenvCache", "is_not_installed_hint",
           "not_installed_hint", "requirements_of"]

# Set on a step whose component declares packages_to_install that this run did not
# install: a step failing with ImportError then says why (see not_installed_hint).
NOT_INSTALLED_ENV = "KETCH_PACKAGES_NOT_INSTALLED"
_HINT_PREFIX = "ketch: this step's packages_to_install"


def not_installed_hint(error: BaseException | str, packages: str) -> str:
    """One line for a step that failed to import while its declared packages were not
    installed: what failed, what was declared, and the switch that installs them."""
    what = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return (f"{_HINT_PREFIX} ({packages}) were not installed, and the step failed with "
            f"{what}; run with --install-packages (ketch run --install-packages, "
            f"spec.installPackages: true) to install them in a cached virtualenv")


def is_not_installed_hint(line: str) -> bool:
    return line.startswith(_HINT_PREFIX)

_KFP_RUNTIME = ("kfp==", "kfp>=", "kfp ", "'kfp")


@dataclass(frozen=True)
class Requirements:
    packages: tuple[str, ...]
    index_urls: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        text = "\n".join([sys.version, *self.index_urls, "--", *sorted(self.packages)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def requirements_of(command: list[str]) -> Requirements | None:
    """The user's packages from a lightweight component's pip line (not kfp itself)."""
    script = next((part for part in command if "pip install" in part), None)
    if script is None:
        return None
    packages: list[str] = []
    index_urls: list[str] = []
    for segment in script.split("&&"):
        if "pip install" not in segment:
            continue
        words = shlex.split(segment.split("pip install", 1)[1])
        names = [w for w in words if not w.startswith("-")]
        if any(n.startswith("kfp") and not n.startswith("kfp-") for n in names):
            continue  # the KFP runtime line: ketch provides the executor itself
        for i, word in enumerate(words):
            if word in ("--index-url", "--extra-index-url") and i + 1 < len(words):
                index_urls.append(words[i + 1])
        skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
            elif word in ("--index-url", "--extra-index-url", "--trusted-host"):
                skip_next = True
            elif not word.startswith("-"):
                packages.append(word)
    if not packages:
        return None
    return Requirements(tuple(packages), tuple(dict.fromkeys(index_urls)))


class VenvCache:
    """Builds venvs in background threads; ``python_for`` answers at once. Thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._building: dict[str, threading.Thread] = {}
        self._errors: dict[str, str] = {}

    def python_for(self, reqs: Requirements) -> tuple[str | None, str | None]:
        """``(python, None)`` when ready, ``(None, None)`` while building (started now if
        needed), ``(None, error)`` when pip failed (the error is pip's output)."""
        venv = self.root / reqs.key
        python = venv / "bin" / "python"
        if (venv / "ready").exists():
            return str(python), None
        with self._lock:
            if reqs.key in self._errors:
                return None, self._errors.pop(reqs.key)
            if reqs.key not in self._building:
                thread = threading.Thread(target=self._build, args=(reqs, venv),
                                          name=f"venv-{reqs.key}", daemon=True)
                self._building[reqs.key] = thread
                thread.start()
        return None, None

    def _build(self, reqs: Requirements, venv: Path) -> None:
        try:
            venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                           capture_output=True, text=True)
            site = subprocess.run(
                [str(venv / "bin" / "python"), "-c",
                 "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True, capture_output=True, text=True).stdout.strip()
            # ketch and its dependencies, behind whatever the step pins. addsitedir (not
            # a bare path) so that the parent's own .pth files, such as an editable
            # install's import hook, are processed too.
            parent = sysconfig.get_paths()["purelib"]
            Path(site, "_ketch_parent.pth").write_text(
                f"import site; site.addsitedir({parent!r})\n", encoding="utf-8")
            args = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check"]
            for i, url in enumerate(reqs.index_urls):
                args += ["--index-url" if i == 0 else "--extra-index-url", url]
            subprocess.run([*args, *reqs.packages], check=True, capture_output=True,
                           text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
            (venv / "ready").write_text("\n".join(reqs.packages), encoding="utf-8")
        except subprocess.CalledProcessError as err:
            with self._lock:
                self._errors[reqs.key] = (f"installing {' '.join(reqs.packages)} failed:\n"
                                          f"{(err.stderr or err.stdout or '')[-3000:]}")
        finally:
            with self._lock:
                self._building.pop(reqs.key, None)
