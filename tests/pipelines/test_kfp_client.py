"""``ketch.Client``'s kfp-shaped calls answer as ``kfp.Client`` 2.16.1's do: the list
responses' attribute names and paging, ``create_experiment`` returning an existing
experiment, every kfp parameter name accepted; and the docs' own snippet runs."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ketch import Client
from ketch.core.errors import InvalidError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"

# The kfp.Client calls docs/pipelines.md and the client's docstring name.
DOCUMENTED = [
    "create_run_from_pipeline_func", "create_run_from_pipeline_package", "list_runs",
    "get_run", "wait_for_run_completion", "upload_pipeline", "upload_pipeline_version",
    "create_experiment", "get_experiment", "list_experiments", "list_pipelines",
    "list_pipeline_versions", "get_pipeline", "create_recurring_run", "list_recurring_runs",
    "get_recurring_run", "enable_recurring_run", "disable_recurring_run",
    "delete_recurring_run", "terminate_run", "delete_run",
]
# The list calls: kfp's response attribute holding the items.
LISTS = {"list_runs": "runs", "list_experiments": "experiments", "list_pipelines": "pipelines",
         "list_pipeline_versions": "pipeline_versions", "list_recurring_runs": "recurring_runs"}

_KFP_SIGNATURES = textwrap.dedent("""
    import inspect, json, sys, warnings
    warnings.simplefilter("ignore")
    import kfp
    out = {}
    for name in sys.argv[1:]:
        sig = inspect.signature(getattr(kfp.Client, name))
        ret = sig.return_annotation
        fields = list(getattr(ret, "openapi_types", {}) or {})
        out[name] = {"params": list(sig.parameters)[1:], "fields": fields}
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def kfp_signatures(kfp_venv: Path) -> dict[str, Any]:
    proc = subprocess.run([str(kfp_venv), "-c", _KFP_SIGNATURES, *DOCUMENTED],
                          capture_output=True, text=True, check=True, timeout=120)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("method", DOCUMENTED)
def test_every_kfp_parameter_name_is_accepted(method: str,
                                              kfp_signatures: dict[str, Any]) -> None:
    ours = inspect.signature(getattr(Client, method)).parameters
    missing = [p for p in kfp_signatures[method]["params"] if p not in ours]
    assert not missing, f"Client.{method} lacks kfp's parameters {missing}"
    if method in LISTS:
        fields = kfp_signatures[method]["fields"]
        assert set(fields) == {LISTS[method], "total_size", "next_page_token"}, fields


_KFP_RUN = textwrap.dedent("""
    import json, warnings
    warnings.simplefilter("ignore")
    from kfp_server_api.models import V2beta1Run, V2beta1RuntimeState
    print(json.dumps({"fields": list(V2beta1Run.openapi_types),
                      "states": [v for k, v in vars(V2beta1RuntimeState).items()
                                 if k.isupper()]}))
""")


def test_runs_carry_kfps_run_attributes(kfp_venv: Path) -> None:
    """``get_run``/``wait_for_run_completion``/``list_runs().runs`` answer kfp's
    ``V2beta1Run`` attribute names, with values from kfp's ``V2beta1RuntimeState``."""
    from ketch.pipelines._kfp_run import KFP_STATES, KfpRun

    proc = subprocess.run([str(kfp_venv), "-c", _KFP_RUN], capture_output=True, text=True,
                          check=True, timeout=120)
    kfp = json.loads(proc.stdout)
    ours = [n for n, v in vars(KfpRun).items() if isinstance(v, property)]
    assert set(ours) <= set(kfp["fields"]), set(ours) - set(kfp["fields"])
    assert {"run_id", "state", "display_name", "created_at", "finished_at"} <= set(ours)
    assert {*KFP_STATES.values(), "CANCELING"} <= set(kfp["states"]), kfp["states"]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_docs_python_snippet_runs(ketch_server: Any, tmp_path: Path) -> None:
    quick_start, snippet = _blocks(DOCS.read_text())[:2]
    assert "def adder" in quick_start and "ketch.Client()" in snippet
    (tmp_path / "add.py").write_text(quick_start)
    compiled = subprocess.run([sys.executable, "-m", "ketch.cli", "compile", "add.py", "-o",
                               "adder.yaml"], cwd=tmp_path, env=ketch_server.env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert compiled.returncode == 0, compiled.stderr
    script = tmp_path / "snippet.py"
    script.write_text("from add import adder\n" + snippet)
    ran = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ketch_server.env,
                         capture_output=True, text=True, timeout=200, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    lines = ran.stdout.splitlines()
    assert lines[0] == "17"
    names, total, token = lines[1].rsplit(" ", 2)
    assert (total, token) == ("1", "None") and names.startswith("['adder-")
    assert lines[2] == "['try']"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_list_calls_page_as_kfp_and_experiments_are_reused(client: Any,
                                                           tmp_path: Path) -> None:
    pipeline = tmp_path / "echo.py"
    pipeline.write_text(textwrap.dedent('''
        from ketch import dsl

        @dsl.component
        def echo(text: str) -> str:
            return text

        @dsl.pipeline(name="echo")
        def echo_pipeline(text: str = "hi") -> str:
            return echo(text=text).output
    '''))
    made = client.create_experiment("try", description="first")
    again = client.create_experiment("try", description="second")
    assert again.name == made.name and again.metadata.uid == made.metadata.uid
    assert client.get_experiment(experiment_name="try").metadata.uid == made.metadata.uid
    assert client.get_experiment("try").metadata.uid == made.metadata.uid  # id == name

    ids = [client.create_run_from_pipeline_package(str(pipeline), arguments={"text": str(i)},
                                                   run_name=f"echo-{i}",
                                                   experiment_name="try").run_id
           for i in range(3)]
    other = client.create_run_from_pipeline_package(str(pipeline), run_name="elsewhere",
                                                    experiment_id="other")
    assert other.run_info is not None and other.run_info.name == other.run_id  # kfp's
    for run_id in [*ids, other.run_id]:
        done = client.wait_for_run_completion(run_id, timeout=120)
        assert (done.run_id, done.state, done.status["phase"]) == (run_id, "SUCCEEDED",
                                                                   "Succeeded")
    got = client.get_run(ids[0])
    assert (got.state, got.experiment_id, got.display_name) == ("SUCCEEDED", "try", ids[0])
    assert got.created_at is not None and got.finished_at >= got.created_at

    first = client.list_runs(experiment_id="try", page_size=2)
    assert first.total_size == 3 and len(first.runs) == 2
    rest = client.list_runs(experiment_id="try", page_size=2,
                            page_token=first.next_page_token)
    assert rest.next_page_token is None and len(rest.runs) == 1
    assert {r.state for r in [*first.runs, *rest.runs]} == {"SUCCEEDED"}
    assert {r.name for r in [*first.runs, *rest.runs]} == set(ids)
    oldest_first = client.list_runs(experiment_id="try", sort_by="created_at")
    newest_first = client.list_runs(experiment_id="try")
    assert [r.name for r in oldest_first.runs] == [r.name for r in newest_first.runs][::-1]
    assert client.list_runs().total_size == 4
    assert [r.name for r in client.list_runs(experiment_name="try")] == [
        r.name for r in newest_first.runs]  # still iterable, as the old list was
    by_name = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name",
                                          "stringValue": "elsewhere"}]})
    assert [r.name for r in client.list_runs(filter=by_name).runs] == ["elsewhere"]

    experiments = client.list_experiments()
    assert sorted(e.name for e in experiments.experiments) == ["other", "try"]
    assert experiments.total_size == 2 and experiments.next_page_token is None

    assert client.list_pipelines().pipelines is None  # kfp's empty answer
    client.upload_pipeline(str(pipeline), "echo")
    client.upload_pipeline_version(str(pipeline), "echo-v2", pipeline_id="echo")
    assert [p.name for p in client.list_pipelines().pipelines] == ["echo"]
    versions = client.list_pipeline_versions("echo", sort_by="name")
    assert [v.name for v in versions.pipeline_versions] == ["echo-v1", "echo-v2"]

    client.create_recurring_run(job_name="hourly", experiment_id="try",
                                cron_expression="0 0 * * * *", pipeline_id="echo",
                                enabled=False)
    recurring = client.list_recurring_runs(experiment_id="try")
    assert [r.name for r in recurring.recurring_runs] == ["hourly"]
    assert client.list_recurring_runs(experiment_id="other").recurring_runs is None
    assert client.get_recurring_run(recurring_run_id="hourly").spec["mode"] == "Disable"

    with pytest.raises(InvalidError) as bad_sort:
        client.list_runs(sort_by="colour")
    assert bad_sort.value.fields[0].path == "sort_by"
    with pytest.raises(InvalidError) as bad_token:
        client.list_runs(page_token="nonsense")
    assert bad_token.value.fields[0].path == "page_token"
    with pytest.raises(InvalidError) as refused:
        client.create_run_from_pipeline_package(str(pipeline), service_account="pipeline-runner")
    assert refused.value.fields[0].path == "service_account"
