"""Pipeline artifacts on a remote artifact store, staged as KFP's launcher stages them.

Fast tests drive the staging layer (``ketch.pipelines._staging``) against fsspec's real
``memory://`` filesystem: URIs map to local paths under a step's mount root, inputs
(files and directories) are downloaded there, outputs are uploaded back, a failed
transfer names the artifact and URI and never a credential.

Slow tests run a real ``ketch up`` whose ``KETCH_ARTIFACTS_URI`` is ``s3://...``. There
is no S3 here, so the endpoint is a fake: moto's standalone server
(``moto.server.ThreadedMotoServer``) on a free 127.0.0.1 port, reached through
botocore's standard ``AWS_ENDPOINT_URL`` as s3fs would reach MinIO. Everything else is
real: the server, its warm worker forking the steps, s3fs in the steps, boto3 listing
the bucket, the lineage API.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from conftest import ServerProcess, free_port, start_server, wait_for
from ketch.pipelines import _staging
from ketch.pipelines._inputs import resolve_placeholders
from ketch.pipelines.dsl._artifacts import (
    MOUNT_ROOT_ENV,
    Dataset,
    local_path_for_uri,
    uri_for_local_path,
)

# -- the staging layer, on fsspec's memory filesystem ------------------------------------


def _executor_input(tmp_path: Path, inputs: dict[str, str],
                    outputs: dict[str, str]) -> dict[str, Any]:
    def arts(uri: str) -> dict[str, Any]:
        return {"artifacts": [{"name": "", "uri": uri, "metadata": {},
                               "type": {"schemaTitle": "system.Artifact"}}]}

    return {"inputs": {"parameterValues": {},
                       "artifacts": {k: arts(v) for k, v in inputs.items()}},
            "outputs": {"parameters": {}, "artifacts": {k: arts(v) for k, v in outputs.items()},
                        "outputFile": str(tmp_path / "executor_output.json")}}


@pytest.fixture
def memory_root() -> Iterator[str]:
    fs = fsspec.filesystem("memory")
    root = "memory://staging-test"
    yield root
    if fs.exists("/staging-test"):
        fs.rm("/staging-test", recursive=True)


def test_remote_uris_map_under_the_mount_root(monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_path_for_uri("s3://b/run/t/model", mount_root="/t/mnt") == \
        "/t/mnt/s3/b/run/t/model"
    assert local_path_for_uri("gs://b/x", mount_root="/t/mnt") == "/t/mnt/gcs/b/x"
    assert local_path_for_uri("memory://b/x", mount_root="/t/mnt") == "/t/mnt/memory/b/x"
    assert local_path_for_uri("/home/u/artifacts/x", mount_root="/t/mnt") == \
        "/home/u/artifacts/x"
    assert uri_for_local_path("/t/mnt/s3/b/k", mount_root="/t/mnt") == "s3://b/k"
    assert uri_for_local_path("/t/mnt/memory/b/k", mount_root="/t/mnt") == "memory://b/k"
    assert uri_for_local_path("/t/mnt/loose", mount_root="/t/mnt") == "/t/mnt/loose"
    assert uri_for_local_path("/elsewhere/s3/b/k", mount_root="/t/mnt") == "/elsewhere/s3/b/k"
    # No mount root: kfp's own mount points, as on a cluster.
    monkeypatch.delenv(MOUNT_ROOT_ENV, raising=False)
    assert Dataset(uri="s3://b/k").path == "/s3/b/k"
    # A staged step: the engine sets the mount root, and .path and its setter follow it.
    monkeypatch.setenv(MOUNT_ROOT_ENV, "/t/mnt/")
    data = Dataset(uri="s3://b/k")
    assert data.path == "/t/mnt/s3/b/k"
    data.path = "/t/mnt/s3/b/other"
    assert data.uri == "s3://b/other"


def test_container_placeholders_give_local_paths_and_remote_uris() -> None:
    inputs = _executor_input(Path("/t"), {"data": "s3://b/r/a/data"}, {"model": "s3://b/r/b/m"})
    argv = ["{{$.inputs.artifacts['data'].path}}", "{{$.inputs.artifacts['data'].uri}}",
            "{{$.outputs.artifacts['model'].path}}", "{{$.outputs.artifacts['model'].uri}}"]
    assert resolve_placeholders(argv, inputs, {}, mount_root="/t/mnt") == [
        "/t/mnt/s3/b/r/a/data", "s3://b/r/a/data", "/t/mnt/s3/b/r/b/m", "s3://b/r/b/m"]
    # A local store: path and URI are the same local path, as before.
    local = _executor_input(Path("/t"), {"data": "/s/a/data"}, {"model": "/s/b/m"})
    assert resolve_placeholders(argv, local, {}) == ["/s/a/data", "/s/a/data", "/s/b/m",
                                                     "/s/b/m"]


def test_inputs_download_and_outputs_upload_files_and_directories(
        tmp_path: Path, memory_root: str) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{memory_root}/up/table.csv", b"a,b\n1,2\n")
    fs.pipe_file(f"{memory_root}/up/dir/part-0", b"zero")
    fs.pipe_file(f"{memory_root}/up/dir/sub/part-1", b"one")
    mount = str(tmp_path / "mnt")
    inputs = _executor_input(
        tmp_path, {"table": f"{memory_root}/up/table.csv", "parts": f"{memory_root}/up/dir",
                   "metrics": f"{memory_root}/up/no-object"},
        {"model": f"{memory_root}/down/model", "shards": f"{memory_root}/down/shards",
         "scores": f"{memory_root}/down/scores"})

    _staging.download_inputs(inputs, mount)
    _staging.prepare_outputs(inputs, mount)
    local = Path(local_path_for_uri(f"{memory_root}/up/table.csv", mount_root=mount))
    assert local.read_bytes() == b"a,b\n1,2\n"
    parts = Path(local_path_for_uri(f"{memory_root}/up/dir", mount_root=mount))
    assert (parts / "part-0").read_bytes() == b"zero"
    assert (parts / "sub" / "part-1").read_bytes() == b"one"
    # An artifact with no object (metadata only) downloads to nothing, as in KFP.
    assert not Path(local_path_for_uri(f"{memory_root}/up/no-object", mount_root=mount)).exists()

    # The step writes a file, a directory, and nothing for a metadata-only output.
    model = Path(local_path_for_uri(f"{memory_root}/down/model", mount_root=mount))
    assert model.parent.is_dir()  # prepared, as KFP's launcher does
    model.write_bytes(b"weights")
    shards = Path(local_path_for_uri(f"{memory_root}/down/shards", mount_root=mount))
    (shards / "x").mkdir(parents=True)
    (shards / "x" / "s0").write_text("s0")
    (shards / "s1").write_text("s1")
    _staging.upload_outputs(inputs, mount)
    assert fs.cat_file(f"{memory_root}/down/model") == b"weights"
    assert fs.cat_file(f"{memory_root}/down/shards/x/s0") == b"s0"
    assert fs.cat_file(f"{memory_root}/down/shards/s1") == b"s1"
    assert not fs.exists(f"{memory_root}/down/scores")


def test_outputs_follow_what_the_step_reported(tmp_path: Path, memory_root: str) -> None:
    """A step may move an output (a new URI, or ``set_path``): the executor output says
    where, and the upload goes there from there."""
    fs = fsspec.filesystem("memory")
    mount = str(tmp_path / "mnt")
    inputs = _executor_input(tmp_path, {}, {"a": f"{memory_root}/planned/a",
                                            "b": f"{memory_root}/planned/b"})
    elsewhere = tmp_path / "written-here.bin"
    elsewhere.write_bytes(b"custom")
    moved = Path(local_path_for_uri(f"{memory_root}/moved/a", mount_root=mount))
    moved.parent.mkdir(parents=True)
    moved.write_bytes(b"moved")
    Path(inputs["outputs"]["outputFile"]).write_text(json.dumps({"artifacts": {
        "a": {"artifacts": [{"name": "a", "uri": f"{memory_root}/moved/a"}]},
        "b": {"artifacts": [{"name": "b", "uri": f"{memory_root}/planned/b",
                             "custom_path": str(elsewhere)}]}}}))
    _staging.upload_outputs(inputs, mount)
    assert fs.cat_file(f"{memory_root}/moved/a") == b"moved"
    assert fs.cat_file(f"{memory_root}/planned/b") == b"custom"
    assert not fs.exists(f"{memory_root}/planned/a")


def test_a_failed_transfer_names_artifact_and_uri_and_no_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-key-42")
    mount = str(tmp_path / "mnt")
    uri = "nosuchproto://user:hunter2@host/bucket/model"
    inputs = _executor_input(tmp_path, {}, {"model": uri})
    out = Path(local_path_for_uri(uri, mount_root=mount))
    out.parent.mkdir(parents=True)
    out.write_text("w")
    with pytest.raises(_staging.StagingError) as failed:
        _staging.upload_outputs(inputs, mount)
    message = str(failed.value)
    assert message.startswith("could not upload output artifact 'model' to "
                              "nosuchproto://***@host/bucket/model: ")
    assert "nosuchproto" in message.split(": ", 1)[1]  # the cause: an unknown protocol
    assert "hunter2" not in message
    down = _executor_input(tmp_path, {"data": "nosuchproto://host/b/d"}, {})
    with pytest.raises(_staging.StagingError, match=r"input artifact 'data' from "
                                                    r"nosuchproto://host/b/d: "):
        _staging.download_inputs(down, mount)
    assert _staging.redact("denied for very-secret-key-42 at s3://ak:sk@b/k") == \
        "denied for *** at s3://***@b/k"


def test_staged_step_runs_between_download_and_upload(
        tmp_path: Path, memory_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{memory_root}/in/text", b"hello")
    mount = str(tmp_path / "mnt")
    inputs = _executor_input(tmp_path, {"text": f"{memory_root}/in/text"},
                             {"upper": f"{memory_root}/out/upper"})
    src = local_path_for_uri(f"{memory_root}/in/text", mount_root=mount)
    dst = local_path_for_uri(f"{memory_root}/out/upper", mount_root=mount)
    # What the step's unit stages around the step (``_unit.run_step``).
    staging = {"mountRoot": mount, "store": memory_root, "executorInput": inputs}
    assert _staging.is_remote(memory_root) and not _staging.is_remote(str(tmp_path))

    rc = _staging.staged(staging, lambda: _staging.run_command(
        ["sh", "-c", 'tr a-z A-Z < "$0" > "$1"', src, dst]))
    assert rc == 0
    assert fs.cat_file(f"{memory_root}/out/upper") == b"HELLO"
    assert not Path(mount).exists()  # the local copies went with the step

    # A failing step uploads nothing and keeps its status; a killed one reads as sh's.
    fs.rm(f"{memory_root}/out/upper")
    assert _staging.staged(staging, lambda: _staging.run_command(
        ["sh", "-c", 'echo partial > "$0"; exit 3', dst])) == 3
    assert not fs.exists(f"{memory_root}/out/upper")
    assert _staging.run_command(["sh", "-c", "kill -9 $$"]) == 137
    assert _staging.run_command([str(tmp_path / "no-such-command")]) == 127
    assert "cannot run" in capsys.readouterr().err


def test_preloading_s3_starts_no_thread_and_is_used_by_steps() -> None:
    """The warm worker prepares s3fs before it forks steps; a thread or event loop made
    there would not survive the fork, so there must be none."""
    import threading

    before = threading.active_count()
    _staging.preload("s3://any-bucket/prefix")
    assert threading.active_count() == before
    fs, path = _staging._fs("s3://any-bucket/prefix/k")
    assert path == "any-bucket/prefix/k"
    assert fs.session is _staging._WARM_OPTIONS["s3"]["session"]


# -- end to end: a real server on a (fake) S3 bucket -------------------------------------

BUCKET = "ketch-team"
ROOT_URI = f"s3://{BUCKET}/shared"
REGION = "us-east-1"
SECRET = "s3-secret-do-not-log-7f3a"
S3_ENV = {"AWS_ACCESS_KEY_ID": "ketch-test-key", "AWS_SECRET_ACCESS_KEY": SECRET,
          "AWS_DEFAULT_REGION": REGION}

PIPELINE = '''
from ketch import dsl
from ketch.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component
def make_data(rows: int, data: Output[Dataset]):
    import os

    os.makedirs(data.path)
    with open(os.path.join(data.path, "train.csv"), "w") as fh:
        fh.write("x,y\\n" + "".join(f"{i},{2 * i}\\n" for i in range(rows)))
    with open(os.path.join(data.path, "README"), "w") as fh:
        fh.write("synthetic\\n")
    data.metadata["rows"] = rows


@dsl.container_component
def train(data: Input[Dataset], model: Output[Model]):
    return dsl.ContainerSpec(
        image="python:3.12-slim",
        command=["sh", "-c", 'sleep 1.5; wc -l < "$0/train.csv" | tr -d " " > "$1"'],
        args=[data.path, model.path])


@dsl.component
def evaluate(model: Input[Model], metrics: Output[Metrics]) -> int:
    with open(model.path) as fh:
        lines = int(fh.read())
    metrics.log_metric("lines", lines)
    return lines


@dsl.pipeline(name="remote-artifacts")
def remote_artifacts(rows: int = 5) -> int:
    data = make_data(rows=rows)
    # A small memory limit: what counts is the command's memory, not the staging's.
    model = train(data=data.outputs["data"]).set_memory_limit("40M")
    return evaluate(model=model.outputs["model"]).outputs["Output"]


@dsl.component
def lost(out: Output[Model]):
    import os

    out.uri = "s3://no-such-bucket/lost/model"  # a bucket nobody created
    os.makedirs(os.path.dirname(out.path), exist_ok=True)
    with open(out.path, "w") as fh:
        fh.write("never arrives")


@dsl.pipeline(name="upload-fails")
def upload_fails():
    lost()


@dsl.container_component
def gated(gate: str, out: Output[Dataset]):
    return dsl.ContainerSpec(
        image="alpine:3.19",
        command=["sh", "-c", 'while [ ! -f "$0" ]; do sleep 0.05; done; printf opened > "$1"'],
        args=[gate, out.path])


@dsl.component
def read_back(data: Input[Dataset]) -> str:
    with open(data.path) as fh:
        return fh.read()


@dsl.component(packages_to_install=["tomli-w==1.0.0"])
def to_toml(data: Input[Dataset], config: Output[Dataset]):
    import os

    import tomli_w

    with open(os.path.join(data.path, "train.csv")) as fh:
        rows = len(fh.read().splitlines()) - 1
    with open(config.path, "w") as fh:
        fh.write(tomli_w.dumps({"rows": rows}))


@dsl.pipeline(name="venv-step")
def venv_step(rows: int = 3) -> str:
    data = make_data(rows=rows)
    config = to_toml(data=data.outputs["data"])
    return read_back(data=config.outputs["config"]).output


@dsl.pipeline(name="gated")
def gated_pipeline(gate: str) -> str:
    opened = gated(gate=gate)
    return read_back(data=opened.outputs["out"]).output
'''




@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server (a stand-in: no real S3 here) with the team's bucket."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _s3(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=SECRET)


def _keys(endpoint: str, prefix: str) -> list[str]:
    listing = _s3(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def _object(endpoint: str, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return bytes(_s3(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def s3_server(s3_endpoint: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``ketch up`` with the team's artifact store on the (fake) S3 bucket."""
    server = start_server(tmp_path_factory.mktemp("s3home"), command="up",
                          KETCH_ARTIFACTS_URI=ROOT_URI, AWS_ENDPOINT_URL=s3_endpoint, **S3_ENV)
    yield server
    server.kill(15)


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("pipelines") / "remote_pipelines.py"
    path.write_text(PIPELINE)
    import importlib.util

    spec = importlib.util.spec_from_file_location("remote_pipelines", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["remote_pipelines"] = module
    spec.loader.exec_module(module)
    return module


def _artifact(run: Any, task: str, name: str) -> dict[str, Any]:
    return dict(run.status["tasks"][task]["outputs"]["artifacts"][name])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_artifacts_live_in_the_bucket_and_flow_between_steps(
        s3_server: ServerProcess, s3_endpoint: str, pipelines: Any) -> None:
    import httpx

    from ketch import Client

    with Client(s3_server.url) as client:
        first = client.create_run_from_pipeline_func(pipelines.remote_artifacts,
                                                     arguments={"rows": 5})
        run = first.wait_for_run_completion(timeout=180)
        assert run.status["phase"] == "Succeeded", run.status.get("message")
        # evaluate read the model the container step wrote from the dataset directory
        # the first step wrote: 5 rows and a header.
        assert run.status["outputs"]["parameters"]["Output"] == 6

        base = f"{ROOT_URI}/pipelines/default/{run.name}-{str(run.metadata.uid)[:8]}"
        data, model = _artifact(run, "make-data", "data"), _artifact(run, "train", "model")
        metrics = _artifact(run, "evaluate", "metrics")
        assert data["uri"] == f"{base}/make-data/data"
        assert model["uri"] == f"{base}/train/model"
        assert metrics["uri"] == f"{base}/evaluate/metrics"
        assert data["metadata"] == {"rows": 5} and metrics["metadata"] == {"lines": 6}
        tasks = run.status["tasks"]
        assert tasks["train"]["inputs"]["artifacts"]["data"][0]["uri"] == data["uri"]
        assert tasks["evaluate"]["inputs"]["artifacts"]["model"][0]["uri"] == model["uri"]
        assert {c["type"] for c in tasks["train"]["conditions"]} >= {"HostProcess"}

        # The objects are in the bucket at exactly those URIs (a directory, a file;
        # Metrics are metadata only and leave no object, as in KFP).
        prefix = base.removeprefix(f"s3://{BUCKET}/")
        # Beside them, each step's executor metadata (ADR 007), under ``.ketch/``.
        keys = _keys(s3_endpoint, prefix)
        assert [k for k in keys if "/.ketch/" not in k] == [f"{prefix}/make-data/data/README",
                                                            f"{prefix}/make-data/data/train.csv",
                                                            f"{prefix}/train/model"]
        assert {k for k in keys if "/.ketch/" in k} >= {
            f"{prefix}/{task}/.ketch/attempt-1/executor_output.json"
            for task in ("make-data", "evaluate")}
        assert _object(s3_endpoint, f"{data['uri']}/train.csv").startswith(b"x,y\n0,0\n1,2\n")
        assert _object(s3_endpoint, model["uri"]).strip() == b"6"

        # Lineage records the same remote URIs, linked producer to consumer.
        api = f"{s3_server.url}/api/ketch/lineage"
        recorded = httpx.get(f"{api}/artifacts/{model['id']}").json()
        assert recorded["uri"] == model["uri"]
        upstream = httpx.get(f"{api}/artifacts/{model['id']}/upstream").json()
        assert data["uri"] in json.dumps(upstream)

        # The dashboard's preview route reads the artifact back from the bucket.
        content = httpx.get(f"{s3_server.url}/api/ketch/artifacts/content",
                            params={"uri": model["uri"]})
        assert content.status_code == 200 and content.content.strip() == b"6"

        # Run again: every step is cached and the outputs are the same objects.
        again = client.create_run_from_pipeline_func(pipelines.remote_artifacts,
                                                     arguments={"rows": 5})
        cached = again.wait_for_run_completion(timeout=120)
        assert cached.status["phase"] == "Succeeded", cached.status.get("message")
        assert all(cached.status["tasks"][t]["cached"] for t in ("make-data", "train",
                                                                 "evaluate"))
        for task, name in (("make-data", "data"), ("train", "model"),
                           ("evaluate", "metrics")):
            assert _artifact(cached, task, name)["uri"] == _artifact(run, task, name)["uri"]
        assert cached.status["outputs"]["parameters"]["Output"] == 6
        assert _keys(s3_endpoint, "shared/pipelines/default/" + cached.name) == []

        # Nothing of a step's scratch leaked into the store's local side, and no step
        # kept its local copies.
        home = s3_server.home
        assert not list(home.glob("**/s3:"))
        assert not list(home.glob("pipelines/**/mnt"))
        assert not (home / "artifacts").exists() or not any((home / "artifacts").iterdir())


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_failed_upload_fails_the_step_naming_the_uri(
        s3_server: ServerProcess, pipelines: Any) -> None:
    from ketch import Client

    with Client(s3_server.url) as client:
        result = client.create_run_from_pipeline_func(pipelines.upload_fails)
        run = result.wait_for_run_completion(timeout=120)
        log = b"".join(client.logs("PipelineRun", run.name, task="lost")).decode(
            errors="replace")
    assert run.status["phase"] == "Failed"
    message = run.status["tasks"]["lost"]["message"]
    assert "could not upload output artifact 'out' to s3://no-such-bucket/lost/model" in \
        message, message
    assert "NoSuchBucket" in message or "does not exist" in message, message
    assert "outputs" not in run.status["tasks"]["lost"] or not run.status["tasks"]["lost"][
        "outputs"].get("artifacts")
    # Credentials appear nowhere: not in the status, not in the step's log.
    assert SECRET not in json.dumps(run.status)
    assert "no-such-bucket" in log and SECRET not in log, log


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_staged_step_outlives_a_killed_control_plane(
        s3_endpoint: str, pipelines: Any, tmp_path: Path) -> None:
    """kill -9 of the server while a staged step runs: the step still uploads its output
    and writes its own status, and the restarted server adopts it (ADR 005)."""
    from ketch import Client

    home, gate = tmp_path / "home", tmp_path / "gate"
    env = {"KETCH_ARTIFACTS_URI": ROOT_URI, "AWS_ENDPOINT_URL": s3_endpoint, **S3_ENV}
    server = start_server(home, **env)
    try:
        with Client(server.url) as client:
            run_id = client.create_run_from_pipeline_func(
                pipelines.gated_pipeline, arguments={"gate": str(gate)}).run_id

            def gated_running() -> bool:
                tasks = client.get_run(run_id).status.get("tasks") or {}
                return bool(tasks.get("gated", {}).get("phase") == "Running")

            wait_for(gated_running, timeout=60, message="the gated step to run")
        server.kill(signal.SIGKILL)
        gate.write_text("")  # the step ends, and uploads, while no control plane is up
        server = start_server(home, **env)
        with Client(server.url) as client:
            run = client.wait_for_run_completion(run_id, timeout=120)
        assert run.status["phase"] == "Succeeded", run.status.get("message")
        assert run.status["outputs"]["parameters"]["Output"] == "opened"
        out = run.status["tasks"]["gated"]["outputs"]["artifacts"]["out"]
        assert run.status["tasks"]["gated"]["attempts"] == 1
        assert out["uri"].startswith(f"{ROOT_URI}/pipelines/default/{run_id}-")
        assert _object(s3_endpoint, out["uri"]) == b"opened"
    finally:
        server.kill(signal.SIGTERM)


def _differences(expected: Any, actual: Any, where: str) -> list[str]:
    """Where ``actual`` differs from ``expected`` (a dict matches on the keys it names),
    as the corpus test compares a run's status with a file's EXPECTED."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, got {actual!r}"]
        return [p for key, value in expected.items()
                for p in ([f"{where}.{key}: missing"] if key not in actual
                          else _differences(value, actual[key], f"{where}.{key}"))]
    if isinstance(expected, list) and expected and isinstance(expected[0], dict):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {len(expected)} items, got {actual!r}"]
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for p in _differences(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_pipeline_corpus_runs_unchanged_on_the_s3_store(
        s3_server: ServerProcess, s3_endpoint: str) -> None:
    """Every corpus pipeline (artifacts in loops and fan-ins, nested pipelines, importers,
    conditions, container components...) gives its expected results with every artifact
    staged through the bucket."""
    import warnings

    from _kfp import corpus_files, load_expected
    from ketch import Client
    from ketch.pipelines.compiler import load_pipeline_file

    names: dict[str, dict[str, Any]] = {}
    with Client(s3_server.url) as client:
        for path in corpus_files():
            expected = load_expected(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # dsl.Condition
                ir = load_pipeline_file(path, expected.get("pipeline"))
            name = "s3-" + path.stem.replace("_", "-")
            client.create({"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
                           "metadata": {"name": name},
                           "spec": {"pipelineSpec": ir, "caching": False,
                                    "arguments": expected.get("arguments", {})}})
            names[name] = expected

        def all_done() -> dict[str, Any] | None:
            runs = {n: client.get("pipelinerun", n) for n in names}
            done = all(r.status.get("phase") in ("Succeeded", "Failed", "Cancelled")
                       for r in runs.values())
            return runs if done else None

        runs = wait_for(all_done, timeout=480, interval=0.5, message="every corpus run")
    problems = []
    for name, expected in names.items():
        want = {k: expected[k] for k in ("phase", "outputs", "tasks") if k in expected}
        found = _differences(want, runs[name].status, "status")
        if found:
            problems.append(f"{name}: " + "; ".join(found[:3])
                            + f" (message: {str(runs[name].status.get('message'))[-500:]})")
    assert not problems, "\n".join(problems)
    # The artifacts went to the bucket, not to local disk.
    assert _keys(s3_endpoint, "shared/pipelines/default/s3-")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_step_in_its_own_venv_is_staged_too(
        s3_server: ServerProcess, s3_endpoint: str, pipelines: Any) -> None:
    """``--install-packages``: the step runs from a venv's interpreter (an argv step)
    and still reads and writes its artifacts through the bucket."""
    from ketch import Client
    from ketch.pipelines.compiler import compile_pipeline

    with Client(s3_server.url) as client:
        created = client.run_pipeline_spec(compile_pipeline(pipelines.venv_step),
                                           arguments={"rows": 3}, install_packages=True)
        run = client.wait_for_run_completion(created.name, timeout=360)
    assert run.status["phase"] == "Succeeded", run.status.get("message")
    assert run.status["outputs"]["parameters"]["Output"] == "rows = 3\n"
    config = _artifact(run, "to-toml", "config")
    assert config["uri"].startswith(f"{ROOT_URI}/pipelines/default/{run.name}-")
    assert _object(s3_endpoint, config["uri"]) == b"rows = 3\n"
