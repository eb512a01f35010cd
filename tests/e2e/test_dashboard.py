"""End-to-end tests of the web dashboard, driven through system chromium.

They use two fixtures from ``tests/conftest.py``: ``server_url`` (a real
ketch server on a free port with a fresh KETCH_HOME, serving the built UI
from ``src/ketch/server/static``) and ``client`` (a ``ketch.Client`` bound
to it). Build the UI first with ``cd ui && npm ci && npm run build``.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _browser import page  # noqa: F401  (the fixture; tests/e2e is on sys.path)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]

# A job's lifetime here is process start-up plus one print; generous for CI.
JOB_TIMEOUT_MS = 90_000
NOT_INSTALLED = "not installed in this ketch yet"


def _job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ketch.dev/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"command": ["python", "-c", "print('hello from ketch')"]},
    }


def _namespace_of(applied: Any) -> str:
    """Namespace the server put an applied object in ('default' if unknown)."""
    obj = applied[0] if isinstance(applied, list) and applied else applied
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(by_alias=True)
    if isinstance(obj, dict):
        meta = obj.get("metadata") or {}
        if isinstance(meta, dict) and meta.get("namespace"):
            return str(meta["namespace"])
    return "default"


def _open_home(
    page: Page, server_url: str, namespace: str = "default", *, live: bool = False
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server_url}/?namespace={namespace}")
    expect(page.get_by_role("heading", name="Recent activity")).to_be_visible()
    if live:
        # Every kind's watch stream (EventSource) is open.
        expect(page.locator(".live-pill.on")).to_be_visible()


def test_home_page_and_navigation(page: Page, server_url: str) -> None:
    from playwright.sync_api import expect

    _open_home(page, server_url)
    expect(page.locator(".brand-name")).to_have_text("ketch")

    nav = page.get_by_role("navigation", name="Components")
    labels = [
        "Home",
        "Jobs",
        "Pipelines",
        "Tuning (Katib)",
        "Training",
        "Models",
        "Serving",
        "Notebooks",
        "Features",
    ]
    expect(nav.locator(".nav-label")).to_have_text(labels)

    jobs = nav.locator('[data-nav="jobs"]')
    expect(jobs).to_have_attribute("href", re.compile(r"^/jobs"))
    expect(jobs).not_to_have_attribute("aria-disabled", "true")

    # An installed component is a link; one that is not installed yet is not.
    pipelines = nav.locator('[data-nav="pipelines"]')
    expect(pipelines).to_have_attribute("href", re.compile(r"^/pipelines"))
    # Katib's experiments are the tuning component's page, told apart from KFP's.
    expect(nav.locator('[data-nav="experiments"]')).to_have_attribute(
        "href", re.compile(r"^/experiments"))
    training = nav.locator('[data-nav="training"]')
    expect(training).to_have_attribute("aria-disabled", "true")
    expect(training).to_have_attribute("title", NOT_INSTALLED)
    expect(training).to_have_class(re.compile(r"\bdisabled\b"))
    # Not a link: clicking it goes nowhere.
    training.click(force=True)
    assert "/training" not in page.url

    # The namespace selector offers "All namespaces" and the current one.
    select = page.get_by_label("Namespace")
    expect(select).to_have_value("default")
    expect(select.locator("option", has_text="All namespaces")).to_have_count(1)

    jobs.click()
    expect(page).to_have_url(re.compile(r"/jobs\?namespace=default$"))
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()


def test_home_shows_job_and_live_status(page: Page, server_url: str, client: Any) -> None:
    from playwright.sync_api import expect

    _open_home(page, server_url, live=True)
    # Mark this document: if the page were reloaded the mark would vanish.
    page.evaluate("window.__ketchNoReload = true")

    namespace = _namespace_of(client.apply(_job("hello")))
    if namespace != "default":
        page.get_by_label("Namespace").select_option(namespace)

    row = page.locator('tr[data-kind="Job"][data-name="hello"]')
    expect(row).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(row.locator(".badge")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)
    expect(row).to_contain_text(namespace)
    expect(page.locator('[data-phase-count="Succeeded"] .card-value')).not_to_have_text("0")
    assert page.evaluate("window.__ketchNoReload === true"), "page reloaded"


def test_job_detail_shows_logs(page: Page, server_url: str, client: Any) -> None:
    from playwright.sync_api import expect

    namespace = _namespace_of(client.apply(_job("hello-logs")))
    _open_home(page, server_url, namespace)
    # a[...]: the entry is a link once the components are loaded (a disabled span before).
    page.get_by_role("navigation", name="Components").locator('a[data-nav="jobs"]').click()

    row = page.locator('[data-testid="jobs-table"] tr[data-name="hello-logs"]')
    expect(row).to_be_visible(timeout=JOB_TIMEOUT_MS)
    row.click()
    expect(page).to_have_url(re.compile(rf"/jobs/{namespace}/hello-logs"))

    detail = page.get_by_test_id("job-detail")
    expect(detail).to_be_visible()
    expect(detail.get_by_test_id("job-spec")).to_contain_text("hello from ketch")
    expect(detail.get_by_test_id("job-logs")).to_contain_text(
        "hello from ketch", timeout=JOB_TIMEOUT_MS
    )
    expect(detail.locator(".badge").first).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)


def _png_colours(data: bytes) -> int:
    """Number of distinct RGB colours in an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, "unexpected PNG format"
            channels = {2: 3, 6: 4}[colour]
        elif ctype == b"IDAT":
            idat += body
        elif ctype == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        if y % 4 == 0:  # sampling every 4th row is plenty
            for x in range(0, stride, channels):
                colours.add(bytes(line[x : x + 3]))
        prev = line
    return len(colours)


def test_screenshot_renders_data(page: Page, server_url: str, client: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    namespace = _namespace_of(client.apply(_job("hello-shot")))
    _open_home(page, server_url, namespace)
    row = page.locator('tr[data-kind="Job"][data-name="hello-shot"]')
    expect(row.locator(".badge")).to_have_text("Succeeded", timeout=JOB_TIMEOUT_MS)

    shot = tmp_path / "home.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000, f"screenshot suspiciously small ({len(data)} bytes)"
    assert _png_colours(data) > 64, "screenshot looks like a blank shell"

    body = page.inner_text("body")
    assert "hello-shot" in body
    assert "Recent activity" in body
    assert "Succeeded" in body
