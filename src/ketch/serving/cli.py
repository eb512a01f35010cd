"""``ketch serve MODEL_URI --name N``: an InferenceService in one command.

Imports nothing heavy at module level, so ``ketch --help`` stays fast.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

__all__ = ["serve"]

_FORMATS = ("sklearn", "xgboost", "lightgbm", "onnx", "pytorch")


def serve(model_uri: Annotated[str, typer.Argument(
              help="file:// or any fsspec URI, a path, or model-registry://NAME/VERSION.")],
          name: Annotated[str | None, typer.Option(
              help="Service name (default: from the URI).")] = None,
          model_format: Annotated[str | None, typer.Option(
              "--format", help="sklearn, xgboost, lightgbm, onnx or pytorch "
                               "(default: the registry's modelFormatName).")] = None,
          namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
          wait: Annotated[bool, typer.Option(help="Wait until it is Ready.")] = True,
          timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 120.0) -> None:
    """Serve a model: create (or update) an InferenceService and print its URL."""
    from ketch import Client
    from ketch.core.errors import KetchError

    if name is None:
        stem = model_uri.rstrip("/").split("://")[-1]
        parts = [p for p in stem.split("/") if p]
        base = parts[-2] if model_uri.startswith("model-registry://") and len(parts) > 1 \
            else (parts[-1] if parts else "model")
        name = re.sub(r"[^a-z0-9-]+", "-", base.lower().rsplit(".", 1)[0]).strip("-") or "model"
    try:
        if model_uri.startswith("model-registry://"):
            registered, warning = _from_registry(model_uri, namespace)
            model_format = model_format or registered
            if warning:
                typer.echo(f"warning: {warning}", err=True)
        elif model_format is None:
            raise _fail("--format is required unless the URI is model-registry://NAME/VERSION")
        if model_format not in _FORMATS:
            raise _fail(f"--format: say one of {', '.join(_FORMATS)} (got {model_format!r})")
        doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
               "metadata": {"name": name, "namespace": namespace},
               "spec": {"predictor": {"model": {"modelFormat": {"name": model_format},
                                                "storageUri": model_uri}}}}
        with Client(namespace=namespace) as client:
            _, action = client.apply(doc)[0]
            typer.echo(f"inferenceservice.serving.kserve.io/{name} {action}")
            if wait:
                try:
                    ready = client.wait("isvc", name, condition="Ready", timeout=timeout)
                except KetchError as err:  # stalled: the service says why, no waiting
                    raise _fail(f"{err.message}; see `ketch describe isvc {name}` and "
                                f"`ketch logs isvc {name}`") from None
                url = ready.status.get("url")
                typer.echo(f"{name} is serving at {url}")
                typer.echo(f"  V2: {url}/v2/models/{name}/infer    V1: {url}/v1/models/{name}"
                           ":predict")
    except TimeoutError as err:
        raise _fail(f"{err}; see `ketch describe isvc {name}` and `ketch logs isvc {name}`") \
            from None
    except KetchError as err:
        raise _fail(err.message) from None


def _from_registry(uri: str, namespace: str) -> tuple[str | None, str]:
    """The registered model format, and a warning when the model or the version is
    ARCHIVED (it is served all the same, as Kubeflow's registry allows)."""
    from ketch.registry.client import ModelRegistry
    from ketch.registry.uri import parse_model_uri

    name, version = parse_model_uri(uri)
    with ModelRegistry(namespace=namespace) as reg:
        model = reg.get_registered_model(name) or {}
        mv = reg.get_model_version(name, version) or {}
        if not model:
            raise _fail(f"{uri}: no registered model {name!r} in namespace {namespace!r}")
        if not mv:
            raise _fail(f"{uri}: model {name!r} has no version {version!r}")
        artifact = reg.get_model_artifact(name, version)
    fmt = (artifact or {}).get("modelFormatName")
    warning = ""
    if model.get("state") == "ARCHIVED":
        warning = f"{uri}: model {name!r} is ARCHIVED"
    elif mv.get("state") == "ARCHIVED":
        warning = f"{uri}: version {version!r} of model {name!r} is ARCHIVED"
    return (str(fmt) if fmt else None), warning


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def service_units() -> list[str]:
    """The executor units (fronts and replicas) of every InferenceService, read from the
    running server for this ``KETCH_HOME`` (none when no server answers: never starts
    one)."""
    from ketch import Client
    from ketch.core.errors import KetchError

    try:
        with Client(autostart=False) as client:
            services = client.list("isvc", all_namespaces=True).items
    except KetchError:
        return []
    units: list[str] = []
    for obj in services:
        front = obj.status.get("front") or {}
        if front.get("unitId"):
            units.append(str(front["unitId"]))
        units += [str(rep["unitId"]) for rev in obj.status.get("revisions") or []
                  for rep in rev.get("replicas") or [] if rep.get("unitId")]
    return units


def stop_units(unit_ids: list[str]) -> int:
    """Stop these units (the control plane is down, so nothing restarts them); the
    resources stay, and the next server starts their processes again. Returns how many
    were running."""
    from ketch.core.artifacts import ArtifactStore
    from ketch.core.config import Settings
    from ketch.core.executors import UnitState
    from ketch.core.runtime import make_executor

    settings = Settings.from_env()
    executor = make_executor(settings, ArtifactStore(settings.artifacts_uri))
    stopped = 0
    try:
        for unit_id in unit_ids:
            handle = executor.lookup(unit_id)
            if handle is None or executor.poll(handle).state is not UnitState.RUNNING:
                continue
            executor.cancel(handle, grace_seconds=3.0)
            stopped += 1
    finally:
        executor.close()
    return stopped
