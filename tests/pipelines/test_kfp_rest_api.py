"""The real ``kfp.Client(host=URL)`` 2.16.1 (in its own venv) against a real ketch server's
``/apis/v2beta1``: runs, experiments, pipelines and versions, recurring runs, errors.

Each test runs one script with the kfp venv's python; the script prints what it saw as
JSON and the test asserts on it, so the calls and their decoding are kfp's own."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, start_server

_PRELUDE = textwrap.dedent("""
    import json, sys, tempfile, warnings
    warnings.simplefilter("ignore")
    import kfp
    from kfp import dsl, compiler

    @dsl.component
    def add(a: int, b: int) -> int:
        return a + b

    @dsl.pipeline(name="three-steps")
    def three(x: int = 1) -> int:
        first = add(a=x, b=1)
        second = add(a=first.output, b=2)
        third = add(a=second.output, b=3)
        return third.output

    client = kfp.Client(host=sys.argv[1])
    out = {}
""")


def _kfp(kfp_venv: Path, url: str, body: str, folder: Path,
         timeout: float = 240) -> dict[str, Any]:
    # A file, not ``-c``: kfp reads each component's source with inspect.getsource.
    script = folder / "kfp_script.py"
    script.write_text(_PRELUDE + textwrap.dedent(body)
                      + "\nprint('RESULT ' + json.dumps(out))\n")
    proc = subprocess.run([str(kfp_venv), str(script), url], capture_output=True, text=True,
                          check=False,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_run_from_pipeline_func_completes_with_task_details(kfp_venv: Path, server_url: str,
                                                            tmp_path: Path) -> None:
    out = _kfp(kfp_venv, server_url, """
        result = client.create_run_from_pipeline_func(three, arguments={"x": 10})
        run = client.wait_for_run_completion(result.run_id, timeout=180)
        out["state"] = run.state
        got = client.get_run(result.run_id)
        out["id"] = got.run_id
        out["experiment_id"] = got.experiment_id
        out["created"] = got.created_at.isoformat()
        out["tasks"] = sorted((t.display_name, t.state) for t in got.run_details.task_details)
        exp = client.get_experiment(experiment_name="Default")
        out["default_experiment"] = exp.experiment_id
        # Paging: two more runs, then pages of two.
        for _ in range(2):
            client.create_run_from_pipeline_func(three, arguments={"x": 1})
        first = client.list_runs(page_size=2, sort_by="created_at desc")
        second = client.list_runs(page_size=2, page_token=first.next_page_token)
        out["pages"] = [len(first.runs), first.total_size, bool(first.next_page_token),
                        len(second.runs), second.next_page_token]
        out["paged_ids"] = [r.run_id for r in first.runs + second.runs]
        done = client.list_runs(filter=json.dumps({"predicates": [
            {"operation": "EQUALS", "key": "state", "string_value": "SUCCEEDED"}]}))
        out["succeeded"] = [r.run_id for r in done.runs or []]
        by_id = client.list_runs(filter=json.dumps({"predicates": [
            {"operation": "IN", "key": "run_id",
             "string_values": {"values": [result.run_id]}}]}))
        out["in"] = [r.run_id for r in by_id.runs]
        out["by_experiment"] = client.list_runs(experiment_id=exp.experiment_id).total_size
        since = client.list_runs(filter=json.dumps({"predicates": [
            {"operation": "GREATER_THAN_EQUALS", "key": "created_at",
             "timestamp_value": got.created_at.isoformat()},
            {"operation": "NOT_EQUALS", "key": "run_id", "string_value": result.run_id}]}))
        out["since"] = since.total_size
    """, tmp_path)
    assert out["state"] == "SUCCEEDED"
    assert out["experiment_id"] == out["default_experiment"]
    assert out["tasks"] == [["add", "SUCCEEDED"], ["add-2", "SUCCEEDED"],
                            ["add-3", "SUCCEEDED"]]
    assert out["pages"] == [2, 3, True, 1, None]
    assert len(set(out["paged_ids"])) == 3 and out["id"] in out["paged_ids"]
    assert out["id"] in out["succeeded"]
    assert out["in"] == [out["id"]]
    assert out["by_experiment"] == 3
    assert out["since"] == 2  # the two later runs, compared as times, not text


@pytest.mark.slow
def test_experiments_pipelines_and_recurring_runs(kfp_venv: Path, server_url: str,
                                                  tmp_path: Path) -> None:
    out = _kfp(kfp_venv, server_url, f"""
        exp = client.create_experiment("Nightly Jobs", description="the nightly ones")
        again = client.create_experiment("Nightly Jobs")
        out["exp"] = [exp.display_name, exp.description, again.experiment_id == exp.experiment_id,
                      client.get_experiment(experiment_id=exp.experiment_id).display_name]
        out["experiments"] = sorted(e.display_name for e in client.list_experiments().experiments)
        client.archive_experiment(exp.experiment_id)
        out["archived"] = client.get_experiment(experiment_id=exp.experiment_id).storage_state
        client.unarchive_experiment(exp.experiment_id)

        path = "{tmp_path}/three.yaml"
        compiler.Compiler().compile(three, path)
        pipeline = client.upload_pipeline(path, pipeline_name="Three Steps")
        version = client.upload_pipeline_version(path, "second", pipeline_id=pipeline.pipeline_id)
        versions = client.list_pipeline_versions(pipeline.pipeline_id)
        out["pipeline"] = [pipeline.display_name, client.get_pipeline_id("Three Steps")
                           == pipeline.pipeline_id, versions.total_size,
                           version.display_name, "root" in version.pipeline_spec]

        rr = client.create_recurring_run(exp.experiment_id, "every hour",
                                         interval_second=3600, pipeline_id=pipeline.pipeline_id,
                                         version_id=version.pipeline_version_id)
        listed = client.list_recurring_runs(experiment_id=exp.experiment_id)
        client.disable_recurring_run(rr.recurring_run_id)
        got = client.get_recurring_run(rr.recurring_run_id)
        out["recurring"] = [rr.display_name, rr.status,
                            rr.trigger.periodic_schedule.interval_second,
                            [r.recurring_run_id for r in listed.recurring_runs]
                            == [rr.recurring_run_id], got.status, got.mode]
        client.delete_recurring_run(rr.recurring_run_id)
        out["recurring_left"] = client.list_recurring_runs().total_size

        run = client.run_pipeline(exp.experiment_id, "from a version",
                                  pipeline_id=pipeline.pipeline_id,
                                  version_id=version.pipeline_version_id,
                                  params={{"x": 2}})
        done = client.wait_for_run_completion(run.run_id, timeout=180)
        out["version_run"] = done.state
        out["reference"] = [done.pipeline_version_reference.pipeline_id == pipeline.pipeline_id,
                            done.pipeline_version_reference.pipeline_version_id
                            == version.pipeline_version_id]

        @dsl.pipeline(name="fan-out")
        def fan_out():
            with dsl.ParallelFor([1, 2]) as item:
                add(a=item, b=1)

        loop = client.create_run_from_pipeline_func(fan_out, experiment_name="Nightly Jobs")
        tasks = client.wait_for_run_completion(loop.run_id, 180).run_details.task_details
        by_id = {{t.task_id: t for t in tasks}}
        out["loop"] = sorted([t.display_name, by_id[t.parent_task_id].display_name
                              if t.parent_task_id else None,
                              len(t.child_tasks or [])] for t in tasks)
        package = client.create_run_from_pipeline_package(path, arguments={{"x": 5}},
                                                          experiment_name="Nightly Jobs")
        out["package_run"] = [client.wait_for_run_completion(package.run_id, 180).state,
                              client.get_run(package.run_id).experiment_id
                              == exp.experiment_id]
        client.delete_pipeline_version(pipeline.pipeline_id, version.pipeline_version_id)
        out["versions_left"] = client.list_pipeline_versions(pipeline.pipeline_id).total_size
    """, tmp_path)
    assert out["exp"] == ["Nightly Jobs", "the nightly ones", True, "Nightly Jobs"]
    assert "Nightly Jobs" in out["experiments"]
    assert out["archived"] == "ARCHIVED"
    assert out["pipeline"] == ["Three Steps", True, 2, "second", True]
    assert out["recurring"] == ["every hour", "ENABLED", "3600", True, "DISABLED", "DISABLE"]
    assert out["recurring_left"] == 0
    assert out["version_run"] == "SUCCEEDED"
    assert out["reference"] == [True, True]
    loop_name = out["loop"][-1][0]
    assert out["loop"] == [["add", loop_name, 0], ["add", loop_name, 0], [loop_name, None, 2]]
    assert out["package_run"] == ["SUCCEEDED", True]
    assert out["versions_left"] == 1


@pytest.mark.slow
def test_terminate_delete_and_errors(kfp_venv: Path, server_url: str,
                                     tmp_path: Path) -> None:
    out = _kfp(kfp_venv, server_url, """
        from kfp_server_api import ApiException

        @dsl.component
        def wait() -> None:
            import time
            time.sleep(120)

        @dsl.pipeline(name="slow")
        def slow():
            wait()

        run = client.create_run_from_pipeline_func(slow)
        client.terminate_run(run.run_id)
        # kfp's wait_for_run_completion never ends on CANCELED (not among its finish
        # states, against KFP too): poll get_run as a kfp user would.
        import time
        deadline = time.monotonic() + 120
        while client.get_run(run.run_id).state != "CANCELED" and time.monotonic() < deadline:
            time.sleep(0.2)
        out["terminated"] = client.get_run(run.run_id).state
        client.archive_run(run.run_id)
        out["archived"] = client.get_run(run.run_id).storage_state
        client.runs.run_service_retry_run(run.run_id)
        retried = [r for r in client.list_runs().runs if r.run_id != run.run_id]
        out["retried"] = [len(retried), retried[0].display_name == run.run_info.display_name]
        try:  # pending or running (a 120 s step): nothing to retry
            client.runs.run_service_retry_run(retried[0].run_id)
        except ApiException as err:
            out["retry_running"] = err.status
        client.terminate_run(retried[0].run_id)
        client.delete_run(run.run_id)
        try:
            client.get_run(run.run_id)
        except ApiException as err:
            out["deleted"] = [err.status, json.loads(err.body)["code"]]
        try:
            client.get_run("no-such-run-id")
        except ApiException as err:
            out["unknown"] = [err.status, json.loads(err.body)]
        try:
            client.list_runs(filter="{not json")
        except ApiException as err:
            out["bad_filter"] = [err.status, json.loads(err.body)["code"]]
    """, tmp_path)
    assert out["terminated"] == "CANCELED"
    assert out["archived"] == "ARCHIVED"
    assert out["retried"] == [1, True]
    assert out["retry_running"] == 400
    assert out["deleted"] == [404, 5]
    status, body = out["unknown"]
    assert status == 404
    assert body["code"] == 5 and "no-such-run-id" in body["message"]
    assert body["error"] == body["message"] and body["details"] == []
    assert out["bad_filter"] == [400, 3]


def test_healthz_and_grpc_error_shape(server_url: str) -> None:
    health = httpx.get(f"{server_url}/apis/v2beta1/healthz")
    assert health.status_code == 200 and health.json()["multi_user"] is False
    bad = httpx.post(f"{server_url}/apis/v2beta1/runs", json={"display_name": "x"})
    assert bad.status_code == 400
    assert bad.json()["code"] == 3 and "pipeline_spec" in bad.json()["message"]
    upload = httpx.post(f"{server_url}/apis/v2beta1/pipelines/upload",
                        files={"uploadfile": ("p.yaml", b"pipelineInfo: {name: x}\n")},
                        params={"name": "broken"})
    assert upload.status_code == 400 and upload.json()["code"] == 3
    assert "spec.pipelineSpec" in upload.json()["message"]
    unserved = httpx.get(f"{server_url}/apis/v2beta1/visualizations/default")
    assert unserved.status_code == 404 and unserved.json()["code"] == 5
    no_experiment = httpx.post(f"{server_url}/apis/v2beta1/runs", json={
        "display_name": "x", "experiment_id": "0c5e6f1a-0000-4000-8000-000000000000",
        "pipeline_spec": {"pipelineInfo": {"name": "x"}}})
    assert no_experiment.status_code == 404 and "experiment" in no_experiment.json()["message"]
    listed = httpx.get(f"{server_url}/apis/v2beta1/pipelines").json()
    assert listed.get("pipelines") is None  # nothing half-written


@pytest.mark.slow
def test_bearer_token_and_namespace(kfp_venv: Path, server_factory: Any,
                                    tmp_path: Path) -> None:
    """kfp.Client's ``existing_token`` is the server's bearer token; ``namespace`` picks
    the ketch namespace of what is created and listed."""
    server = server_factory(tmp_path / "home", command="server", KETCH_TOKEN="s3cret-token")
    script = tmp_path / "kfp_token.py"
    script.write_text(textwrap.dedent("""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        import kfp
        from kfp_server_api import ApiException
        out = {}
        good = kfp.Client(host=sys.argv[1], existing_token="s3cret-token")
        exp = good.create_experiment("team-a", namespace="team-a")
        out["ns"] = [exp.namespace,
                     good.list_experiments(namespace="team-a").total_size,
                     good.list_experiments().total_size]
        try:
            kfp.Client(host=sys.argv[1], existing_token="wrong").list_experiments()
        except ApiException as err:
            out["wrong"] = err.status
        print("RESULT " + json.dumps(out))
    """))
    proc = subprocess.run([str(kfp_venv), str(script), server.url], capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out == {"ns": ["team-a", 1, 0], "wrong": 401}


@pytest.fixture(scope="module")
def shared_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the bad-input cases: none of them writes anything."""
    server: ServerProcess = start_server(tmp_path_factory.mktemp("kfp-bad-input"))
    yield server.url
    server.kill(15)


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("POST", "/runs", {"json": {"pipeline_spec": "not an object"}}),
    ("POST", "/runs", {"json": {"pipeline_spec": {}, "runtime_config": []}}),
    ("POST", "/runs", {"content": b"[1, 2]"}),
    ("POST", "/runs", {"content": b"{not json"}),
    ("POST", "/recurringruns", {"json": {"trigger": "hourly"}}),
    ("POST", "/recurringruns", {"json": {"trigger": {"periodic_schedule": {
        "interval_second": "soon"}}}}),
    ("POST", "/experiments", {"json": {"description": "no name"}}),
    ("GET", "/runs", {"params": {"filter": '{"predicates": 5}'}}),
    ("GET", "/runs", {"params": {"filter": '{"predicates": [{"operation": "IN", '
                                           '"key": "name", "string_values": 3}]}'}}),
    ("GET", "/runs", {"params": {"filter": '{"predicates": [{"operation": "EQUALS", '
                                           '"key": "name"}]}'}}),
    ("GET", "/runs", {"params": {"page_size": "ten"}}),
    ("GET", "/runs", {"params": {"page_token": "99"}}),
    ("GET", "/experiments", {"params": {"namespace": "Not_A_Name"}}),
    ("POST", "/pipelines/upload", {"content": b"no form"}),
])
def test_bad_input_is_invalid_argument(shared_url: str, method: str, path: str,
                                       kwargs: dict[str, Any]) -> None:
    answer = httpx.request(method, f"{shared_url}/apis/v2beta1{path}", **kwargs)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == 3 and answer.json()["message"]
