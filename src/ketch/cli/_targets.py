"""What a generic verb acts on, read from its arguments as kubectl reads them.

``KIND [NAME...]``, ``KIND/NAME...`` (the form ``-o name`` prints), several kinds at
once (``isvc,jobs``) and ``all`` (every kind the server serves). Names are checked
here, before the client makes any request: a name the server could never have
stored (``zzz/../withsecret``) is refused with the rule it breaks instead of being
sent as a path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ketch.core.errors import InvalidError
from ketch.core.resources import validate_name

if TYPE_CHECKING:
    from ketch.client import Client, KindRef

__all__ = ["Request", "Target", "check_name", "check_namespace", "one", "parse", "resolve"]


_NAME_LIKE = re.compile(r"[a-z0-9][a-z0-9.-]*")


@dataclass(frozen=True)
class Request:
    """The arguments as typed: kinds (in order) with the names asked for each."""

    kinds: list[str]
    names: dict[str, list[str]] = field(default_factory=dict)
    # True for KIND/NAME arguments: each kind has its own names.
    slash_form: bool = False


@dataclass(frozen=True)
class Target:
    """One kind and its names (empty: every object of the kind)."""

    ref: KindRef
    names: list[str]


def check_name(name: str, kind: str = "") -> str:
    """``name`` if it is a valid object name (RFC 1123 subdomain, as Kubernetes and
    the server require), else ``InvalidError`` saying why."""
    try:
        return validate_name(name)
    except ValueError as err:
        what = f"name {name!r} for {kind}" if kind else f"name {name!r}"
        hint = ""
        kind_part, _, name_part = name.partition("/")
        if re.fullmatch(r"[A-Za-z][\w.-]*", kind_part) and _NAME_LIKE.fullmatch(name_part):
            hint = " (to give a kind with each name, write KIND/NAME for every argument)"
        rule = str(err).partition(" must ")[2]
        raise InvalidError(f"invalid {what}: must {rule}{hint}") from None


def check_namespace(namespace: str | None) -> str | None:
    if namespace is None:
        return None
    if len(namespace) > 63:
        raise InvalidError(f"invalid namespace {namespace!r}: must be at most 63 characters")
    try:
        return validate_name(namespace, "namespace")
    except ValueError as err:
        raise InvalidError(f"invalid {err}") from None


def parse(args: Sequence[str], verb: str) -> Request:
    """Split ``args`` into kinds and names and check every name; no request is made."""
    if not args:
        raise InvalidError(f"say what to {verb}, e.g. 'ketch {verb} jobs' or "
                           f"'ketch {verb} job/hello'; 'ketch api-resources' lists the kinds")
    if "/" in args[0]:
        names: dict[str, list[str]] = {}
        for arg in args:
            kind, sep, name = arg.partition("/")
            if not sep or not kind or not name:
                raise InvalidError(
                    f"{arg!r}: when the first argument is KIND/NAME, every argument must be "
                    f"KIND/NAME (e.g. 'ketch {verb} job/a job/b')")
            names.setdefault(kind, []).append(check_name(name, kind))
        return Request(list(names), names, slash_form=True)
    kinds = [k for k in args[0].split(",") if k.strip()]
    if not kinds:
        raise InvalidError(f"no kind in {args[0]!r}; 'ketch api-resources' lists the kinds")
    wanted = [check_name(name, kinds[0] if len(kinds) == 1 else "") for name in args[1:]]
    return Request(kinds, {k: list(wanted) for k in kinds})


def resolve(client: Client, request: Request) -> list[Target]:
    """The kinds of ``request`` as the server knows them (``all``: every kind); names
    given under two spellings of one kind (``job/a kj/b``) go to that one kind."""
    targets: dict[str, Target] = {}
    for kind in request.kinds:
        refs = client.kinds() if kind.strip().lower() == "all" and not request.slash_form \
            else [client.kind(kind)]
        for ref in refs:
            target = targets.setdefault(f"{ref.plural}.{ref.group}", Target(ref, []))
            target.names.extend(n for n in request.names.get(kind, [])
                                if n not in target.names)
    return list(targets.values())


def one(kind: str, name: str | None, verb: str) -> tuple[str, str]:
    """``KIND NAME`` or ``KIND/NAME`` for verbs on one object (logs, wait, cancel)."""
    if name is None:
        kind, sep, name = kind.partition("/")
        if not sep or not name:
            raise InvalidError(f"say which object to {verb}: 'ketch {verb} KIND NAME' or "
                               f"'ketch {verb} KIND/NAME'")
    return kind, check_name(name, kind)
