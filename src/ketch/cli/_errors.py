"""Running the ``ketch`` app so that every failure is one line, ``error: ...``.

typer shows usage errors as multi-line rich boxes (exit 2) and lets any exception it
does not know print a traceback. Here the app runs in click's non-standalone mode and
this module turns what comes back into kubectl's form: one ``error:`` line on stderr,
exit status 1, with a "did you mean" where the user mistyped a verb or an option.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import typer

# typer vendors click; its exception classes are importable only from there.
from typer._click import exceptions as click_errors

if TYPE_CHECKING:
    from typer.core import TyperGroup

__all__ = ["did_you_mean", "one_line", "run_app"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'apply'?`` for the closest choices, or "" when none is close."""
    matches = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(repr(m) for m in matches) + "?"


def _sentence(text: str) -> str:
    """One line, no trailing period, lower-case first word (``Missing argument`` ->
    ``missing argument``) unless it is a name such as ``KIND``."""
    line = " ".join(text.split()).rstrip(".")
    if len(line) > 1 and line[0].isupper() and line[1].islower():
        line = line[0].lower() + line[1:]
    return line


def _unknown_command(err: click_errors.UsageError) -> str | None:
    ctx = err.ctx
    group: TyperGroup | Any = ctx.command if ctx is not None else None
    commands = getattr(group, "commands", None)
    if ctx is None or not commands or not err.message.startswith("No such command"):
        return None
    match = re.match(r"No such command (['\"])(.*?)\1", err.message)
    typed = match.group(2) if match else ""
    visible = [name for name, cmd in commands.items() if not cmd.hidden]
    return (f"unknown command {typed!r} for {ctx.command_path!r}"
            f"{did_you_mean(typed, visible)}")


def one_line(err: typer.TyperException) -> str:
    """The message of a usage or click error as one line naming the command."""
    if isinstance(err, click_errors.UsageError):
        ctx = err.ctx
        unknown = _unknown_command(err)
        if unknown is not None:
            return f"{unknown} (see '{ctx.command_path if ctx else 'ketch'} --help')"
        if isinstance(err, click_errors.NoSuchOption):
            message = f"unknown option {err.option_name}"
            message += did_you_mean(err.option_name, err.possibilities or ())
        else:
            message = _sentence(err.format_message())
        if ctx is not None:
            return f"{ctx.command_path}: {message} (see '{ctx.command_path} --help')"
        return message
    return _sentence(err.format_message())


def run_app(app: typer.Typer, argv: Sequence[str]) -> int:
    """Run ``app`` on ``argv``; return the exit status, having printed any error."""
    from ketch.core.errors import KetchError

    try:
        result = app(args=list(argv), prog_name="ketch", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as err:
        # ``ketch`` or ``ketch models`` alone: the help, as kubectl prints it.
        typer.echo(err.format_message())
        return 0
    except typer.TyperException as err:
        typer.echo(f"error: {one_line(err)}", err=True)
        return 1
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except KetchError as err:
        typer.echo(f"error: {err.message}", err=True)
        return 1
    except Exception as err:
        # A bug, not a user error; the traceback is for whoever reports it.
        if os.environ.get("KETCH_DEBUG"):
            raise
        typer.echo(f"error: unexpected {type(err).__name__}: {_sentence(str(err))} "
                   "(set KETCH_DEBUG=1 to see the traceback)", err=True)
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    from ketch.cli._app import app

    sys.exit(run_app(app, sys.argv[1:]))
