"""The model server process: ``python -m ketch.serving.modelserver``.

Usage::

    python -m ketch.serving.modelserver --name NAME \\
        (--model-dir DIR_OR_FILE | --storage-uri URI) \\
        --format {sklearn,xgboost,lightgbm,onnx,pytorch,custom} [--port PORT] \\
        [--host 127.0.0.1] [--uds PATH] [--custom module:Class] \\
        [--transformer module:Class [--transformer-dir DIR]] \\
        [--max-batch-size N] [--max-latency MS] [--batch-timeout S] \\
        [--logger-url URL] [--logger-mode all|request|response] \\
        [--service NAME] [--namespace NS] [--offload auto|thread|inline]

With ``--storage-uri`` the process is first its own storage initializer (KServe's init
container): it resolves or downloads the URI (``ketch.serving._storage``), saying so in
``storage-initializer: ...`` lines; when the model cannot be had it exits with status 3
and one ``storage-initializer: error: StorageUriError: ...`` line on stderr.
The model is loaded before the port opens: when it cannot load, the process exits with
status 2 and one ``modelserver: ...`` line on stderr. Once listening, ``GET
/v2/health/ready`` answers 200. ``--host`` and ``--port`` default to
``KETCH_UNIT_HOST`` and ``KETCH_UNIT_PORT``, the address an executor backend chose for a
server unit (else 127.0.0.1:8080); with ``--port 0`` the process prints one line
``KETCH_MODELSERVER_PORT=<port>`` to stdout. With ``--uds PATH`` it listens on a unix
domain socket instead of TCP (for a router in front of replicas on the same machine) and
prints ``KETCH_MODELSERVER_UDS=<path>`` once listening. ``KETCH_UNIT_UDS`` (what the
local executor backend gives a server unit) is a unix socket to listen on besides the TCP
port: fronts on the same host reach the replica there (``_front_admin.local_socket``).
With ``KETCH_REPLICA_TOKEN_SHA256`` set (the controller sets it when the platform has a
token) every route, health and metrics too, answers only a bearer token with that
SHA-256 or, with ``KETCH_REPLICA_CREDENTIAL_SHA256``, one with that SHA-256 (the
service's replica credential, which the front and the controller send); anything else
gets 401. SIGTERM or SIGINT stops it
gracefully (requests in flight finish, up to ``--drain-seconds``) and the process exits 0.

Batching is on when ``--max-batch-size`` or ``--max-latency`` is given (KServe's
``batcher``); request logging when ``--logger-url`` is given (KServe's ``logger``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import hmac
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ketch.serving._http import Request, Response

__all__ = ["main"]

EXIT_LOAD_FAILED = 2
EXIT_STORAGE_FAILED = 3


def _env_port() -> int:
    value = os.environ.get("KETCH_UNIT_PORT") or "8080"
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"modelserver: KETCH_UNIT_PORT: {value!r} is not a port number"
                         ) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ketch.serving.modelserver",
                                description="Serve one model over KServe's V1 and V2 "
                                            "REST protocols.")
    p.add_argument("--name", required=True, help="model name in the URL paths")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", help="the model file, or a directory holding it")
    where.add_argument("--storage-uri", metavar="URI",
                       help="fetch the model from this URI first (a path, file://, s3://, "
                            "gs://, https://, ...), as KServe's storage initializer does")
    p.add_argument("--format", required=True,
                   help="sklearn, xgboost, lightgbm, onnx, pytorch or custom")
    p.add_argument("--port", type=int, default=_env_port(),
                   help="port to listen on; 0 picks a free one and prints it (default: "
                        "KETCH_UNIT_PORT, else 8080)")
    p.add_argument("--host", default=os.environ.get("KETCH_UNIT_HOST") or "127.0.0.1",
                   help="address to bind (default: KETCH_UNIT_HOST, else 127.0.0.1)")
    p.add_argument("--uds", default=None, metavar="PATH",
                   help="listen on this unix domain socket instead of TCP")
    p.add_argument("--custom", default=None, metavar="MODULE:CLASS",
                   help="a user model class (with --format custom)")
    p.add_argument("--transformer", default=None, metavar="MODULE:CLASS",
                   help="a class with preprocess()/postprocess() run around the model")
    p.add_argument("--transformer-dir", default=None, metavar="DIR",
                   help="directory holding the transformer's module (default: the model "
                        "directory)")
    batch = p.add_argument_group("batching (KServe's batcher)")
    batch.add_argument("--max-batch-size", type=int, default=None, metavar="N",
                       help="rows that close a batch (default 32 when batching)")
    batch.add_argument("--max-latency", type=float, default=None, metavar="MS",
                       help="milliseconds a batch waits at most (default 5000 when "
                            "batching)")
    batch.add_argument("--batch-timeout", type=float, default=None, metavar="S",
                       help="seconds a request waits at most for its batch (default 60)")
    log = p.add_argument_group("request logging (KServe's logger)")
    log.add_argument("--logger-url", default=None, metavar="URL",
                     help="http(s):// receiver of CloudEvents, or a file path / file:// "
                          "for JSON lines")
    log.add_argument("--logger-mode", default="all", choices=["all", "request", "response"])
    log.add_argument("--service", default=None,
                     help="InferenceService name in logged events (default: --name)")
    log.add_argument("--namespace", default="default",
                     help="namespace in logged events")
    log.add_argument("--logger-endpoint", default="", metavar="NAME",
                     help="ce-endpoint in logged events (KServe: the component endpoint)")
    log.add_argument("--logger-metadata-header", action="append", default=[],
                     metavar="HEADER", help="a request header to copy into ce-metadata "
                                            "(repeatable; KServe's metadataHeaders)")
    run = p.add_argument_group("execution")
    run.add_argument("--offload", default="auto", choices=["auto", "thread", "inline"],
                     help="where predict runs: auto (inline while it is measured under "
                          "1 ms, else a worker thread), thread, or inline")
    run.add_argument("--predict-threads", type=int, default=2, metavar="N",
                     help="worker threads for predicts run off the event loop")
    run.add_argument("--drain-seconds", type=float, default=30.0, metavar="S",
                     help="on SIGTERM, how long requests in flight may take to finish")
    run.add_argument("--max-body-mb", type=float, default=256.0, metavar="MB",
                     help="largest request body accepted (413 beyond)")
    return p


_Handler = Callable[["Request"], "Response | Awaitable[Response]"]
_DENIED: Response = (
    401, b'{"error": "missing or wrong bearer token (the platform\'s, as KETCH_TOKEN)"}',
    b"application/json", [(b"www-authenticate", b"Bearer")])


def _guarded(handle: _Handler) -> _Handler:
    """``handle`` behind the bearer check of ``KETCH_REPLICA_TOKEN_SHA256`` (and the
    replica credential's digest), or ``handle`` itself when there is no token: the port
    is open to every local process, so with a platform token it must not bypass it."""
    token = os.environ.get("KETCH_REPLICA_TOKEN_SHA256")
    if not token:
        return handle
    token_sha256 = bytes.fromhex(token)
    credential = os.environ.get("KETCH_REPLICA_CREDENTIAL_SHA256")
    credential_sha256 = bytes.fromhex(credential) if credential else None
    sha256 = hashlib.sha256
    same = hmac.compare_digest
    # The last header value found to carry the token. A client's requests (relayed by
    # the front as they came) all carry the same one, so most requests are let in by one
    # constant-time compare with it, no hash (the hash cost about 0.4 us a request).
    accepted = ""

    def guarded(request: Request) -> Response | Awaitable[Response]:
        nonlocal accepted
        header = request.headers.get("authorization")
        if header is None:
            return _DENIED
        if accepted and header.isascii() and same(header, accepted):
            return handle(request)
        scheme, _, offered = header.partition(" ")
        if scheme.lower() == "bearer":
            digest = sha256(offered.strip().encode("latin-1")).digest()
            if same(digest, token_sha256):
                if header.isascii():  # compare_digest takes ASCII strings only
                    accepted = header
                return handle(request)
            # The front's and the controller's own requests: rare, never remembered.
            if credential_sha256 is not None and same(digest, credential_sha256):
                return handle(request)
        return _DENIED

    return guarded


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _bind_unix(path: str) -> socket.socket:
    try:  # a socket left behind by a killed server: replace it, but nothing else
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)  # only this user's router may talk to the replica
    return sock


def _say(message: str) -> None:
    """One progress line on stdout (what ``ketch logs isvc NAME`` shows while loading);
    a failure is the one line on stderr."""
    print(f"modelserver: {message}", flush=True)


def _fail(message: str) -> int:
    print(f"modelserver: {message}", file=sys.stderr, flush=True)
    return EXIT_LOAD_FAILED


def _check_args(args: argparse.Namespace) -> str | None:
    if args.max_batch_size is not None and args.max_batch_size < 1:
        return f"--max-batch-size must be at least 1, got {args.max_batch_size}"
    if args.max_latency is not None and args.max_latency < 0:
        return f"--max-latency must be >= 0 ms, got {args.max_latency:g}"
    if args.batch_timeout is not None and args.batch_timeout <= 0:
        return f"--batch-timeout must be > 0 s, got {args.batch_timeout:g}"
    if args.predict_threads < 1:
        return f"--predict-threads must be at least 1, got {args.predict_threads}"
    return None


async def _serve(args: argparse.Namespace, runtime: Any) -> int:
    from ketch.serving._batcher import (
        DEFAULT_MAX_BATCH_SIZE,
        DEFAULT_MAX_LATENCY_MS,
        DEFAULT_TIMEOUT_S,
        BatchSettings,
    )
    from ketch.serving._dataplane import DataPlane
    from ketch.serving._http import HTTPServer
    from ketch.serving._logger import RequestLogger
    from ketch.serving._metrics import ReplicaMetrics
    from ketch.serving._predict import Predictor
    from ketch.serving._runtimes import CustomRuntime, ModelLoadError
    from ketch.serving._transformer import Transformer

    started = time.monotonic()
    _say(f"loading {args.format} model {args.name!r} from {args.model_dir}")
    try:
        if isinstance(runtime, CustomRuntime):
            await runtime.aload()
        else:
            runtime.load()
        transformer = None
        if args.transformer:
            transformer = Transformer(args.transformer, args.name,
                                      args.transformer_dir or args.model_dir)
            await transformer.load()
    except ModelLoadError as e:
        return _fail(str(e))
    except Exception as e:
        return _fail(f"cannot load model {args.name}: {type(e).__name__}: {e}")
    _say(f"model {args.name!r} loaded in {time.monotonic() - started:.2f}s")

    metrics = ReplicaMetrics(args.name)
    predictor = Predictor(runtime, metrics, mode=args.offload, threads=args.predict_threads)
    if runtime.n_features and not isinstance(runtime, CustomRuntime):
        import numpy as np

        with contextlib.suppress(Exception):  # timing only; a real request reports errors
            predictor.warm_up(np.zeros((1, runtime.n_features)))
    batching = None
    if args.max_batch_size is not None or args.max_latency is not None:
        batching = BatchSettings(
            max_batch_size=args.max_batch_size or DEFAULT_MAX_BATCH_SIZE,
            max_latency_ms=(args.max_latency if args.max_latency is not None
                            else DEFAULT_MAX_LATENCY_MS),
            timeout_s=args.batch_timeout or DEFAULT_TIMEOUT_S)
    logger = None
    if args.logger_url:
        try:
            logger = RequestLogger(args.logger_url, args.logger_mode, metrics,
                                   service=args.service or args.name,
                                   namespace=args.namespace, endpoint=args.logger_endpoint,
                                   metadata_headers=tuple(args.logger_metadata_header))
            logger.start()
        except (ValueError, OSError) as e:
            return _fail(f"--logger-url: {e}")

    plane = DataPlane(runtime, metrics=metrics, predictor=predictor, batching=batching,
                      transformer=transformer, logger=logger)
    # The model and the libraries loaded so far live as long as the process: keep them out
    # of the cyclic collector's full passes, which would otherwise walk them all (pauses
    # of milliseconds in the middle of requests).
    gc.collect()
    gc.freeze()
    server = HTTPServer(_guarded(plane.handle), max_body=int(args.max_body_mb * 1024 * 1024))
    where = args.uds or f"{args.host}:{args.port}"
    # The backend's second door, for fronts on this host (loopback TCP costs them about
    # a tenth of their requests/s). Opened before the port, so it is up whenever the port
    # (what readiness is probed on) is; without it the port alone serves.
    side = None if args.uds else os.environ.get("KETCH_UNIT_UDS") or None
    if side is not None:
        try:
            await server.listen(_bind_unix(side))
        except OSError as e:
            _say(f"not listening on {side} ({e.strerror or e}); TCP only")
            side = None
    try:
        sock = _bind_unix(args.uds) if args.uds else _bind(args.host, args.port)
        await server.listen(sock)
    except OSError as e:
        if side is not None:
            os.unlink(side)
        return _fail(f"cannot listen on {where}: {e.strerror or e}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _say(f"serving {args.name!r} (V1 and V2) on {'unix:' if args.uds else ''}{where}"
         + (f" and unix:{side}" if side else ""))
    if args.uds:
        print(f"KETCH_MODELSERVER_UDS={args.uds}", flush=True)
    elif args.port == 0:
        print(f"KETCH_MODELSERVER_PORT={sock.getsockname()[1]}", flush=True)
    try:
        await stop.wait()
        await server.stop(grace=args.drain_seconds)
    finally:
        for path in (args.uds, side):
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        predictor.close()
        if logger is not None:
            logger.close()
    return 0


def _storage_initializer(uri: str) -> str | None:
    """The model's local path, fetched first where it is remote; None (and the error
    line on stderr) when it cannot be had."""
    from ketch.serving._storage import StorageUriError, fetch_model

    print(f"storage-initializer: resolving storageUri {uri}", flush=True)
    try:
        path = fetch_model(uri)
    except StorageUriError as err:
        print(f"storage-initializer: error: StorageUriError: {err}", file=sys.stderr,
              flush=True)
        return None
    print(f"storage-initializer: model files at {path}", flush=True)
    return str(path)


def _event_loop_runner() -> Any:
    import importlib

    try:  # libuv's loop answers small requests measurably faster where it is installed
        return importlib.import_module("uvloop").run
    except ImportError:
        return asyncio.run


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the model, and serve until stopped.

    Returns:
        The process exit status: 0 after a clean stop, 2 when the model cannot load
        or the options are invalid.
    """
    args = _parser().parse_args(argv)
    problem = _check_args(args)
    if problem:
        return _fail(problem)
    if args.storage_uri is not None:
        located = _storage_initializer(args.storage_uri)
        if located is None:
            return EXIT_STORAGE_FAILED
        args.model_dir = located
    try:
        from ketch.serving._runtimes import ModelLoadError, make_runtime
    except ImportError as e:  # numpy itself is missing
        return _fail(f"the model server needs {e.name}: pip install 'ketch[serving]'")
    try:
        runtime = make_runtime(args.name, args.model_dir, args.format, args.custom)
    except ModelLoadError as e:
        return _fail(str(e))
    status: int = _event_loop_runner()(_serve(args, runtime))
    return status


if __name__ == "__main__":
    sys.exit(main())
