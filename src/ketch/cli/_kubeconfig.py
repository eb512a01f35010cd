"""``ketch kubeconfig``: a kubeconfig that points ``kubectl`` (and any Kubernetes
client) at this ketch server, with its bearer token when it has one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ketch.core.config import Settings
from ketch.core.rest import find_server

__all__ = ["kubeconfig", "plain_http_warning", "run", "write_kubeconfig"]

_NAME = "ketch"


def kubeconfig(url: str, namespace: str, token: str | None) -> dict[str, Any]:
    """One cluster, one user, one context (``ketch``) whose namespace is ``namespace``."""
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": _NAME, "cluster": {"server": url}}],
        "users": [{"name": _NAME, "user": {"token": token} if token else {}}],
        "contexts": [{"name": _NAME, "context": {"cluster": _NAME, "user": _NAME,
                                                 "namespace": namespace}}],
        "current-context": _NAME,
    }


def write_kubeconfig(path: Path, url: str, namespace: str, token: str | None) -> None:
    """Write the file readable by its owner only (it may hold the token), replacing
    any file there in one step, so no reader sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(url, namespace, token), sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_path(settings: Settings) -> Path:
    return settings.home / "kubeconfig"


def plain_http_warning(url: str, token: str | None) -> str | None:
    """What to tell the user when kubectl will not send the token: client-go applies a
    kubeconfig user's credentials (token, exec plugin, client certificate) only to
    https:// servers (clientcmd's ClientConfig, ``IsConfigTransportTLS``)."""
    if token and url.startswith("http://"):
        return ("warning: this server requires a bearer token, but kubectl sends "
                "credentials only to https:// servers, so its requests to this http:// "
                "URL will be refused (401). Serve ketch behind TLS and pass its https URL "
                "with --server, or run it on loopback without KETCH_TOKEN.")
    return None


def run(output: str | None, namespace: str,
        server: str | None) -> tuple[Path, str, str | None]:
    """Write the kubeconfig for ``server`` (else this KETCH_HOST or KETCH_HOME's server,
    started if none runs, as every verb does); return its path, URL and a warning."""
    settings = Settings.from_env()
    if server:
        url, token = server.rstrip("/"), settings.token
        if "://" not in url:
            url = f"http://{url}"
    else:
        endpoint = find_server(settings)
        url, token = endpoint.url, endpoint.token or settings.token
    path = Path(output).expanduser() if output else default_path(settings)
    write_kubeconfig(path, url, namespace, token)
    return path, url, plain_http_warning(url, token)
