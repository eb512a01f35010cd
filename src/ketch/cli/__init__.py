"""The ``ketch`` command line."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from ketch.cli._app import app

    app()
