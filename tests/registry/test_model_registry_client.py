"""The official ``model-registry`` client (0.3.18 from PyPI) against a real
``ketch up``, on SQLite and on PostgreSQL."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ServerProcess, backend_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def registry_server(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = backend_server(request, tmp_path_factory, "registry")
    yield server
    server.kill(15)


@pytest.fixture
def registry(registry_server: ServerProcess) -> object:
    from model_registry import ModelRegistry

    host, port = registry_server.url.rsplit(":", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "User access token is missing" on is_secure=False
        return ModelRegistry(host, int(port), author="alice", is_secure=False)


def test_register_get_update_archive(registry: object, tmp_path: Path) -> None:
    from model_registry.types import ModelVersionState, RegisteredModelState

    mr: object = registry
    model_file = tmp_path / "model.joblib"
    model_file.write_bytes(b"not really a model")
    rm = mr.register_model(  # type: ignore[attr-defined]
        "iris-classifier", model_file.as_uri(), model_format_name="sklearn",
        model_format_version="1", version="v1", version_description="first try",
        metadata={"accuracy": 0.97, "framework": "sklearn", "epochs": 10, "tuned": True},
        storage_path="models/iris", model_source_kind="job", model_source_name="train-iris")
    assert rm.name == "iris-classifier" and rm.id and rm.owner == "alice"

    got = mr.get_registered_model("iris-classifier")  # type: ignore[attr-defined]
    assert got.id == rm.id and got.state == RegisteredModelState.LIVE
    assert mr.get_registered_model("no-such-model") is None  # type: ignore[attr-defined]

    mv = mr.get_model_version("iris-classifier", "v1")  # type: ignore[attr-defined]
    assert mv.name == "v1" and mv.author == "alice" and mv.description == "first try"
    assert mv.registered_model_id == rm.id
    assert mv.custom_properties == {"accuracy": 0.97, "framework": "sklearn", "epochs": 10,
                                    "tuned": True}
    assert mr.get_model_version("iris-classifier", "v9") is None  # type: ignore[attr-defined]

    art = mr.get_model_artifact("iris-classifier", "v1")  # type: ignore[attr-defined]
    assert art.uri == model_file.as_uri()
    assert art.model_format_name == "sklearn" and art.model_format_version == "1"
    assert art.storage_path == "models/iris"
    assert art.model_source_kind == "job" and art.model_source_name == "train-iris"

    # A second version; the same version again is refused by the client's own check.
    mr.register_model("iris-classifier", "file:///models/v2", model_format_name="sklearn",  # type: ignore[attr-defined]
                      model_format_version="1", version="v2")
    from model_registry.exceptions import StoreError

    with pytest.raises(StoreError):
        mr.register_model("iris-classifier", "file:///x", model_format_name="sklearn",  # type: ignore[attr-defined]
                          model_format_version="1", version="v1")
    versions = [v.name for v in mr.get_model_versions("iris-classifier")]  # type: ignore[attr-defined]
    assert versions == ["v1", "v2"]

    # Updates: description on the model, archive a version, change an artifact.
    got.description = "classifies irises"
    mr.update(got)  # type: ignore[attr-defined]
    assert mr.get_registered_model("iris-classifier").description == "classifies irises"  # type: ignore[attr-defined]
    mv.state = ModelVersionState.ARCHIVED
    mv.custom_properties = {"accuracy": 0.5}
    mr.update(mv)  # type: ignore[attr-defined]
    again = mr.get_model_version("iris-classifier", "v1")  # type: ignore[attr-defined]
    assert again.state == ModelVersionState.ARCHIVED
    assert again.custom_properties == {"accuracy": 0.5}
    assert int(again.last_update_time_since_epoch) >= int(mv.create_time_since_epoch)
    art.uri = "s3://bucket/iris/v1"
    mr.update(art)  # type: ignore[attr-defined]
    assert mr.get_model_artifact("iris-classifier", "v1").uri == "s3://bucket/iris/v1"  # type: ignore[attr-defined]

    got = mr.get_registered_model("iris-classifier")  # type: ignore[attr-defined]
    got.state = RegisteredModelState.ARCHIVED
    mr.update(got)  # type: ignore[attr-defined]
    assert mr.get_registered_model("iris-classifier").state == RegisteredModelState.ARCHIVED  # type: ignore[attr-defined]


def test_pager_iterates_every_model_once(registry: object) -> None:
    mr: object = registry
    names = [f"pager-model-{i}" for i in range(7)]
    for name in names:
        mr.register_model(name, f"file:///m/{name}", model_format_name="onnx",  # type: ignore[attr-defined]
                          model_format_version="1", version="v1")
    seen = [m.name for m in mr.get_registered_models().page_size(3)]  # type: ignore[attr-defined]
    ours = [n for n in seen if n.startswith("pager-model-")]
    assert ours == names
    assert len(seen) == len(set(seen))
    newest_first = [m.name for m in
                    mr.get_registered_models().order_by_creation_time().descending().page_size(2)]  # type: ignore[attr-defined]
    assert [n for n in newest_first if n.startswith("pager-model-")] == names[::-1]
