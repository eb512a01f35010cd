"""The official ``model-registry`` client's ``upload_artifact_and_register_model``
against a real ``ketch up`` whose artifact store is an S3 URI.

Two things are proved end to end:

* the upstream client (0.3.18, ``model-registry[boto3]``) uploads a model
  directory into the bucket that backs ketch's artifact store and registers it
  in ketch's registry; ketch's own ``ArtifactStore`` reads the same bytes back
  and ``resolve_model_uri`` returns the registered URI;
* ketch's artifact store works on ``s3://``: a Job's log is persisted there when
  the Job ends, and ``ketch logs`` reads it back from S3 once the local scratch
  copy is gone.

There is no real S3 here, so the S3 endpoint is a fake: moto's standalone
server (``moto.server.ThreadedMotoServer``) on a free 127.0.0.1 port, with
dummy credentials. Everything else is real: ``ketch up`` runs as a subprocess,
reaching the fake through botocore's standard ``AWS_ENDPOINT_URL`` variable (as
s3fs/aiobotocore would reach MinIO or any S3-compatible store), and the upstream
client talks to it with boto3.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ServerProcess, free_port, start_server, wait_for

pytestmark = pytest.mark.slow

BUCKET = "ketch-artifacts"
ROOT_URI = f"s3://{BUCKET}/ketch"
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class FakeS3:
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        """What s3fs/botocore need to reach the fake, for any process."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION, **CREDENTIALS}

    def client(self) -> object:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
        return [obj["Key"] for obj in listing.get("Contents", [])]




@pytest.fixture(scope="module")
def fake_s3() -> Iterator[FakeS3]:
    """moto's S3 server (a stand-in: no real S3 here) with the bucket created."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = FakeS3(f"http://127.0.0.1:{port}")
        s3.client().create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        yield s3
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_server(fake_s3: FakeS3,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``ketch up`` with its artifact store on the (fake) S3 bucket."""
    server = start_server(tmp_path_factory.mktemp("s3home"), command="up",
                          KETCH_ARTIFACTS_URI=ROOT_URI, **fake_s3.env)
    yield server
    server.kill(15)


@pytest.fixture
def s3_env(fake_s3: FakeS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same S3 settings in this process, for ketch's ArtifactStore here."""
    for key, value in fake_s3.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_upload_artifact_and_register_model_into_artifact_store(
        s3_server: ServerProcess, fake_s3: FakeS3, s3_env: None, tmp_path: Path) -> None:
    from model_registry import ModelRegistry
    from model_registry.utils import S3Params

    from ketch.core.artifacts import ArtifactStore
    from ketch.registry import client as ketch_registry

    model_dir = tmp_path / "iris"
    (model_dir / "sub").mkdir(parents=True)
    weights = bytes(range(256)) * 4
    (model_dir / "model.joblib").write_bytes(weights)
    (model_dir / "sub" / "README.md").write_text("# iris\n")

    host, port = s3_server.url.rsplit(":", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "User access token is missing" on is_secure=False
        mr = ModelRegistry(host, int(port), author="alice", is_secure=False)
    prefix = "ketch/models/iris/v1"
    rm = mr.upload_artifact_and_register_model(
        "iris", str(model_dir), model_format_name="sklearn", model_format_version="1",
        version="v1", upload_params=S3Params(
            bucket_name=BUCKET, s3_prefix=prefix, endpoint_url=fake_s3.endpoint,
            access_key_id="testing", secret_access_key="testing", region=REGION))
    assert rm.name == "iris" and rm.id and rm.owner == "alice"

    # The upload went into the bucket under the prefix, nowhere else.
    assert sorted(fake_s3.keys(prefix)) == [f"{prefix}/model.joblib", f"{prefix}/sub/README.md"]

    art = mr.get_model_artifact("iris", "v1")
    assert art is not None
    assert art.uri.startswith(f"s3://{BUCKET}/{prefix}"), art.uri
    assert f"endpoint={fake_s3.endpoint}" in art.uri.replace("%3A", ":").replace("%2F", "/")
    assert art.model_format_name == "sklearn" and art.model_format_version == "1"
    mv = mr.get_model_version("iris", "v1")
    assert mv is not None and mv.author == "alice"

    # ketch's own artifact store, rooted at the server's KETCH_ARTIFACTS_URI,
    # sees the same objects under its keys.
    store = ArtifactStore(ROOT_URI)
    assert store.exists("models/iris/v1/model.joblib")
    assert store.read_bytes("models/iris/v1/model.joblib") == weights
    assert store.read_bytes("models/iris/v1/sub/README.md") == b"# iris\n"
    assert store.uri("models/iris/v1/model.joblib") == f"{ROOT_URI}/models/iris/v1/model.joblib"

    # ketch's SDK resolves the registry reference to the uri the client registered.
    with ketch_registry.ModelRegistry(s3_server.url) as registry:
        resolved = ketch_registry.resolve_model_uri("model-registry://iris/v1", registry)
    assert resolved == art.uri


def test_job_log_persisted_to_s3(s3_server: ServerProcess, fake_s3: FakeS3,
                                 s3_env: None) -> None:
    from ketch import Client
    from ketch.core.artifacts import ArtifactStore

    with Client(s3_server.url) as client:
        job = client.create({
            "apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "s3-log"},
            "spec": {"command": [sys.executable, "-c", "print('log to s3')"]}})
        done = client.wait("job", "s3-log", timeout=60)
        assert done.status["phase"] == "Succeeded", done.status
        log_uri = str(done.status["logUri"])
        assert log_uri.startswith(f"{ROOT_URI}/logs/"), log_uri

        # The Job is Succeeded before its scratch directory is removed: wait for
        # that, so the log below can only come from S3.
        scratch = s3_server.home / "runs" / f"{job.metadata.uid}-1"
        wait_for(lambda: not scratch.exists(), timeout=30, message=f"{scratch} removed")

        text = b"".join(client.logs("job", "s3-log")).decode()
        assert text.strip() == "log to s3"

    key = log_uri[len(ROOT_URI) + 1:]
    assert f"ketch/{key}" in fake_s3.keys("ketch/logs/")
    assert ArtifactStore(ROOT_URI).read_bytes(key).decode().strip() == "log to s3"
