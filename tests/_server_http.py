"""Fixtures of the server tests (a plugin of the root conftest, as ``_kfp`` is): an HTTP
client on the requesting module's ``server`` fixture, and a namespace of each test's own."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from conftest import ServerProcess


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client on the ``server`` fixture of the requesting module."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A namespace of this test's own (a valid DNS label)."""
    name = re.sub(r"[^a-z0-9-]", "-", request.node.originalname.removeprefix("test_"))
    return name[:60].strip("-")
