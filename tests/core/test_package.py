"""Package-level promises: a light `import ketch`, one-way imports, exports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ketch"
COMPONENTS = {"jobs", "pipelines", "tuning", "training", "registry", "serving", "notebooks",
              "features"}


def test_import_ketch_loads_no_heavy_library() -> None:
    code = ("import sys, ketch; heavy = [m for m in ('fastapi', 'sqlalchemy', 'httpx', "
            "'uvicorn', 'pydantic', 'fsspec') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_cli_help_loads_no_server_or_database_library() -> None:
    code = ("import sys\nfrom ketch.cli._app import app\n"
            "heavy = [m for m in ('fastapi', 'sqlalchemy', 'uvicorn', 'alembic', 'fsspec') "
            "if m in sys.modules]\nprint(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((SRC / "core").rglob("*.py")), ids=str)
def test_core_imports_no_component_and_no_face(path: Path) -> None:
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "ketch" and len(parts) > 1:
            assert parts[1] not in COMPONENTS | {"server", "cli", "client"}, (
                f"{path.relative_to(SRC)} imports {name}: core must not depend on it")


def test_components_import_no_other_component_internals() -> None:
    for comp in COMPONENTS:
        root = SRC / comp
        if not root.exists():
            continue
        for path in root.rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "ketch" and len(parts) > 1 and parts[1] in COMPONENTS - {comp}:
                    assert len(parts) == 2 or not parts[2].startswith("_"), (
                        f"{path} reaches into {name}")
                    assert parts[1] not in ("server", "cli")


def test_public_exports_are_what_we_mean() -> None:
    import ketch
    import ketch.client
    import ketch.core.executors
    import ketch.jobs

    assert ketch.__all__ == ["Client", "__version__"]
    assert ketch.Client is ketch.client.Client
    for module in (ketch.client, ketch.core.executors, ketch.jobs):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_server_socket_is_tcp_so_replies_are_not_delayed() -> None:
    """asyncio turns on TCP_NODELAY for accepted connections only when the
    listening socket says IPPROTO_TCP; without it every reply on a kept-alive
    connection waited ~40 ms for a delayed ACK."""
    import socket

    from ketch.server.run import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
