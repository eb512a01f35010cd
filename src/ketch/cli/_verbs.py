"""The components' verbs in ``ketch``, collected from their declarations, lazily.

Each component lists its verbs in its ``Component`` (``cli=``). The root group asks
for them only when it needs a name it does not hold itself (a component verb, or
``ketch --help``); listing them costs the entry-point scan and the components'
declarations, not their code: ``--help`` shows the declared help, and a verb's module
is imported only when that verb runs (or its own ``--help`` is asked for).
"""

from __future__ import annotations

from typing import Any

import typer

# typer vendors click; its classes are importable only from there (as ketch.cli._errors
# does). The standalone ``click`` package is never imported: it would double the cost.
from typer._click.core import Command, Context
from typer.core import TyperCommand, TyperGroup

from ketch.core.component import CliVerb, cli_verbs, load_components, resolve

__all__ = ["ComponentVerbsGroup"]


class _Declared(TyperCommand):
    """A component verb not loaded yet: its name and declared help, for listings and
    for "did you mean" (which reads the group's ``commands``)."""

    def __init__(self, verb: CliVerb) -> None:
        super().__init__(verb.name, help=verb.help)
        self.verb = verb


class ComponentVerbsGroup(TyperGroup):
    """``ketch``'s root group: its own commands plus every component's declared verbs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._collected = False

    def _collect(self) -> None:
        """Add each component's verbs as ``_Declared`` entries, after ketch's own."""
        if self._collected:
            return
        self._collected = True
        for name, verb in cli_verbs(load_components()).items():
            if name in self.commands:
                raise ValueError(f"a component declares the CLI verb {name!r}, which ketch "
                                 "itself has")
            self.commands[name] = _Declared(verb)

    def _load(self, verb: CliVerb) -> Command:
        target = resolve(verb.target, f"CLI verb {verb.name!r}")
        if verb.group:
            if not isinstance(target, typer.Typer):
                raise TypeError(f"CLI verb {verb.name!r}: {verb.target} is not a typer.Typer")
            # Plain help, as the root's (rich's boxes are not ketch's layout).
            target.rich_markup_mode = None
            command: Command = typer.main.get_group(target)
            command.name = verb.name
            return command
        holder = typer.Typer(rich_markup_mode=None, add_completion=False)
        holder.command(name=verb.name)(target)
        return typer.main.get_command(holder)

    def list_commands(self, ctx: Context) -> list[str]:
        self._collect()
        return super().list_commands(ctx)

    def resolve_command(self, ctx: Context,
                        args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        # The one place a verb is about to run: swap in the real command now. ketch's
        # own verbs need no component declarations at all.
        if args and args[0] not in self.commands:
            self._collect()
        declared = self.commands.get(args[0]) if args else None
        if isinstance(declared, _Declared):
            self.commands[args[0]] = self._load(declared.verb)
        return super().resolve_command(ctx, args)
