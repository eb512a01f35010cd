"""The model server process: ``python -m ketch.serving.modelserver``.

Usage::

    python -m ketch.serving.modelserver --name NAME --model-dir DIR_OR_FILE \\
        --format {sklearn,xgboost,lightgbm,onnx,pytorch,custom} [--port PORT] \\
        [--host 127.0.0.1] [--uds PATH] [--custom module:Class]

The model is loaded before the port opens: when it cannot load, the process exits with
status 2 and one ``modelserver: ...`` line on stderr. Once listening, ``GET
/v2/health/ready`` answers 200; with ``--port 0`` the process prints one line
``KETCH_MODELSERVER_PORT=<port>`` to stdout. With ``--uds PATH`` it listens on a unix
domain socket instead of TCP (for a router in front of replicas on the same machine) and
prints ``KETCH_MODELSERVER_UDS=<path>`` once listening. SIGTERM or SIGINT stops it gracefully
(requests in flight finish) and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import sys
from typing import Any

__all__ = ["main"]

EXIT_LOAD_FAILED = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ketch.serving.modelserver",
                                description="Serve one model over KServe's V1 and V2 "
                                            "REST protocols.")
    p.add_argument("--name", required=True, help="model name in the URL paths")
    p.add_argument("--model-dir", required=True,
                   help="the model file, or a directory holding it")
    p.add_argument("--format", required=True,
                   help="sklearn, xgboost, lightgbm, onnx, pytorch or custom")
    p.add_argument("--port", type=int, default=8080,
                   help="port to listen on; 0 picks a free one and prints it")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--uds", default=None, metavar="PATH",
                   help="listen on this unix domain socket instead of TCP")
    p.add_argument("--custom", default=None, metavar="MODULE:CLASS",
                   help="a user model class (with --format custom)")
    return p


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _bind_unix(path: str) -> socket.socket:
    import os
    import stat

    try:  # a socket left behind by a killed server: replace it, but nothing else
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)  # only this user's router may talk to the replica
    sock.set_inheritable(True)
    return sock


async def _load(runtime: Any) -> None:
    from ketch.serving._runtimes import CustomRuntime

    if isinstance(runtime, CustomRuntime):
        await runtime.aload()
    else:
        runtime.load()


def _fail(message: str) -> int:
    print(f"modelserver: {message}", file=sys.stderr, flush=True)
    return EXIT_LOAD_FAILED


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the model, and serve until stopped.

    Returns:
        The process exit status: 0 after a clean stop, 2 when the model cannot load.
    """
    args = _parser().parse_args(argv)
    try:
        from ketch.serving._runtimes import ModelLoadError, make_runtime
    except ImportError as e:  # numpy itself is missing
        return _fail(f"the model server needs {e.name}: pip install 'ketch[serving]'")
    try:
        runtime = make_runtime(args.name, args.model_dir, args.format, args.custom)
        asyncio.run(_load(runtime))
    except ModelLoadError as e:
        return _fail(str(e))
    except Exception as e:
        return _fail(f"cannot load model {args.name}: {type(e).__name__}: {e}")

    import uvicorn

    from ketch.serving._dataplane import DataPlane

    where = args.uds or f"{args.host}:{args.port}"
    try:
        sock = _bind_unix(args.uds) if args.uds else _bind(args.host, args.port)
    except OSError as e:
        return _fail(f"cannot listen on {where}: {e.strerror or e}")
    port = 0 if args.uds else sock.getsockname()[1]
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    config = uvicorn.Config(DataPlane(runtime), host=args.host, port=port,
                            log_level="warning", access_log=False, http=http,
                            lifespan="off")

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # A requested stop drained cleanly: exit 0 rather than re-raising the signal.
            self._captured_signals.clear()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.should_exit:
                return
            if args.uds:
                print(f"KETCH_MODELSERVER_UDS={args.uds}", flush=True)
            elif args.port == 0:
                print(f"KETCH_MODELSERVER_PORT={port}", flush=True)

    server = _Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        if args.uds:
            import contextlib
            import os

            with contextlib.suppress(OSError):
                os.unlink(args.uds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
