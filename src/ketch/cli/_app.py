"""The ``ketch`` command: kubectl-like verbs on every kind, plus ``up``/``server``."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ketch.client import Client

app = typer.Typer(name="ketch", no_args_is_help=True, add_completion=False,
                  help="ketch: the Kubeflow ML platform as one Python package.",
                  pretty_exceptions_enable=False)


def _add_component_verbs() -> None:
    # Component CLIs are typer apps that import nothing heavy at module level.
    from ketch.pipelines.cli import compile_command
    from ketch.pipelines.run_cli import run
    from ketch.registry.cli import app as models
    from ketch.serving.cli import serve

    app.add_typer(models, name="models")
    app.command(name="serve")(serve)
    app.command(name="run")(run)
    app.command(name="compile")(compile_command)


_add_component_verbs()

NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n",
                                                  help="Namespace (default: 'default').")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o",
                                               help="Output format: json, yaml or wide.")]


def _client() -> Client:
    from ketch.client import Client

    return Client()


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _print(text: str) -> None:
    typer.echo(text)


def _parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise _fail(f"--timeout {text!r}: use a duration such as 30s, 5m or 1h")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return float(match.group(1)) * scale


@app.command()
def up(port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
       host: Annotated[str, typer.Option(help="Address to bind (non-loopback needs a "
                                               "token).")] = "127.0.0.1") -> None:
    """Start the platform (API server and dashboard) in the foreground."""
    _serve(host, port, mode="up", dashboard=True)


@app.command()
def server(port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8080,
           host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
           background: Annotated[bool, typer.Option(hidden=True)] = False) -> None:
    """Start the API server only (no dashboard)."""
    _serve(host, port, mode="background" if background else "server", dashboard=background)


def _serve(host: str, port: int, *, mode: str, dashboard: bool) -> None:
    from ketch.core.config import Settings
    from ketch.core.errors import KetchError
    from ketch.server.run import serve

    settings = Settings.from_env()

    def announce(url: str, token_file: str | None) -> None:
        what = "dashboard and API" if dashboard else "API"
        typer.echo(f"ketch is up at {url} ({what}); KETCH_HOME={settings.home}", err=False)
        if token_file:
            typer.echo(f"clients must send the bearer token in {token_file} "
                       "(KETCH_TOKEN)")
        sys.stdout.flush()

    try:
        serve(settings, host=host, port=port, mode=mode, announce=announce, dashboard=dashboard)
    except KetchError as err:
        raise _fail(err.message) from None


@app.command()
def stop() -> None:
    """Stop the ketch server running for this KETCH_HOME."""
    from ketch.core.config import Settings
    from ketch.server.run import HomeLock, ServerInfo

    settings = Settings.from_env()
    data = ServerInfo(settings.home).read()
    # The home's lock names the control plane even before (or after) its server.json.
    pid = int((HomeLock(settings.home).holder() or data or {}).get("pid") or 0)
    if not pid:
        raise _fail(f"no ketch server is recorded for KETCH_HOME={settings.home}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        ServerInfo(settings.home).path.unlink(missing_ok=True)
        _print("the recorded server was not running")
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _print(f"stopped ketch server (pid {pid})")
            return
        time.sleep(0.1)
    raise _fail(f"ketch server (pid {pid}) did not stop in 15s")


@app.command()
def apply(filename: Annotated[str, typer.Option("--filename", "-f",
                                                help="YAML/JSON file, or - for stdin.")],
          namespace: NamespaceOpt = None,
          dry_run: Annotated[bool, typer.Option("--dry-run",
                                                help="Validate only.")] = False) -> None:
    """Create or update resources from a file (all documents are checked first)."""
    from ketch.core.errors import KetchError
    from ketch.core.loader import load_documents

    source = "<stdin>" if filename == "-" else filename
    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    except OSError as err:
        raise _fail(f"{source}: {err.strerror}") from None
    try:
        docs = load_documents(text, source)
        if not docs:
            raise _fail(f"{source}: no resources found")
        with _client() as client:
            for index, doc in enumerate(docs, start=1):
                try:
                    client.apply(doc, namespace=namespace, dry_run=True)
                except KetchError as err:
                    raise _fail(f"{source}: document {index}: {err.message}") from None
            # Every document passed the dry run above; now write them.
            results = client.apply(docs, namespace=namespace, dry_run=dry_run,
                                   validate_first=False)
    except KetchError as err:
        raise _fail(err.message) from None
    for obj, action in results:
        suffix = " (dry run)" if dry_run else ""
        group = obj.group
        _print(f"{obj.kind.lower()}.{group}/{obj.name} {action}{suffix}")


@app.command()
def get(kind: Annotated[str, typer.Argument(help="Kind: plural, singular or short name.")],
        name: Annotated[str | None, typer.Argument()] = None,
        namespace: NamespaceOpt = None, output: OutputOpt = None,
        selector: Annotated[str | None, typer.Option("--selector", "-l",
                                                     help="Label selector.")] = None,
        all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
        watch: Annotated[bool, typer.Option("--watch", "-w",
                                            help="Print changes as they happen.")] = False,
        ) -> None:
    """List resources of a kind, or show one."""
    from ketch.cli._output import dump, table
    from ketch.core.errors import KetchError

    if output not in (None, "json", "yaml", "wide", "name"):
        raise _fail(f"--output {output!r}: choose json, yaml, wide or name")
    try:
        with _client() as client:
            ref = client.kind(kind)
            if watch:
                for event in client.watch(kind, namespace=namespace, name=name,
                                          all_namespaces=all_namespaces,
                                          label_selector=selector):
                    obj = event.object
                    phase = obj.status.get("phase", "")
                    _print(f"{event.type:<9} {obj.namespace}/{obj.name} {phase}")
                return
            if name:
                items = [client.get(kind, name, namespace=namespace)]
            else:
                items = client.list(kind, namespace=namespace, all_namespaces=all_namespaces,
                                    label_selector=selector).items
    except KetchError as err:
        raise _fail(err.message) from None
    if output in ("json", "yaml"):
        if name:
            _print(dump(items[0].to_wire(), output))
        else:
            _print(dump({"apiVersion": "v1", "kind": "List",
                         "items": [o.to_wire() for o in items]}, output))
    elif output == "name":
        for obj in items:
            _print(f"{ref.kind.lower()}.{ref.group}/{obj.name}")
    elif not items:
        where = "any namespace" if all_namespaces else f"namespace {namespace or 'default'}"
        typer.echo(f"No {ref.plural} found in {where}.", err=True)
    else:
        _print(table(ref, items, wide=output == "wide", all_namespaces=all_namespaces))


@app.command()
def describe(kind: str, name: str, namespace: NamespaceOpt = None) -> None:
    """Show one resource in detail: spec, status and conditions."""
    from ketch.cli._output import describe as render
    from ketch.core.errors import KetchError

    try:
        with _client() as client:
            obj = client.get(kind, name, namespace=namespace)
    except KetchError as err:
        raise _fail(err.message) from None
    _print(render(obj))


@app.command()
def delete(kind: str, names: Annotated[list[str], typer.Argument(help="Names to delete.")],
           namespace: NamespaceOpt = None,
           wait: Annotated[bool, typer.Option(help="Wait until it is gone.")] = True) -> None:
    """Delete resources (a running Job's processes are killed)."""
    from ketch.core.errors import KetchError, NotFoundError

    try:
        with _client() as client:
            ref = client.kind(kind)
            for name in names:
                client.delete(kind, name, namespace=namespace)
                if wait:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        try:
                            client.get(kind, name, namespace=namespace)
                        except NotFoundError:
                            break
                        time.sleep(0.1)
                _print(f"{ref.kind.lower()}.{ref.group} \"{name}\" deleted")
    except KetchError as err:
        raise _fail(err.message) from None


@app.command()
def logs(kind: str, name: str, namespace: NamespaceOpt = None,
         follow: Annotated[bool, typer.Option("--follow", "-f",
                                              help="Stream until it ends.")] = False,
         attempt: Annotated[int | None, typer.Option(help="Attempt number (default: "
                                                          "latest).")] = None,
         task: Annotated[str | None, typer.Option(
             help="One task of a pipeline run (e.g. train, for-loop-1/0/train).")] = None,
         ) -> None:
    """Print a resource's log (stdout and stderr of its process)."""
    from ketch.core.errors import KetchError

    out = sys.stdout.buffer
    try:
        with _client() as client:
            for chunk in client.logs(kind, name, namespace=namespace, follow=follow,
                                     attempt=attempt, task=task):
                out.write(chunk)
                out.flush()
    except KetchError as err:
        raise _fail(err.message) from None


@app.command()
def wait(kind: str, name: str,
         for_: Annotated[str, typer.Option("--for",
                                           help="condition=NAME, e.g. condition=Succeeded")],
         namespace: NamespaceOpt = None,
         timeout: Annotated[str, typer.Option(help="Give up after this long "
                                                   "(30s, 5m).")] = "60s") -> None:
    """Wait until a condition holds; exit 1 if the resource ends without it."""
    from ketch.core.errors import KetchError

    match = re.fullmatch(r"condition=(\w[\w.-]*)(?:=True)?", for_.strip(), re.IGNORECASE)
    if not match:
        raise _fail(f"--for {for_!r}: use condition=NAME, e.g. condition=Succeeded")
    seconds = _parse_duration(timeout)
    try:
        with _client() as client:
            ref = client.kind(kind)
            client.wait(kind, name, condition=match.group(1), namespace=namespace,
                        timeout=seconds)
    except TimeoutError as err:
        raise _fail(str(err)) from None
    except KetchError as err:
        raise _fail(err.message) from None
    _print(f"{ref.kind.lower()}.{ref.group}/{name} condition met")


@app.command()
def cancel(kind: str, name: str, namespace: NamespaceOpt = None) -> None:
    """Cancel a running Job (sets spec.cancel; the object is kept)."""
    from ketch.core.errors import KetchError

    try:
        with _client() as client:
            client.patch(kind, name, {"spec": {"cancel": True}}, namespace=namespace)
    except KetchError as err:
        raise _fail(err.message) from None
    _print(f"{kind}/{name} cancel requested")


@app.command(name="api-resources")
def api_resources() -> None:
    """List the kinds this server knows."""
    from ketch.core.errors import KetchError

    try:
        with _client() as client:
            kinds = client.kinds()
    except KetchError as err:
        raise _fail(err.message) from None
    rows = [["NAME", "SHORTNAMES", "APIVERSION", "KIND"]] + [
        [k.plural, ",".join(k.short_names), k.api_version, k.kind] for k in kinds]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        _print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@app.command()
def version() -> None:
    """Print ketch's version."""
    from ketch import __version__

    _print(f"ketch {__version__}")


