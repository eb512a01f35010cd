"""The ``ketch`` command line."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    from ketch.cli._errors import main as run

    run()
