"""Lineage (the ML Metadata model) on SQLite and a real PostgreSQL: recording,
cache look-ups, graph queries, transactions shared with the caller, the
migration from a database without lineage tables, and the read-only REST routes."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text

from conftest import start_server
from ketch.core.errors import InvalidError, NotFoundError
from ketch.core.lineage import LineageStore, NewArtifact
from ketch.core.store import ResourceStore, open_store
from ketch.core.store._migrate import CORE_SCHEMA, upgrade
from ketch.jobs import JOB


@pytest.fixture
def store(database_url: str) -> Iterator[ResourceStore]:
    s = open_store(database_url)
    yield s
    s.close()


@pytest.fixture
def lineage(store: ResourceStore) -> LineageStore:
    return LineageStore(store)


def _pipeline(lineage: LineageStore, run: str = "run-1") -> dict[str, int]:
    """load -> train -> evaluate, as a pipeline run records it; returns the ids."""
    pipeline = lineage.put_context("system.Pipeline", "iris", properties={"version": "v1"})
    ctx = lineage.put_context("system.PipelineRun", run, parent_id=pipeline.id)
    load = lineage.record_execution(
        "system.ContainerExecution", name="load", contexts=[ctx.id],
        input_parameters={"rows": 150},
        outputs={"dataset": NewArtifact("system.Dataset", f"file:///a/{run}/data.csv",
                                        name="dataset")})
    dataset = load.outputs["dataset"][0].id
    train = lineage.record_execution(
        "system.ContainerExecution", name="train", contexts=[ctx.id], cache_key=f"k-{run}",
        inputs={"data": dataset}, input_parameters={"lr": 0.1},
        outputs={"model": NewArtifact("system.Model", f"file:///a/{run}/model.pkl",
                                      custom_properties={"framework": "sklearn"})},
        output_parameters={"Output": 0.97})
    model = train.outputs["model"][0].id
    evaluate = lineage.record_execution(
        "system.ContainerExecution", name="evaluate", contexts=[ctx.id],
        inputs={"model": model, "data": dataset},
        outputs={"metrics": NewArtifact("system.Metrics", f"file:///a/{run}/metrics")})
    return {"pipeline": pipeline.id, "run": ctx.id, "load": load.execution.id,
            "train": train.execution.id, "evaluate": evaluate.execution.id,
            "dataset": dataset, "model": model,
            "metrics": evaluate.outputs["metrics"][0].id}


def test_a_recorded_run_reads_back_by_context_and_slot(lineage: LineageStore) -> None:
    ids = _pipeline(lineage)
    run = lineage.get_context(ids["run"])
    assert (run.type, run.name, run.parent_id) == ("system.PipelineRun", "run-1",
                                                   ids["pipeline"])
    names = [e.name for e in lineage.list_executions(context_id=ids["run"])]
    assert names == ["load", "train", "evaluate"]
    arts = lineage.list_artifacts(context_id=ids["run"])
    assert [a.type for a in arts] == ["system.Dataset", "system.Model", "system.Metrics"]
    assert lineage.list_artifacts(type="system.Model")[0].custom_properties == {
        "framework": "sklearn"}
    train = lineage.get_recorded_execution(ids["train"])
    assert train.execution.state == "COMPLETE"
    assert train.execution.input_parameters == {"lr": 0.1}
    assert train.execution.output_parameters == {"Output": 0.97}
    assert [a.id for a in train.inputs["data"]] == [ids["dataset"]]
    assert [a.uri for a in train.outputs["model"]] == ["file:///a/run-1/model.pkl"]
    events = lineage.events(execution_id=ids["evaluate"])
    assert {(e.type, e.path, e.artifact_id) for e in events} == {
        ("INPUT", "model", ids["model"]), ("INPUT", "data", ids["dataset"]),
        ("OUTPUT", "metrics", ids["metrics"])}
    with pytest.raises(NotFoundError, match="artifact 999999 not found"):
        lineage.get_artifact(999999)


def test_upstream_and_downstream_follow_events_to_the_given_depth(
        lineage: LineageStore) -> None:
    ids = _pipeline(lineage)
    up = lineage.upstream(ids["metrics"])
    assert {e.name for e in up.executions} == {"load", "train", "evaluate"}
    assert {a.id for a in up.artifacts} == {ids["metrics"], ids["model"], ids["dataset"]}
    one = lineage.upstream(ids["metrics"], depth=1)
    assert [e.name for e in one.executions] == ["evaluate"]
    assert {a.id for a in one.artifacts} == {ids["metrics"], ids["model"], ids["dataset"]}
    down = lineage.downstream(ids["dataset"], depth=1)
    assert {e.name for e in down.executions} == {"train", "evaluate"}
    assert {a.id for a in down.artifacts} == {ids["dataset"], ids["model"], ids["metrics"]}
    assert [e.name for e in lineage.downstream(ids["metrics"]).executions] == []
    assert {e.name for e in lineage.execution_upstream(ids["evaluate"], 1).executions} == {
        "evaluate"}
    assert {e.name for e in lineage.execution_downstream(ids["load"]).executions} == {
        "load", "train", "evaluate"}
    with pytest.raises(InvalidError, match="depth"):
        lineage.upstream(ids["metrics"], depth=0)


def test_cache_finds_the_latest_complete_execution_with_its_outputs(
        lineage: LineageStore) -> None:
    assert lineage.find_cached_execution("nothing") is None
    first = lineage.record_execution(
        "system.ContainerExecution", name="train", cache_key="abc",
        outputs={"model": NewArtifact("system.Model", "file:///m1")},
        output_parameters={"Output": 1})
    latest = lineage.record_execution(
        "system.ContainerExecution", name="train", cache_key="abc",
        outputs={"model": NewArtifact("system.Model", "file:///m2")},
        output_parameters={"Output": 2})
    lineage.record_execution("system.ContainerExecution", name="train", cache_key="abc",
                             state="FAILED")
    lineage.record_execution("system.ContainerExecution", name="train", cache_key="abc",
                             state="RUNNING")
    hit = lineage.find_cached_execution("abc")
    assert hit is not None
    assert hit.execution.id == latest.execution.id != first.execution.id
    assert [a.uri for a in hit.output_artifacts["model"]] == ["file:///m2"]
    assert hit.output_parameters == {"Output": 2}
    assert lineage.find_cached_execution("abc", namespace="other") is None
    # A cached execution records the reuse; it is no cache source itself.
    lineage.record_execution("system.ContainerExecution", name="train", cache_key="abc",
                             state="CACHED", custom_properties={
                                 "cached_execution_id": latest.execution.id},
                             outputs={"model": hit.output_artifacts["model"][0].id})
    again = lineage.find_cached_execution("abc")
    assert again is not None and again.execution.id == latest.execution.id


def test_update_execution_moves_state_and_adds_outputs(lineage: LineageStore) -> None:
    run = lineage.put_context("system.PipelineRun", "r")
    started = lineage.record_execution("system.ContainerExecution", name="t",
                                       state="RUNNING", contexts=[run.id],
                                       custom_properties={"task_name": "t"})
    assert lineage.find_cached_execution("key") is None
    done = lineage.update_execution(
        started.execution.id, state="COMPLETE", cache_key="key",
        outputs={"out": [NewArtifact("system.Artifact", "file:///o/0"),
                         NewArtifact("system.Artifact", "file:///o/1")]},
        output_parameters={"n": 2}, custom_properties={"attempts": 1})
    assert done.execution.state == "COMPLETE"
    assert done.execution.custom_properties == {"task_name": "t", "attempts": 1,
                                                "outputs": {"n": 2}}
    assert [a.uri for a in done.outputs["out"]] == ["file:///o/0", "file:///o/1"]
    # Outputs are attributed to the execution's contexts.
    assert len(lineage.list_artifacts(context_id=run.id)) == 2
    hit = lineage.find_cached_execution("key")
    assert hit is not None and hit.output_parameters == {"n": 2}


def test_repeating_an_update_records_nothing_twice(lineage: LineageStore) -> None:
    """A writer that retries after an unknown outcome must not duplicate events."""
    run = lineage.put_context("system.PipelineRun", "retry")
    data = lineage.put_artifact(NewArtifact("system.Dataset", "file:///d"), contexts=[run.id])
    started = lineage.record_execution("system.ContainerExecution", state="RUNNING",
                                       contexts=[run.id], inputs={"data": data.id})
    for _ in range(2):
        done = lineage.update_execution(started.execution.id, state="COMPLETE",
                                        contexts=[run.id], inputs={"data": data.id},
                                        outputs={"data_out": data.id})
    assert [a.id for a in done.inputs["data"]] == [data.id]
    assert [a.id for a in done.outputs["data_out"]] == [data.id]
    assert len(lineage.events(execution_id=started.execution.id)) == 2
    assert [a.id for a in lineage.list_artifacts(context_id=run.id)] == [data.id]
    assert len(lineage.list_executions(context_id=run.id)) == 1


def test_concurrent_writers_lose_nothing(lineage: LineageStore) -> None:
    run = lineage.put_context("system.PipelineRun", "parallel")
    source = lineage.put_artifact(NewArtifact("system.Dataset", "file:///src"))
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(15):
                lineage.record_execution(
                    "system.ContainerExecution", name=f"w{worker}-{i}", contexts=[run.id],
                    inputs={"data": source.id},
                    outputs={"out": NewArtifact("system.Artifact", f"file:///{worker}/{i}")})
        except BaseException as err:  # reported below, on the test's thread
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    executions = lineage.list_executions(context_id=run.id, limit=1000)
    assert len(executions) == 60
    assert len(lineage.list_artifacts(context_id=run.id, limit=1000)) == 61
    assert len(lineage.downstream(source.id, depth=1).executions) == 60


def test_contexts_are_get_or_create_per_type_and_namespace(lineage: LineageStore) -> None:
    a = lineage.put_context("system.Pipeline", "p", properties={"x": 1})
    b = lineage.put_context("system.Pipeline", "p", properties={"y": 2})
    assert a.id == b.id and b.properties == {"x": 1, "y": 2}
    assert lineage.put_context("system.PipelineRun", "p").id != a.id
    assert lineage.put_context("system.Pipeline", "p", namespace="team").id != a.id
    found = lineage.find_context("system.Pipeline", "p")
    assert found is not None and found.id == a.id
    assert lineage.find_context("system.Pipeline", "q") is None
    assert [c.name for c in lineage.list_contexts(type="system.Pipeline",
                                                  namespace="default")] == ["p"]


def test_concurrent_creators_of_one_context_get_the_same_row(lineage: LineageStore) -> None:
    barrier = threading.Barrier(4)
    ids: list[int] = []

    def create() -> None:
        barrier.wait()
        ids.append(lineage.put_context("system.PipelineRun", "same").id)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(ids) == 4 and len(set(ids)) == 1


def test_writes_join_the_callers_transaction(store: ResourceStore,
                                             lineage: LineageStore) -> None:
    with pytest.raises(RuntimeError), store.transaction(write=True) as conn:
        ctx = lineage.put_context("system.PipelineRun", "rolled-back", conn=conn)
        lineage.record_execution("system.ContainerExecution", contexts=[ctx.id],
                                 outputs={"o": NewArtifact("system.Artifact", "file:///x")},
                                 conn=conn)
        assert len(lineage.list_executions(conn=conn)) == 1  # visible inside
        raise RuntimeError("the caller fails after writing lineage")
    assert lineage.find_context("system.PipelineRun", "rolled-back") is None
    assert lineage.list_executions() == [] and lineage.list_artifacts() == []
    with store.transaction(write=True) as conn:
        ctx = lineage.put_context("system.PipelineRun", "kept", conn=conn)
        lineage.record_execution("system.ContainerExecution", contexts=[ctx.id], conn=conn)
    assert len(lineage.list_executions(context_id=ctx.id)) == 1


def test_bad_input_names_the_field_and_writes_nothing(lineage: LineageStore) -> None:
    with pytest.raises(InvalidError) as err:
        lineage.record_execution("system.ContainerExecution", state="DONE")
    assert err.value.fields[0].path == "state"
    assert "COMPLETE" in err.value.fields[0].message
    with pytest.raises(InvalidError) as err:
        lineage.record_execution("system.ContainerExecution",
                                 outputs={"model": "file:///not-a-ref"})  # type: ignore[dict-item]
    assert err.value.fields[0].path == "outputs.model"
    with pytest.raises(InvalidError) as err:
        lineage.put_artifact(NewArtifact("system.Model", "file:///m", state="GONE"))
    assert err.value.fields[0].path == "artifact.state"
    with pytest.raises(InvalidError) as err:
        lineage.put_context("system.PipelineRun", "r", namespace="Bad_NS")
    assert err.value.fields[0].path == "namespace"
    # An unknown input artifact fails the whole record: no execution, no new output.
    with pytest.raises(NotFoundError, match="artifact 424242 not found"):
        lineage.record_execution("system.ContainerExecution", inputs={"data": 424242},
                                 outputs={"o": NewArtifact("system.Artifact", "file:///o")})
    assert lineage.list_executions() == [] and lineage.list_artifacts() == []
    with pytest.raises(NotFoundError, match="context 77 not found"):
        lineage.record_execution("system.ContainerExecution", contexts=[77])
    assert lineage.list_executions() == []


def test_an_older_database_gains_the_lineage_tables_and_keeps_its_data(
        database_url: str) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine, [CORE_SCHEMA], revision="0001")
    assert not inspect(engine).has_table("lineage_executions")
    # A Job as 0001's layout held it (today's store writes a newer one).
    body = json.dumps({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {
        "name": "from-before", "namespace": "default", "uid": "u-1", "resourceVersion": "1",
        "generation": 1}, "spec": {"command": ["true"]}, "status": {}})
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ketch_resources (uid, kind_key, namespace, name, "
                          "resource_version, body) VALUES ('u-1', :kind, 'default', "
                          "'from-before', 1, :body)"), {"kind": JOB.key, "body": body})
        conn.execute(text("UPDATE ketch_revision SET value = 1"))
    store = open_store(database_url)
    try:
        assert store.get(JOB, "default", "from-before").name == "from-before"
        with engine.connect() as conn:
            versions = set(conn.execute(text("SELECT version_num FROM alembic_version"))
                           .scalars())
        assert versions == {CORE_SCHEMA.head}
        ids = _pipeline(LineageStore(store))
        assert LineageStore(store).get_execution(ids["train"]).cache_key == "k-run-1"
    finally:
        store.close()
        engine.dispose()


@pytest.mark.slow
def test_rest_routes_serve_lineage_read_only(tmp_path: Path) -> None:
    """A real ``ketch server``; lineage written through the same database file."""
    home = tmp_path / "home"
    db = f"sqlite:///{tmp_path / 'ketch.db'}"
    server = start_server(home, database_url=db)
    from ketch.core.component import load_components

    store = open_store(db, schemas=[c.schema for c in load_components() if c.schema])
    try:
        ids = _pipeline(LineageStore(store))
        with httpx.Client(base_url=server.url + "/api/ketch/lineage", timeout=30) as http:
            page = http.get("/executions", params={"context": ids["run"], "limit": 2}).json()
            assert [e["name"] for e in page["items"]] == ["load", "train"]
            rest = http.get("/executions", params={"context": ids["run"], "limit": 2,
                                                   "continue": page["continue"]}).json()
            assert [e["name"] for e in rest["items"]] == ["evaluate"]
            assert "continue" not in rest
            train = http.get(f"/executions/{ids['train']}").json()
            assert train["cacheKey"] == "k-run-1"
            assert train["outputs"]["model"][0]["uri"] == "file:///a/run-1/model.pkl"
            assert train["customProperties"]["outputs"] == {"Output": 0.97}
            cached = http.get("/executions", params={"cacheKey": "k-run-1"}).json()
            assert [e["id"] for e in cached["items"]] == [ids["train"]]
            arts = http.get("/artifacts", params={"context": ids["run"]}).json()["items"]
            assert [a["type"] for a in arts] == ["system.Dataset", "system.Model",
                                                 "system.Metrics"]
            assert http.get(f"/artifacts/{ids['model']}").json()["type"] == "system.Model"
            up = http.get(f"/artifacts/{ids['metrics']}/upstream").json()
            assert {e["name"] for e in up["executions"]} == {"load", "train", "evaluate"}
            assert {(e["type"], e["path"]) for e in up["events"]} >= {("OUTPUT", "metrics"),
                                                                    ("INPUT", "model")}
            down = http.get(f"/artifacts/{ids['dataset']}/downstream",
                            params={"depth": 1}).json()
            assert {e["name"] for e in down["executions"]} == {"train", "evaluate"}
            ex_up = http.get(f"/executions/{ids['evaluate']}/upstream",
                             params={"depth": 1}).json()
            assert [e["name"] for e in ex_up["executions"]] == ["evaluate"]
            ex_down = http.get(f"/executions/{ids['load']}/downstream").json()
            assert len(ex_down["executions"]) == 3
            ctxs = http.get("/contexts", params={"type": "system.PipelineRun"}).json()
            assert [c["name"] for c in ctxs["items"]] == ["run-1"]
            named = http.get("/contexts", params={"name": "iris"}).json()["items"]
            assert [(c["type"], c["id"]) for c in named] == [("system.Pipeline",
                                                             ids["pipeline"])]
            ctx = http.get(f"/contexts/{ids['run']}").json()
            assert ctx["parentId"] == ids["pipeline"]
            missing = http.get("/artifacts/99999")
            assert missing.status_code == 404 and "artifact 99999" in missing.json()["message"]
            bad = http.get(f"/artifacts/{ids['model']}/upstream", params={"depth": 0})
            assert bad.status_code == 422 and "depth" in bad.text
            bad_token = http.get("/artifacts", params={"continue": "x"})
            assert bad_token.status_code == 422 and "continue" in bad_token.text
            assert http.post("/artifacts", json={}).status_code == 405
    finally:
        store.close()
        server.kill(signal.SIGTERM)
