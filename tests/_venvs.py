"""A separate venv for a package whose pins clash with ketch's (kfp, KServe).

Built once and cached under ``~/.cache/ketch-test/<name>-<version>``
(``KETCH_TEST_CACHE`` moves it); built in a temporary folder and renamed into place,
so an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def cached_venv(name: str, version: str, probe: str, *, pins: tuple[str, ...] = ()) -> Path:
    """The python of a venv holding ``name==version``; ``probe`` (Python code) proves
    a cached one usable, else the venv is built again. ``pins`` (``"pkg==1.2"``) are
    installed with it and named in the folder, so a pinned venv is a cache of its own."""
    cache = Path(os.environ.get("KETCH_TEST_CACHE", Path.home() / ".cache" / "ketch-test"))
    venv = cache / "+".join([f"{name}-{version}", *(p.replace("==", "-") for p in pins)])
    python = venv / "bin" / "python"
    if python.exists():
        ok = subprocess.run([str(python), "-c", probe], capture_output=True, check=False)
        if ok.returncode == 0:
            return python
    cache.mkdir(parents=True, exist_ok=True)
    tmp = venv.with_name(f"{venv.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q",
                    f"{name}=={version}", *pins], check=True, timeout=900)
    shutil.rmtree(venv, ignore_errors=True)
    tmp.rename(venv)
    return python
