"""Package-level promises: a light `import ketch`, the layering contracts, exports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "ketch"


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


def test_layering_contracts_hold() -> None:
    """The import rules (core imports no component or face; the client nothing of the
    server; no private module imported from outside its package; no cycle between
    packages) are import-linter contracts in pyproject.toml, run by ``make lint``; here
    too, so a test run catches a break. A deliberate violation fails it (the report of
    issue 11 shows one)."""
    out = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))],
                         check=False, capture_output=True, text=True, cwd=SRC.parents[1])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


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
