"""Launching Debian's chromium through Playwright for the browser tests.

Playwright's own browser downloads are never used: the tests drive the
system chromium (``apt-get install chromium``, which ``make test`` installs).
A missing browser fails the test rather than skipping it: a skipped browser
test would let the dashboard break unnoticed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """Path of the system chromium, or None (override with KETCH_CHROMIUM)."""
    override = os.environ.get("KETCH_CHROMIUM")
    if override:
        return override if os.path.exists(override) else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.path.exists(candidate):
            return candidate
    return shutil.which("chromium")


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Start headless system chromium; fail the test when it is unavailable."""
    from playwright import sync_api

    path = chromium_path()
    if path is None:
        pytest.fail("system chromium not installed: run `make test-deps` "
                    "(apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


REPO = Path(__file__).resolve().parents[2]
STATIC_INDEX = REPO / "src" / "ketch" / "server" / "static" / "index.html"
UI_TIMEOUT_MS = 15_000


@pytest.fixture
def page(server_url: str) -> Iterator[Page]:
    """A page in headless chromium; fails the test on any uncaught page error."""
    if not STATIC_INDEX.exists():
        pytest.fail("dashboard not built: run `make install` (cd ui && npm ci && npm run build)")
    with launch_chromium() as browser:
        from playwright.sync_api import expect

        expect.set_options(timeout=UI_TIMEOUT_MS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(UI_TIMEOUT_MS)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        context.close()
        assert not errors, f"uncaught errors in the page: {errors}"
