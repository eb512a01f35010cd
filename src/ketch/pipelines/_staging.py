"""Staging a step's artifacts through a remote artifact store, as KFP's launcher does.

When the artifact store is remote (``s3://bucket/prefix``...), artifact URIs in the
executor input, the run's status and the lineage tables are remote URIs, but a step
reads and writes local files (``artifact.path``, ``{{$.inputs.artifacts['x'].path}}``).
KFP maps ``s3://b/k`` to ``/s3/b/k`` and its launcher copies the objects there before
the step and back after it; ketch does the same under a per-attempt *mount root* (in
the unit's own scratch directory) named by ``KETCH_ARTIFACT_MOUNT_ROOT``, so
concurrent steps never share a path.

The step's executor unit itself (see ``_unit``) downloads the inputs, runs the step
(the component function, or the command as a child process in its own process group),
uploads the outputs and then its executor output and output parameter files when the
step exited 0, and only then exits: a control plane that adopts the step after a crash
sees either a running unit (still staging) or an ended one whose outputs are already in
the store (ADR 007).

Nothing here runs when the store is local: artifact URIs are then plain paths, and the
step writes to them directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ketch.pipelines._paths import under
from ketch.pipelines.dsl._artifacts import MOUNT_ROOT_ENV, local_path_for_uri

__all__ = ["MOUNT_ROOT_ENV", "StagingError", "download_inputs", "is_remote",
           "localize_metadata", "preload", "redact", "run_command", "staged",
           "upload_outputs"]

# Environment variables whose values must never reach a log or a status.
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
               "AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY",
               "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN",
               "FSSPEC_S3_SECRET", "FSSPEC_S3_KEY")
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


class StagingError(Exception):
    """An artifact could not be moved between the store and the step's directory; the
    message names the artifact, the URI and the cause (with secrets redacted)."""


def is_remote(uri: str) -> bool:
    """Whether ``uri`` lives in a remote store (anything but a local path or file://)."""
    return "://" in uri and not uri.startswith("file://")


def redact(text: str) -> str:
    """``text`` without credentials: userinfo in URLs and secret env values masked."""
    text = _USERINFO.sub(r"\1***@", text)
    for name in _SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def localize_metadata(executor_input: Mapping[str, Any],
                      mount_root: str) -> tuple[dict[str, Any], list[list[str]]]:
    """The executor input with its executor output and output parameter files (URIs
    under the run's artifact root) mapped to local paths under ``mount_root``, and the
    ``[local, uri]`` pairs that :func:`staged` uploads once the step succeeded."""
    doc = json.loads(json.dumps(executor_input))
    outputs = doc.setdefault("outputs", {})
    pairs: list[list[str]] = []

    def local(uri: str) -> str:
        if not is_remote(uri):
            return uri
        path = local_path_for_uri(uri, mount_root=mount_root)
        pairs.append([path, uri])
        return path

    for entry in (outputs.get("parameters") or {}).values():
        if entry.get("outputFile"):
            entry["outputFile"] = local(str(entry["outputFile"]))
    if outputs.get("outputFile"):
        outputs["outputFile"] = local(str(outputs["outputFile"]))
    for path, _ in pairs:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return doc, pairs


# Storage options prepared by preload() in the warm worker, inherited by every fork.
_WARM_OPTIONS: dict[str, dict[str, Any]] = {}


def preload(uri: str) -> None:
    """Import the filesystem implementation for ``uri`` (s3fs takes about a second) and
    prepare what its first request would build, so that steps forked afterwards find it
    in memory. Creates no filesystem instance, event loop or thread: the process stays
    safe to fork."""
    import fsspec

    protocol = uri.split("://", 1)[0]
    fsspec.get_filesystem_class(protocol)
    warm = _WARMERS.get(protocol)
    if warm is not None and protocol not in _WARM_OPTIONS:
        _WARM_OPTIONS[protocol] = warm()


def _warm_s3() -> dict[str, Any]:
    """An aiobotocore session with S3's service model and endpoint data already parsed:
    a fresh one costs a step about 250 ms before its first request (measured against
    moto). Credentials are still resolved in the step, from its own environment."""
    from aiobotocore.session import AioSession  # type: ignore[import-untyped]

    session = AioSession()
    loader = session.get_component("data_loader")
    loader.load_service_model("s3", "service-2")
    loader.load_service_model("s3", "endpoint-rule-set-1")
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        loader.load_data(name)
    return {"session": session}


_WARMERS: dict[str, Callable[[], dict[str, Any]]] = {"s3": _warm_s3, "s3a": _warm_s3}


def _fs(uri: str) -> tuple[Any, str]:
    import fsspec

    options = _WARM_OPTIONS.get(uri.split("://", 1)[0], {})
    fs, path = fsspec.core.url_to_fs(uri, **options)
    return fs, str(path)


def _artifacts(section: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, art) for name, entry in (section.get("artifacts") or {}).items()
            for art in (entry or {}).get("artifacts") or []]


def download_inputs(executor_input: Mapping[str, Any], mount_root: str) -> None:
    """Copy every remote input artifact to its local path under ``mount_root``.

    An artifact with no object behind it (a ``Metrics`` whose values are all metadata)
    is not an error, as in KFP: its local path simply does not exist.

    Raises:
        StagingError: naming the input, its URI and why the copy failed.
    """
    for name, art in _artifacts(executor_input.get("inputs") or {}):
        uri = str(art.get("uri") or "")
        if not is_remote(uri):
            continue
        local = local_path_for_uri(uri, mount_root=mount_root)
        try:
            _download(uri, local)
        except Exception as err:  # any backend's error: reported, never a traceback
            raise StagingError(redact(f"could not download input artifact {name!r} from "
                                      f"{uri}: {_describe(err)}")) from None


def _download(uri: str, local: str) -> None:
    fs, path = _fs(uri)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return
    if info.get("type") != "directory":
        fs.get_file(path, local)
        return
    os.makedirs(local, exist_ok=True)
    prefix = path.rstrip("/") + "/"
    remote = [str(p) for p in fs.find(path) if str(p).startswith(prefix)]
    # A listed key is the store's, not ours: one with '..' must not land outside.
    targets = [under(local, *p[len(prefix):].split("/"), where=f"artifact {uri}")
               for p in remote]
    for target in targets:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    if remote:
        fs.get(remote, targets)  # lists: the backend copies them concurrently


def prepare_outputs(executor_input: Mapping[str, Any], mount_root: str) -> None:
    """Create the parent directory of every remote output artifact's local path, as KFP's
    launcher does, so a command can write ``{{$.outputs.artifacts['y'].path}}`` at once."""
    for _, art in _artifacts(executor_input.get("outputs") or {}):
        uri = str(art.get("uri") or "")
        if is_remote(uri):
            os.makedirs(os.path.dirname(local_path_for_uri(uri, mount_root=mount_root)),
                        exist_ok=True)


def upload_outputs(executor_input: Mapping[str, Any], mount_root: str) -> None:
    """Copy every output artifact the step wrote (a file or a directory) to its URI.

    The URI and local path are the ones the step reported in its executor output when
    it wrote one (a step may move an artifact, ``set_path``), else the executor input's.
    An output with nothing at its local path (metadata only) is skipped, as in KFP.

    Raises:
        StagingError: naming the output, its URI and why the upload failed.
    """
    outputs = executor_input.get("outputs") or {}
    reported = _executor_output(str(outputs.get("outputFile") or ""))
    for name, entry in (outputs.get("artifacts") or {}).items():
        planned = (entry or {}).get("artifacts") or []
        given = ((reported.get(name) or {}).get("artifacts") or []) or planned
        for index, art in enumerate(given):
            fallback = planned[min(index, len(planned) - 1)] if planned else {}
            uri = str(art.get("uri") or fallback.get("uri") or "")
            if not is_remote(uri):
                continue
            local = str(art.get("custom_path") or "") or local_path_for_uri(
                uri, mount_root=mount_root)
            if not os.path.exists(local):
                continue
            try:
                _upload(local, uri)
            except Exception as err:  # any backend's error: reported, never a traceback
                raise StagingError(redact(f"could not upload output artifact {name!r} to "
                                          f"{uri}: {_describe(err)}")) from None


def _executor_output(path: str) -> dict[str, Any]:
    """The artifacts section of the step's executor output, if it wrote a valid one (a
    broken file is reported when the engine collects the outputs, not here)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return {}
    found = doc.get("artifacts") if isinstance(doc, dict) else None
    return found if isinstance(found, dict) else {}


def _upload(local: str, uri: str) -> None:
    fs, path = _fs(uri)
    if not os.path.isdir(local):
        fs.put_file(local, path)
        return
    sources: list[str] = []
    targets: list[str] = []
    for directory, _, files in os.walk(local):
        for file in files:
            source = os.path.join(directory, file)
            sources.append(source)
            targets.append(path.rstrip("/") + "/" + os.path.relpath(source, local)
                           .replace(os.sep, "/"))
    if sources:
        fs.put(sources, targets)  # lists: the backend copies them concurrently


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if type(err).__name__ in text else f"{type(err).__name__}: {text}"


def run_command(argv: list[str]) -> int:
    """Run an argv step as a child in this process group and return its status as a
    shell reports it (128 + N when killed by signal N), as ADR 002's wrapper does."""
    try:
        proc = subprocess.Popen(argv)
    except OSError as err:
        print(f"ketch: cannot run {argv[0] if argv else ''!r}: {err.strerror or err}",
              file=sys.stderr)
        return 127
    rc = proc.wait()
    return 128 - rc if rc < 0 else rc


def staged(staging: Mapping[str, Any], run: Callable[[], int]) -> int:
    """Download the step's inputs, ``run()`` it, upload its outputs if it exited 0, and
    return its exit status. Staging failures are one clear line on stderr (the step's
    log, whose tail becomes the task's message) and status 1. The local copies go when
    the step ends, as a pod's volume does: the store holds the artifacts, and a dataset
    read by several steps must not pile up on this disk once per step."""
    mount_root = str(staging["mountRoot"])
    try:
        return _staged(staging["executorInput"], mount_root, run,
                       [list(p) for p in staging.get("metadata") or []])
    finally:
        shutil.rmtree(mount_root, ignore_errors=True)


def _staged(executor_input: Mapping[str, Any], mount_root: str,
            run: Callable[[], int], metadata: list[list[str]]) -> int:
    try:
        download_inputs(executor_input, mount_root)
        prepare_outputs(executor_input, mount_root)
    except StagingError as err:
        print(f"ketch: {err}", file=sys.stderr)
        return 1
    try:
        rc = run()
    except SystemExit as stop:  # sys.exit(0) in a component still uploads its outputs
        rc = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    if rc != 0:
        return rc
    sys.stdout.flush()
    try:
        upload_outputs(executor_input, mount_root)
        _upload_metadata(metadata)
    except StagingError as err:
        print(f"ketch: {err}", file=sys.stderr)
        return 1
    return 0


def _upload_metadata(pairs: list[list[str]]) -> None:
    """The executor output and parameter files, last: the control plane reads them
    only from a unit that exited 0, when every artifact is in the store already."""
    for local, uri in pairs:
        if not os.path.exists(local):
            continue
        try:
            _upload(local, uri)
        except Exception as err:  # any backend's error: reported, never a traceback
            raise StagingError(redact(f"could not upload the step's output file to {uri}: "
                                      f"{_describe(err)}")) from None
