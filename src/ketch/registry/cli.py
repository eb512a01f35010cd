"""``ketch models ...``: the registry from the command line.

Imports nothing heavy at module level, so ``ketch --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ketch.registry.client import ModelRegistry

app = typer.Typer(name="models", no_args_is_help=True,
                  help="Model registry: register, list, get, archive and delete models.")

NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]


def _registry(namespace: str) -> ModelRegistry:
    import getpass

    from ketch.registry.client import ModelRegistry

    return ModelRegistry(namespace=namespace, author=getpass.getuser())


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _parse_props(items: list[str]) -> dict[str, object]:
    import json

    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise _fail(f"--property {item!r}: use key=value")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out[key] = value if isinstance(value, bool | int | float | str) else raw
    return out


@app.command()
def register(name: str,
             version: Annotated[str, typer.Option(help="Version name, e.g. v1.")],
             uri: Annotated[str, typer.Option(help="Where the model files are (any URI).")],
             model_format: Annotated[str, typer.Option("--format",
                                                       help="sklearn, onnx, xgboost, ...")],
             format_version: Annotated[str, typer.Option(help="Format version.")] = "",
             description: Annotated[str | None, typer.Option()] = None,
             prop: Annotated[list[str] | None, typer.Option(
                 "--property", "-p", help="key=value custom property (repeatable).")] = None,
             namespace: NamespaceOpt = "default") -> None:
    """Register a model version (creating the model on first use)."""
    from ketch.core.errors import KetchError

    try:
        with _registry(namespace) as reg:
            mv = reg.register_model(name, uri, model_format_name=model_format,
                                    model_format_version=format_version, version=version,
                                    description=description,
                                    metadata=_parse_props(prop or []))
    except KetchError as err:
        raise _fail(err.message) from None
    typer.echo(f"model {name} version {version} registered (id {mv['id']})")


@app.command(name="list")
def list_models(state: Annotated[str | None, typer.Option(help="LIVE or ARCHIVED.")] = None,
                search: Annotated[str | None, typer.Option(
                    help="Names containing this (case-insensitive).")] = None,
                namespace: NamespaceOpt = "default") -> None:
    """List registered models."""
    from ketch.core.errors import KetchError

    clauses = []
    if state:
        clauses.append(f'state = "{state.upper()}"')
    if search:
        clauses.append('name ILIKE "%' + search.replace('"', '\\"') + '%"')
    try:
        with _registry(namespace) as reg:
            models = reg.list_models(filter_query=" AND ".join(clauses) or None)
    except KetchError as err:
        raise _fail(err.message) from None
    if not models:
        typer.echo("No models found.", err=True)
        return
    rows = [["NAME", "ID", "STATE", "OWNER", "DESCRIPTION"]] + [
        [m["name"], m["id"], m.get("state", ""), m.get("owner", ""), m.get("description", "")]
        for m in models]
    _table(rows)


@app.command()
def get(name: str, version: Annotated[str | None, typer.Option(help="One version.")] = None,
        output: Annotated[str | None, typer.Option("--output", "-o",
                                                   help="json or yaml.")] = None,
        namespace: NamespaceOpt = "default") -> None:
    """Show a model with its versions, or one version with its artifact."""
    from ketch.core.errors import KetchError
    from ketch.registry.client import from_metadata

    try:
        with _registry(namespace) as reg:
            model = reg.get_registered_model(name)
            if model is None:
                raise _fail(f"model {name!r} not found")
            if version is None:
                data: dict[str, object] = {**model, "versions": reg.list_versions(name)}
            else:
                mv = reg.get_model_version(name, version)
                if mv is None:
                    raise _fail(f"version {version!r} of model {name!r} not found")
                data = {**mv, "artifact": reg.get_model_artifact(name, version)}
    except KetchError as err:
        raise _fail(err.message) from None
    if output in ("json", "yaml"):
        from ketch.cli.output import dump

        typer.echo(dump(data, output))
        return
    typer.echo(f"Name:        {data['name']}  (id {data['id']}, {data.get('state', '')})")
    if data.get("description"):
        typer.echo(f"Description: {data['description']}")
    props = from_metadata(data.get("customProperties") or {})  # type: ignore[arg-type]
    if props:
        typer.echo("Properties:  " + ", ".join(f"{k}={v}" for k, v in props.items()))
    if version is None:
        versions = data["versions"]
        assert isinstance(versions, list)
        rows = [["VERSION", "ID", "STATE", "AUTHOR"]] + [
            [v["name"], v["id"], v.get("state", ""), v.get("author", "")] for v in versions]
        _table(rows)
    else:
        art = data.get("artifact") or {}
        assert isinstance(art, dict)
        typer.echo(f"URI:         {art.get('uri', '')}")
        typer.echo(f"Format:      {art.get('modelFormatName', '')} "
                   f"{art.get('modelFormatVersion', '')}".rstrip())
        typer.echo(f"Serve with:  ketch serve {'model-registry://'}{name}/{version} "
                   f"--name {name}")


@app.command()
def archive(name: str, version: Annotated[str | None, typer.Option()] = None,
            namespace: NamespaceOpt = "default") -> None:
    """Archive a model or one of its versions."""
    from ketch.core.errors import KetchError

    try:
        with _registry(namespace) as reg:
            reg.archive(name, version)
    except KetchError as err:
        raise _fail(err.message) from None
    typer.echo(f"{name}{'/' + version if version else ''} archived")


@app.command()
def delete(name: str, version: Annotated[str | None, typer.Option()] = None,
           namespace: NamespaceOpt = "default") -> None:
    """Delete a model with all its versions, or one version."""
    from ketch.core.errors import KetchError

    try:
        with _registry(namespace) as reg:
            reg.delete(name, version)
    except KetchError as err:
        raise _fail(err.message) from None
    typer.echo(f"{name}{'/' + version if version else ''} deleted")


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
