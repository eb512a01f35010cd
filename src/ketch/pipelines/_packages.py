"""``packages_to_install``: the requirements a step declares, and the hint when a run
did not install them.

A KFP lightweight component's command installs its packages with pip before it runs
(``pip install ... 'pyyaml>=6' && "$0" "$@"``). By default ketch runs steps in its own
environment, as ``kfp.local``'s ``use_venv=False`` does, and ignores that line. A run
with ``installPackages: true`` (``ketch run --install-packages``) gives the step's unit
a ``RuntimeEnv`` with those packages: the executor builds one cached virtualenv per
requirement set where the unit runs (``core/executors/_venvs``), with ketch's own
environment visible behind the venv's packages.
"""

from __future__ import annotations

import hashlib
import shlex
import sys
from dataclasses import dataclass

__all__ = ["NOT_INSTALLED_ENV", "Requirements", "is_not_installed_hint",
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
