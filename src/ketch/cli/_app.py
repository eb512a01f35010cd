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

from ketch.cli._verbs import ComponentVerbsGroup

if TYPE_CHECKING:
    from ketch.client import Client

# Plain help (click's layout) instead of rich boxes, and errors left to ketch.cli._errors,
# which prints each one as one ``error:`` line. Component verbs (``ketch run``, ``ketch
# serve``, ``ketch models``...) come from the components' declarations (ketch.cli._verbs).
app = typer.Typer(name="ketch", no_args_is_help=True, add_completion=False,
                  help="ketch: the Kubeflow ML platform as one Python package.",
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  cls=ComponentVerbsGroup)

NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", metavar="NAMESPACE",
                                                  help="Namespace (default: 'default').")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", metavar="FORMAT",
                                               help="Output format: json, yaml, wide or "
                                                    "name.")]
KindArg = Annotated[str, typer.Argument(metavar="KIND",
                                        help="Kind: plural, singular or short name.")]
NameOptArg = Annotated[str | None, typer.Argument(
    metavar="NAME", help="Object name; or give KIND/NAME as one argument.",
    show_default=False)]
PortOpt = Annotated[int, typer.Option(min=0, max=65535, metavar="PORT",
                                      help="Port to listen on (0 picks a free one).")]
HostOpt = Annotated[str, typer.Option(metavar="ADDRESS",
                                      help="Address to bind (non-loopback needs a token).")]


def _one(kind: str, name: str | None, verb: str) -> tuple[str, str]:
    from ketch.cli._targets import one

    return one(kind, name, verb)


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
def up(port: PortOpt = 8080, host: HostOpt = "127.0.0.1") -> None:
    """Start the platform (API server and dashboard) in the foreground."""
    _serve(host, port, mode="up", dashboard=True)


@app.command()
def server(port: PortOpt = 8080, host: HostOpt = "127.0.0.1",
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
def stop(all_: Annotated[bool, typer.Option(
        "--all", help="Also stop the InferenceServices' model servers and fronts (they "
                      "start again with the next server).")] = False) -> None:
    """Stop the ketch server running for this KETCH_HOME."""
    from ketch.core.component import load_components, resolve
    from ketch.core.config import Settings
    from ketch.core.home import HomeLock, ServerInfo

    # Each component's part of --all reads what the server knows before it goes, and
    # stops its processes after (when nothing restarts them).
    after = [resolve(c.stop_all, f"component {c.name} stop_all")()
             for c in load_components() if c.stop_all] if all_ else []

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
            for finish in after:
                _print(finish())
            return
        time.sleep(0.1)
    raise _fail(f"ketch server (pid {pid}) did not stop in 15s")


# What YAML 1.1 calls non-printable (PyYAML's Reader.NON_PRINTABLE).
_NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd"
                       "\U00010000-\U0010ffff]")


def _decode_manifest(raw: bytes, source: str) -> str:
    """The text of a manifest: UTF-8 (a UTF-16/32 file with its byte-order mark is read
    too, as YAML allows); anything else fails naming the file and the first bad byte."""
    import codecs

    # UTF-32 first: its little-endian mark starts with UTF-16's.
    marks = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
             (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
             (codecs.BOM_UTF16_BE, "utf-16"))
    encoding = next((name for bom, name in marks if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        hint = ""
        if encoding == "utf-8" and b"\x00" in raw[:64]:
            hint = " (NUL bytes: UTF-16 without a byte-order mark, or not text at all)"
        raise _fail(f"{source}: not {encoding.upper().removesuffix('-SIG')} text: byte "
                    f"0x{raw[err.start]:02x} at offset {err.start} cannot be decoded"
                    f"{hint}; save the file as UTF-8") from None
    # Characters YAML never allows (a NUL, most control codes): say where, here, rather
    # than let the parser fail on them.
    bad = _NOT_YAML.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        hint = " (UTF-16 without a byte-order mark?)" if bad.group() == "\x00" else ""
        raise _fail(f"{source}: line {line}, column {column}: character "
                    f"U+{ord(bad.group()):04X} is not allowed in YAML or JSON{hint}")
    return text


@app.command()
def apply(filename: Annotated[str, typer.Option("--filename", "-f",
                                                help="YAML/JSON file, or - for stdin.")],
          namespace: NamespaceOpt = None,
          dry_run: Annotated[bool, typer.Option("--dry-run",
                                                help="Validate only.")] = False,
          force_conflicts: Annotated[bool, typer.Option(
              "--force-conflicts",
              help="Take over fields another field manager set.")] = False) -> None:
    """Create or update resources from a file (all documents are checked first), by
    server-side apply as field manager ``ketch``."""
    from ketch.core.errors import KetchError
    from ketch.core.loader import load_documents

    source = "<stdin>" if filename == "-" else filename
    try:
        raw = sys.stdin.buffer.read() if filename == "-" else Path(filename).read_bytes()
    except OSError as err:
        raise _fail(f"{source}: {err.strerror}") from None
    text = _decode_manifest(raw, source)
    try:
        docs = load_documents(text, source)
        if not docs:
            raise _fail(f"{source}: no resources found")
        with _client() as client:
            for index, doc in enumerate(docs, start=1):
                try:
                    client.apply(doc, namespace=namespace, dry_run=True,
                                 force=force_conflicts)
                except KetchError as err:
                    raise _fail(f"{source}: document {index}: {err.message}") from None
            # Every document passed the dry run above; now write them.
            results = client.apply(docs, namespace=namespace, dry_run=dry_run,
                                   validate_first=False, force=force_conflicts)
    except KetchError as err:
        raise _fail(err.message) from None
    for obj, action in results:
        suffix = " (dry run)" if dry_run else ""
        group = obj.group
        _print(f"{obj.kind.lower()}.{group}/{obj.name} {action}{suffix}")


TargetArgs = Annotated[list[str] | None, typer.Argument(
    metavar="KIND [NAME...]",
    help="Kinds (plural, singular or short name; 'all' for every kind) and names, or "
         "KIND/NAME pairs as -o name prints them.", show_default=False)]
SelectorOpt = Annotated[str | None, typer.Option("--selector", "-l", metavar="SELECTOR",
                                                 help="Label selector, e.g. app=hello.")]
AllNamespacesOpt = Annotated[bool, typer.Option("--all-namespaces", "-A",
                                                help="Every namespace.")]


@app.command()
def get(targets: TargetArgs = None, namespace: NamespaceOpt = None, output: OutputOpt = None,
        selector: SelectorOpt = None, all_namespaces: AllNamespacesOpt = False,
        watch: Annotated[bool, typer.Option("--watch", "-w",
                                            help="Print changes as they happen.")] = False,
        ) -> None:
    """List resources of one or more kinds, or show some by name."""
    from ketch.cli._resource_verbs import get_objects

    get_objects(targets or [], namespace=namespace, output=output, selector=selector,
                all_namespaces=all_namespaces, watch=watch)


@app.command()
def describe(targets: TargetArgs = None, namespace: NamespaceOpt = None,
             selector: SelectorOpt = None,
             all_namespaces: AllNamespacesOpt = False) -> None:
    """Show resources in detail (every one of a kind when no name is given)."""
    from ketch.cli._resource_verbs import describe_objects

    describe_objects(targets or [], namespace=namespace, selector=selector,
                     all_namespaces=all_namespaces)


@app.command()
def delete(targets: TargetArgs = None, namespace: NamespaceOpt = None,
           wait: Annotated[bool, typer.Option(help="Wait until each object is gone.")] = True,
           timeout: Annotated[str, typer.Option(
               metavar="DURATION", help="How long to wait for each (60s, 5m); exit 1 if "
                                        "one is still there.")] = "60s") -> None:
    """Delete resources (a running Job's processes are killed)."""
    from ketch.cli._resource_verbs import delete_objects

    delete_objects(targets or [], namespace=namespace, wait=wait,
                   timeout=_parse_duration(timeout))


@app.command()
def logs(kind: KindArg, name: NameOptArg = None, namespace: NamespaceOpt = None,
         follow: Annotated[bool, typer.Option("--follow", "-f",
                                              help="Stream until it ends.")] = False,
         attempt: Annotated[int | None, typer.Option(help="Attempt number (default: "
                                                          "latest).")] = None,
         task: Annotated[str | None, typer.Option(
             help="One task of a pipeline run (e.g. train, for-loop-1/0/train).")] = None,
         ) -> None:
    """Print a resource's log (stdout and stderr of its process)."""
    from ketch.core.errors import KetchError

    kind, name = _one(kind, name, "logs")
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
def wait(kind: KindArg, name: NameOptArg = None, *,
         for_: Annotated[str, typer.Option("--for",
                                           help="condition=NAME, e.g. condition=Succeeded")],
         namespace: NamespaceOpt = None,
         timeout: Annotated[str, typer.Option(help="Give up after this long "
                                                   "(30s, 5m).")] = "60s") -> None:
    """Wait until a condition holds; exit 1 if the resource ends without it."""
    from ketch.core.errors import KetchError

    kind, name = _one(kind, name, "wait")

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
def cancel(kind: KindArg, name: NameOptArg = None, namespace: NamespaceOpt = None) -> None:
    """Cancel a running Job (sets spec.cancel; the object is kept)."""
    from ketch.core.errors import KetchError

    kind, name = _one(kind, name, "cancel")

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
def kubeconfig(
        output: Annotated[str | None, typer.Option(
            "--output", "-o", metavar="PATH",
            help="Where to write it (default: $KETCH_HOME/kubeconfig).")] = None,
        namespace: Annotated[str, typer.Option(
            "--namespace", "-n", metavar="NAMESPACE",
            help="The context's namespace.")] = "default",
        server: Annotated[str | None, typer.Option(
            "--server", metavar="URL",
            help="The server's URL (default: KETCH_HOST, else this KETCH_HOME's "
                 "server).")] = None) -> None:
    """Write a kubeconfig that points kubectl at this ketch server."""
    from ketch.cli._kubeconfig import run
    from ketch.core.errors import KetchError

    try:
        path, url, warning = run(output, namespace, server)
    except (KetchError, OSError) as err:
        raise _fail(getattr(err, "message", None) or str(err)) from None
    if warning:
        typer.echo(warning, err=True)
    # The token (when the server has one) is in the file, never printed.
    _print(f"wrote {path} for {url} (context ketch, namespace {namespace})\n"
           f"use it with:  export KUBECONFIG={path}\n"
           f"then e.g.:    kubectl api-resources; kubectl get jobs.ketch.dev")


@app.command()
def version() -> None:
    """Print ketch's version."""
    from ketch import __version__

    _print(f"ketch {__version__}")


