"""A component's whole slice, declared in one place: its ``Component``.

A component (jobs, pipelines, registry, serving, and the ones to come) lists, in its
``component.py`` (entry point group ``ketch.components``):

- server side: ``kinds``, ``controllers``, ``log_readers``, ``schema`` and API ``routers``;
- faces: ``cli`` verbs, an ``sdk`` facade (``client.<name>``), ``dashboard`` routes and
  ``describe`` views (what ``ketch describe`` shows of its kinds beyond the generic).

Every field takes the object itself or a ``"module:attribute"`` reference that is
imported on first use. References are what keep the faces fast: ``ketch --help`` and
``ketch.Client()`` read every component's declaration, and a declaration made of
references imports nothing but this module (no pydantic, no SQLAlchemy, no controller
code). The server resolves the server side when it assembles; the CLI imports a verb's
module only when that verb runs.

This module imports nothing of ketch at run time, so it is as cheap as the standard
library's ``dataclasses``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from ketch.core.controller import Controller
    from ketch.core.kinds import KindInfo, LogOptions
    from ketch.core.pods import PodUnit
    from ketch.core.resources import Resource
    from ketch.core.runtime import Runtime
    from ketch.core.store import SchemaBranch

__all__ = [
    "CliVerb", "Component", "ControllerFactory", "DashboardRoute", "DescribeTable",
    "DescribeView", "Facade", "LogReader", "PodSource", "Ref", "cli_verbs", "describe_view",
    "facades", "load_components", "resolve",
]

ControllerFactory = Callable[["Runtime"], "Controller"]
LogReader = Callable[["Runtime", "Resource", "LogOptions"], Iterator[bytes]]
# What units one object of a kind runs, for the pods view (``ketch.core.pods``).
PodSource = Callable[["Runtime", "Resource"], "Sequence[PodUnit]"]

T = TypeVar("T")
# ``"package.module:attribute"``; the attribute may be dotted (``module:Class.method``).
Ref = str

ENTRY_POINT_GROUP = "ketch.components"


def resolve(ref: Ref, what: str = "reference") -> Any:
    """The object a ``"module:attribute"`` reference names.

    A reference that does not resolve is a packaging bug of the component that
    declared it, so the error names the reference and what it was for."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{what} {ref!r}: expected 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f"{what} {ref!r}: cannot import {module_name}: {err}") from err
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{what} {ref!r}: {module_name} has no attribute "
                              f"{attr!r}") from None
    return obj


def _resolved(value: T | Ref, what: str) -> T:
    return cast("T", resolve(value, what)) if isinstance(value, str) else value


@dataclass(frozen=True)
class CliVerb:
    """A verb of ``ketch``: ``ketch <name> ...``.

    ``target`` is a typer app (a verb with sub-verbs, as ``ketch models``) or a
    function typer turns into a command. ``help`` is what ``ketch --help`` shows
    without importing ``target``; the verb's own ``--help`` comes from ``target``.
    """

    name: str
    target: Ref
    help: str
    group: bool = False  # target is a ``typer.Typer`` with sub-verbs


@dataclass(frozen=True)
class Facade:
    """The component's part of ``ketch.Client``: ``client.<name>``.

    ``target`` is a class (or function) called with the ``ketch.Client`` once, on
    first access; it builds on the client's resource calls and its ``rest`` session,
    never on a connection of its own.
    """

    name: str
    target: Ref


@dataclass(frozen=True)
class DashboardRoute:
    """A dashboard page of the component: its path under ``/`` and its nav title.

    The dashboard's route table (``ui/src/routes.ts``) holds the page code, one folder
    per component under ``ui/src``; this is what the server tells it is installed
    (``/api/ketch/components``), so a component that is not installed has no page.
    """

    path: str
    title: str
    kinds: tuple[str, ...] = ()  # the kinds (plural) whose objects this page shows


@dataclass(frozen=True)
class DescribeTable:
    """A table ``ketch describe`` prints under ``title``: the CLI lays it out and cuts
    long cells to one line; a long last cell (a message, a traceback) is printed in
    full once, at the end, under ``f"{row_heading} {row[0]}"``."""

    title: str
    columns: tuple[str, ...]
    rows: list[list[str]]
    row_heading: str = ""


@dataclass(frozen=True)
class DescribeView:
    """What ``ketch describe`` shows of a kind beyond metadata, spec, status and
    conditions: ``spec`` reshapes the spec shown (a compiled IR summarized), ``tables``
    are printed after the conditions, and ``replaces`` names the status keys the tables
    stand for (left out of the status shown). Data only: the CLI does the layout."""

    spec: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    tables: Callable[[dict[str, Any]], list[DescribeTable]] | None = None
    replaces: tuple[str, ...] = ()


class Component:
    """A vertical slice of the platform, declared in one place (see the module docstring).

    Args:
        name: the component's name (``pipelines``); also its facade's default name.
        kinds: its resource kinds, or a reference to a tuple of them.
        controllers: controller classes or factories (``runtime -> Controller``), each
            possibly a reference.
        log_readers: kind key -> function streaming one object's log (or a reference).
        pods: kind key -> function listing the executor units one object of the kind
            runs (its pods at ``/api/v1/.../pods``; see ``ketch.core.pods``).
        schema: its own tables with their migration history (or a reference).
        routers: functions ``runtime -> fastapi.APIRouter`` for paths of its own.
        cli: its ``ketch`` verbs.
        sdk: its ``client.<name>`` facade.
        dashboard: its dashboard pages.
        describe: ``"Kind.group"`` (``PipelineRun.pipelines.ketch.dev``) -> its
            ``DescribeView`` (or a reference), for ``ketch describe``.
        stop_all: what ``ketch stop --all`` also stops: a function called while the
            server still runs (to read what it knows) that returns one to call once the
            server is gone, which stops the processes and returns a line to print.
    """

    def __init__(self, name: str, kinds: Iterable[KindInfo | Ref] | Ref = (),
                 controllers: Iterable[ControllerFactory | Ref] = (), description: str = "",
                 log_readers: Mapping[str, LogReader | Ref] | None = None,
                 schema: SchemaBranch | Ref | None = None,
                 routers: Iterable[Callable[[Runtime], Any] | Ref] = (),
                 cli: Sequence[CliVerb] = (), sdk: Facade | None = None,
                 dashboard: Sequence[DashboardRoute] = (),
                 describe: Mapping[str, DescribeView | Ref] | None = None,
                 stop_all: Ref | None = None,
                 pods: Mapping[str, PodSource | Ref] | None = None) -> None:
        if not name.isidentifier():
            raise ValueError(f"component name {name!r}: must be a Python identifier "
                             "(it is the client's attribute)")
        self.name = name
        self.description = description
        self._kinds = kinds if isinstance(kinds, str) else tuple(kinds)
        self._controllers = tuple(controllers)
        self._log_readers = dict(log_readers or {})
        self._pods = dict(pods or {})
        self._schema = schema
        self._routers = tuple(routers)
        self.cli = tuple(cli)
        self.sdk = sdk
        self.dashboard = tuple(dashboard)
        self.describe_views = dict(describe or {})
        self.stop_all = stop_all

    def __repr__(self) -> str:
        return f"Component({self.name!r})"

    # The server side, resolved on first use (by the server, never by the faces).

    @cached_property
    def kinds(self) -> tuple[KindInfo, ...]:
        if isinstance(self._kinds, str):
            return tuple(resolve(self._kinds, f"component {self.name} kinds"))
        return tuple(_resolved(k, f"component {self.name} kind") for k in self._kinds)

    @cached_property
    def controllers(self) -> tuple[ControllerFactory, ...]:
        return tuple(_resolved(c, f"component {self.name} controller")
                     for c in self._controllers)

    @cached_property
    def log_readers(self) -> dict[str, LogReader]:
        return {key: _resolved(reader, f"component {self.name} log reader for {key}")
                for key, reader in self._log_readers.items()}

    @cached_property
    def pods(self) -> dict[str, PodSource]:
        return {key: _resolved(source, f"component {self.name} pod source for {key}")
                for key, source in self._pods.items()}

    @cached_property
    def schema(self) -> SchemaBranch | None:
        return (None if self._schema is None
                else _resolved(self._schema, f"component {self.name} schema"))

    @cached_property
    def routers(self) -> tuple[Callable[[Runtime], Any], ...]:
        return tuple(_resolved(r, f"component {self.name} router") for r in self._routers)

    def describe(self) -> dict[str, Any]:
        """What the faces learn about the component without importing it."""
        return {"name": self.name, "description": self.description,
                "cli": [verb.name for verb in self.cli],
                "sdk": self.sdk.name if self.sdk else None,
                "dashboard": [{"path": r.path, "title": r.title, "kinds": list(r.kinds)}
                              for r in self.dashboard]}


def load_components() -> list[Component]:
    """Every installed component (entry point group ``ketch.components``), by name.

    Loading one imports its ``component.py`` only; a component whose declaration is
    made of references costs nothing more until the server resolves it."""
    # Imported here, not at the top: importlib.metadata costs 20-50 ms, and every
    # ``ketch`` command imports this module while only some read the declarations.
    from importlib.metadata import entry_points

    found: dict[str, Component] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        component = ep.load()
        if not isinstance(component, Component):
            raise TypeError(f"entry point {ENTRY_POINT_GROUP}:{ep.name} ({ep.value}) is "
                            f"a {type(component).__name__}, not a ketch Component")
        found.setdefault(component.name, component)
    return list(found.values())


def facades(components: Iterable[Component]) -> dict[str, Facade]:
    """``client.<name>`` -> the facade declaring it; two components claiming one name
    is a packaging error named here, not a silent override."""
    out: dict[str, Facade] = {}
    for component in components:
        if component.sdk is None:
            continue
        if component.sdk.name in out:
            raise ValueError(f"two components declare the client facade "
                             f"{component.sdk.name!r}")
        out[component.sdk.name] = component.sdk
    return out


def cli_verbs(components: Iterable[Component]) -> dict[str, CliVerb]:
    """``ketch <verb>`` -> its declaration, checked for clashes between components."""
    out: dict[str, CliVerb] = {}
    for component in components:
        for verb in component.cli:
            if verb.name in out:
                raise ValueError(f"two components declare the CLI verb {verb.name!r}")
            out[verb.name] = verb
    return out



def describe_view(components: Iterable[Component], kind: str,
                  group: str) -> DescribeView | None:
    """The describe view a component declares for ``kind`` of API ``group`` (resolved:
    only the one asked for is imported), or None: the generic view."""
    key = f"{kind}.{group}"
    for component in components:
        view = component.describe_views.get(key)
        if view is not None:
            resolved: DescribeView = _resolved(view, f"component {component.name} "
                                                     f"describe view for {key}")
            return resolved
    return None
