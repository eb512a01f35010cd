"""``get``, ``describe`` and ``delete`` on any kind, with kubectl's argument forms.

The typer signatures live in ``_app``; here is what the verbs do. Objects asked for by
name that do not exist are reported as kubectl does: everything found is printed, then
one ``error:`` line per missing object, and the command exits 1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import typer

from ketch.cli._targets import Target, check_namespace, parse, resolve
from ketch.client import Client, KindRef
from ketch.core.errors import InvalidError, KetchError, NotFoundError
from ketch.core.resources import Resource

__all__ = ["delete_objects", "describe_objects", "get_objects"]

OUTPUTS = (None, "json", "yaml", "wide", "name")


@dataclass
class _Found:
    ref: KindRef
    items: list[Resource]


def _kind_arg(ref: KindRef) -> str:
    # plural.group names exactly one kind, whatever else shares a short name.
    return f"{ref.plural}.{ref.group}" if ref.group else ref.plural


def _object_name(ref: KindRef, name: str) -> str:
    """``job.ketch.dev/hello``: what ``-o name`` prints and ``KIND/NAME`` accepts."""
    return f"{ref.kind.lower()}.{ref.group}/{name}" if ref.group else f"{ref.kind.lower()}/{name}"


def _fetch(client: Client, targets: list[Target], *, namespace: str | None,
           all_namespaces: bool = False, selector: str | None = None,
           ) -> tuple[list[_Found], list[str]]:
    found: list[_Found] = []
    missing: list[str] = []
    for target in targets:
        kind = _kind_arg(target.ref)
        if target.names:
            items = []
            for name in target.names:
                try:
                    items.append(client.get(kind, name, namespace=namespace))
                except NotFoundError as err:
                    missing.append(err.message)
        else:
            items = client.list(kind, namespace=namespace, all_namespaces=all_namespaces,
                                label_selector=selector).items
        found.append(_Found(target.ref, items))
    return found, missing


def _report_missing(missing: list[str]) -> None:
    for message in missing:
        typer.echo(f"error: {message}", err=True)
    if missing:
        raise typer.Exit(1)


def _where(namespace: str | None, all_namespaces: bool) -> str:
    return "any namespace" if all_namespaces else f"namespace {namespace or 'default'}"


def get_objects(args: Sequence[str], *, namespace: str | None, output: str | None,
                selector: str | None, all_namespaces: bool, watch: bool) -> None:
    from ketch.cli.output import dump, table

    if output not in OUTPUTS:
        raise InvalidError(f"--output {output!r}: choose json, yaml, wide or name")
    request = parse(args, "get")
    check_namespace(namespace)
    with Client() as client:
        targets = resolve(client, request)
        if watch:
            _watch(client, targets, namespace=namespace, selector=selector,
                   all_namespaces=all_namespaces)
            return
        found, missing = _fetch(client, targets, namespace=namespace,
                                all_namespaces=all_namespaces, selector=selector)
    items = [obj for group in found for obj in group.items]
    by_name = any(t.names for t in targets)
    if output in ("json", "yaml"):
        single = len(targets) == 1 and len(targets[0].names) == 1
        if single and items:
            typer.echo(dump(items[0].to_wire(), output))
        elif not (single and missing):
            typer.echo(dump({"apiVersion": "v1", "kind": "List",
                             "items": [o.to_wire() for o in items]}, output))
    elif output == "name":
        for group in found:
            for obj in group.items:
                typer.echo(_object_name(group.ref, obj.name))
    elif not items and not by_name:
        what = found[0].ref.plural if len(found) == 1 else "resources"
        typer.echo(f"No {what} found in {_where(namespace, all_namespaces)}.", err=True)
    else:
        # One table per kind, as kubectl prints several kinds; with more than one kind
        # each name carries its kind so a line can be pasted back into a command.
        several = len(found) > 1
        tables = [table(group.ref, group.items, wide=output == "wide",
                        all_namespaces=all_namespaces,
                        name_prefix=_object_name(group.ref, "") if several else "")
                  for group in found if group.items]
        if tables:
            typer.echo("\n\n".join(tables))
    _report_missing(missing)


def _watch(client: Client, targets: list[Target], *, namespace: str | None,
           selector: str | None, all_namespaces: bool) -> None:
    if len(targets) != 1 or len(targets[0].names) > 1:
        raise InvalidError("--watch takes one kind and at most one name")
    target = targets[0]
    name = target.names[0] if target.names else None
    for event in client.watch(_kind_arg(target.ref), namespace=namespace, name=name,
                              all_namespaces=all_namespaces, label_selector=selector):
        obj = event.object
        phase = obj.status.get("phase", "")
        typer.echo(f"{event.type:<9} {obj.namespace}/{obj.name} {phase}")


def describe_objects(args: Sequence[str], *, namespace: str | None,
                     selector: str | None, all_namespaces: bool) -> None:
    from ketch.cli._describe import describe

    request = parse(args, "describe")
    check_namespace(namespace)
    with Client() as client:
        found, missing = _fetch(client, resolve(client, request), namespace=namespace,
                                all_namespaces=all_namespaces, selector=selector)
    items = [obj for group in found for obj in group.items]
    if items:
        typer.echo("\n\n".join(describe(obj) for obj in items))
    elif not missing:
        typer.echo(f"No resources found in {_where(namespace, all_namespaces)}.", err=True)
    _report_missing(missing)


def delete_objects(args: Sequence[str], *, namespace: str | None, wait: bool,
                   timeout: float) -> None:
    """Delete each named object; with ``wait``, exit 1 for any still there after
    ``timeout`` seconds (a finalizer no controller removes, a controller that
    cannot finish), saying what it waits for."""
    request = parse(args, "delete")
    check_namespace(namespace)
    failed: list[str] = []
    with Client() as client:
        targets = resolve(client, request)
        for target in targets:
            if not target.names:
                raise InvalidError(f"say which {target.ref.plural} to delete, e.g. "
                                   f"'ketch delete {target.ref.kind.lower()} NAME' "
                                   f"(ketch get {target.ref.plural} lists them)")
        for target in targets:
            kind = _kind_arg(target.ref)
            label = f"{target.ref.kind.lower()}.{target.ref.group}"
            for name in target.names:
                try:
                    client.delete(kind, name, namespace=namespace)
                    left = _wait_gone(client, kind, name, namespace, timeout) if wait else None
                except KetchError as err:
                    failed.append(err.message)
                    continue
                if left is None:
                    typer.echo(f'{label} "{name}" deleted')
                else:
                    failed.append(f'{label} "{name}" is still there {timeout:g}s after its '
                                  f"deletion was requested: {_still_there(left)}")
    _report_missing(failed)


def _wait_gone(client: Client, kind: str, name: str, namespace: str | None,
               timeout: float) -> Resource | None:
    """None once the object is gone, else the object as it is at the deadline."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            obj = client.get(kind, name, namespace=namespace)
        except NotFoundError:
            return None
        if time.monotonic() >= deadline:
            return obj
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, 0.5)


def _still_there(obj: Resource) -> str:
    finalizers = obj.metadata.finalizers
    if finalizers:
        return f"waiting for finalizers {', '.join(finalizers)}"
    # No finalizer holds it, so the server is failing to remove it: its last
    # condition is the best clue there is.
    why = "the server has not removed it"
    conditions = obj.status.get("conditions") or []
    last = conditions[-1] if conditions and isinstance(conditions[-1], dict) else {}
    if last.get("message"):
        text = str(last["message"]).strip().splitlines()[-1]
        why += f" (last condition {last.get('type', '')}: {text})"
    return why
