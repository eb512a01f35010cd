"""``client.pipelines``, ``client.registry``, ``client.serving``, ``client.jobs``: the
components' facades on ``ketch.Client``, against a real server; and the kfp.Client-shaped
calls still answered by the client itself (as documented), by delegation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess
from ketch import Client
from ketch.core.errors import KetchError, NotFoundError
from ketch.jobs.client import JobsClient
from ketch.pipelines.client import PipelinesClient
from ketch.registry.client import ModelRegistry
from ketch.serving.client import ServingClient
from ketch.tuning.client import TuningClient


def test_each_component_contributes_its_facade(client: Client) -> None:
    assert isinstance(client.pipelines, PipelinesClient)
    assert isinstance(client.registry, ModelRegistry)
    assert isinstance(client.serving, ServingClient)
    assert isinstance(client.jobs, JobsClient)
    assert isinstance(client.tuning, TuningClient)
    assert client.jobs is client.jobs  # built once, on first use
    with pytest.raises(AttributeError, match=r"no attribute 'training' \(component facades "
                                             r"installed: jobs, pipelines, registry, serving, "
                                             r"tuning\)"):
        _ = client.training  # type: ignore[attr-defined]


def test_jobs_facade_runs_a_job_to_completion(client: Client) -> None:
    client.jobs.submit("facade-echo", ["python", "-c", "print('from the facade')"])
    done = client.jobs.wait("facade-echo", timeout=60)
    assert done.status["phase"] == "Succeeded"
    assert b"from the facade" in b"".join(client.jobs.logs("facade-echo"))
    assert [j.name for j in client.jobs.list().items] == ["facade-echo"]
    with pytest.raises(KetchError, match="command"):
        client.jobs.submit("neither")
    client.jobs.delete("facade-echo")


def test_jobs_facade_surfaces_a_failed_job_at_once(client: Client) -> None:
    client.jobs.submit("facade-fails", ["python", "-c", "raise SystemExit(3)"])
    with pytest.raises(KetchError, match="ended Failed"):
        client.jobs.wait("facade-fails", timeout=60)


def test_registry_facade_shares_the_clients_connection(client: Client) -> None:
    registry = client.registry
    assert registry.url == client.url and registry.namespace == client.namespace
    assert registry.get_registered_model("nothing-here") is None
    registry.register_model("iris", "file:///tmp/iris.joblib", model_format_name="sklearn",
                            version="v1")
    assert registry.get_model_version("iris", "v1") is not None


def test_serving_facade_reads_and_refuses_by_name(client: Client) -> None:
    assert client.serving.list().items == []
    with pytest.raises(NotFoundError):
        client.serving.get("absent")
    with pytest.raises(NotFoundError):
        client.serving.url("absent")


def test_kfp_shaped_calls_on_the_client_delegate_to_the_pipelines_facade(
        client: Client) -> None:
    created = client.create_experiment("delegated", description="via the client")
    assert created.name == "delegated"
    assert client.get_experiment(experiment_name="delegated").name == "delegated"
    assert [e.name for e in client.list_experiments()] == [
        e.name for e in client.pipelines.list_experiments()] == ["delegated"]
    assert list(client.list_runs()) == list(client.pipelines.list_runs()) == []


def test_the_facade_sends_the_clients_token(server_factory: object, tmp_path: Path) -> None:
    """A server with a token: the registry facade is authorised by the client's token,
    and a client with another is refused by the facade's calls too."""
    server: ServerProcess = server_factory(  # type: ignore[operator]
        tmp_path / "home", command="server", KETCH_TOKEN="s3cret-token")
    with Client(server.url, token="s3cret-token") as good:
        assert good.registry.get_registered_model("none") is None
    with Client(server.url, token="wrong") as bad, pytest.raises(KetchError):
        bad.registry.get_registered_model("none")
    assert httpx.get(f"{server.url}/api/model_registry/v1/registered_models").status_code == 401
    # A token with bytes no ASCII token has is a wrong token (401), never a server error.
    odd = httpx.get(f"{server.url}/api/ketch/kinds",
                    headers={"authorization": "Bearer s3cret-t\u00f6ken".encode("latin-1")})
    assert odd.status_code == 401 and odd.json()["reason"] == "Unauthorized"
