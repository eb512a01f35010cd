"""kubectl's argument forms and output on a real server, through the real ``ketch``."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ServerProcess, start_server

pytestmark = pytest.mark.slow

FAILING_PIPELINE = '''
from ketch import dsl


@dsl.component
def ok() -> int:
    return 1


@dsl.component
def boom(x: int) -> int:
    raise ValueError("bad value " + str(x))


@dsl.pipeline
def failing():
    boom(x=ok().output)
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = start_server(tmp_path_factory.mktemp("cli-resources"))
    yield started
    started.kill()


def ketch(server: ServerProcess, *args: str, stdin: str | None = None
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          input=stdin, check=False, capture_output=True, text=True,
                          timeout=120)


def job(name: str, **metadata: object) -> str:
    return json.dumps({"apiVersion": "ketch.dev/v1", "kind": "Job",
                       "metadata": {"name": name, **metadata},
                       "spec": {"command": ["python3", "-c", f"print('{name}')"]}})


@pytest.fixture(scope="module")
def jobs(server: ServerProcess) -> list[str]:
    names = ["alpha", "beta"]
    applied = ketch(server, "apply", "-f", "-", stdin="\n---\n".join(job(n) for n in names))
    assert applied.returncode == 0, applied.stderr
    for name in names:
        waited = ketch(server, "wait", f"job/{name}", "--for=condition=Succeeded")
        assert waited.returncode == 0, waited.stderr
    return names


@pytest.fixture(scope="module")
def failed_run(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    source = tmp_path_factory.mktemp("pipeline") / "failing.py"
    source.write_text(FAILING_PIPELINE)
    out = ketch(server, "run", str(source), "--name", "broken", "--wait")
    assert out.returncode == 1, out.stderr
    return "broken"


def test_get_takes_kind_slash_name_and_several_names(server: ServerProcess,
                                                     jobs: list[str]) -> None:
    by_slash = ketch(server, "get", "job/alpha", "kj/beta", "-o", "name")
    assert by_slash.returncode == 0, by_slash.stderr
    assert by_slash.stdout.splitlines() == ["job.ketch.dev/alpha", "job.ketch.dev/beta"]
    # What -o name prints goes back in as it is.
    again = ketch(server, "get", *by_slash.stdout.split())
    assert again.returncode == 0, again.stderr
    assert [line.split()[0] for line in again.stdout.splitlines()] == ["NAME", "alpha", "beta"]
    several = ketch(server, "get", "jobs", "beta", "alpha", "-o", "json")
    assert [i["metadata"]["name"] for i in json.loads(several.stdout)["items"]] == [
        "beta", "alpha"]


def test_get_prints_what_it_found_and_fails_for_what_it_did_not(server: ServerProcess,
                                                                jobs: list[str]) -> None:
    out = ketch(server, "get", "jobs", "alpha", "nope")
    assert out.returncode == 1
    assert [line.split()[0] for line in out.stdout.splitlines()] == ["NAME", "alpha"]
    assert out.stderr.strip() == "error: jobs.ketch.dev \"nope\" not found in namespace 'default'"


def test_get_several_kinds_and_all(server: ServerProcess, jobs: list[str],
                                   failed_run: str) -> None:
    out = ketch(server, "get", "jobs,runs")
    assert out.returncode == 0, out.stderr
    tables = out.stdout.split("\n\n")
    assert [t.splitlines()[0].split()[:3] for t in tables] == [
        ["NAME", "PHASE", "ATTEMPTS"], ["NAME", "PIPELINE", "PHASE"]]
    assert [line.split()[0] for line in tables[0].splitlines()[1:]] == [
        "job.ketch.dev/alpha", "job.ketch.dev/beta"]
    assert tables[1].splitlines()[1].split()[:3] == [
        "pipelinerun.pipelines.ketch.dev/broken", "failing", "Failed"]
    everything = ketch(server, "get", "all", "-o", "name")
    assert everything.returncode == 0, everything.stderr
    names = everything.stdout.splitlines()
    assert {"job.ketch.dev/alpha", "job.ketch.dev/beta",
            "pipelinerun.pipelines.ketch.dev/broken"} <= set(names)


def test_unknown_kind_says_what_was_meant(server: ServerProcess) -> None:
    out = ketch(server, "get", "jbos")
    assert out.returncode == 1
    assert out.stderr.startswith("error: unknown kind 'jbos'; did you mean 'jobs'? (known ")


def test_describe_a_kind_without_a_name_describes_each(server: ServerProcess,
                                                       jobs: list[str]) -> None:
    out = ketch(server, "describe", "jobs")
    assert out.returncode == 0, out.stderr
    assert [line.split()[1] for line in out.stdout.splitlines()
            if line.startswith("Name:")] == ["alpha", "beta"]
    one = ketch(server, "describe", "job/beta")
    assert one.returncode == 0 and one.stdout.startswith("Name:         beta\n")


def test_describe_run_shows_tasks_and_the_traceback_once(server: ServerProcess,
                                                         failed_run: str) -> None:
    out = ketch(server, "describe", "run", failed_run)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "deploymentSpec" not in text and "executorLabel" not in text  # no compiled IR
    assert "  pipeline: failing (KFP IR, 2 top-level tasks; -o yaml shows it)" in text
    lines = text.splitlines()
    start = lines.index("Tasks:")
    assert lines[start + 1].split() == ["TASK", "PHASE", "ATTEMPTS", "DURATION", "CACHED",
                                        "MESSAGE"]
    rows = {line.split()[0]: line.split() for line in lines[start + 2:start + 4]}
    assert rows["ok"][:3] == ["ok", "Succeeded", "1"]
    assert rows["boom"][:3] == ["boom", "Failed", "1"]
    assert rows["boom"][-4:] == ["ValueError:", "bad", "value", "1"]  # its last line
    # The run's message, its Failed condition's and the task's hold the same traceback:
    # it is printed once, in full.
    assert text.count("Traceback (most recent call last)") == 1
    assert text.count('raise ValueError("bad value " + str(x))') == 1
    assert lines[-1] == "  ValueError: bad value 1"


def test_tables_show_the_last_line_of_a_message(server: ServerProcess,
                                                failed_run: str) -> None:
    out = ketch(server, "get", "runs", "-o", "wide")
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header.split()[-2:] == ["MESSAGE", "AGE"]
    assert row.startswith("broken ")
    assert row.split()[-5:-1] == ["ValueError:", "bad", "value", "1"]


def test_delete_fails_when_the_object_stays(server: ServerProcess) -> None:
    from ketch import Client

    created = ketch(server, "apply", "-f", "-",
                    stdin=job("held", finalizers=["example.com/hold"]))
    assert created.returncode == 0, created.stderr
    out = ketch(server, "delete", "job", "held", "--timeout", "1s")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.strip() == (
        'error: job.ketch.dev "held" is still there 1s after its deletion was requested: '
        "waiting for finalizers example.com/hold")
    described = ketch(server, "describe", "job", "held")
    assert "(finalizers: example.com/hold)" in described.stdout
    with Client(server.url) as client:
        client.patch("job", "held", {"metadata": {"finalizers": []}})
    gone = ketch(server, "delete", "job", "held")
    assert gone.returncode == 1 and "not found" in gone.stderr


def test_delete_several_in_kind_slash_name_form(server: ServerProcess) -> None:
    assert ketch(server, "apply", "-f", "-",
                 stdin=job("one") + "\n---\n" + job("two")).returncode == 0
    out = ketch(server, "delete", "job/one", "job/two")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ['job.ketch.dev "one" deleted',
                                       'job.ketch.dev "two" deleted']
    assert ketch(server, "get", "jobs", "one").returncode == 1


def test_apply_reads_a_utf16_file_with_a_byte_order_mark(server: ServerProcess,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "windows.yaml"
    path.write_bytes(codecs.BOM_UTF16_LE + job("sixteen").encode("utf-16-le"))
    out = ketch(server, "apply", "-f", str(path), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "job.ketch.dev/sixteen created (dry run)"


def test_apply_is_server_side_as_ketch_and_forces_conflicts(server: ServerProcess,
                                                            tmp_path: Path) -> None:
    import httpx

    path = tmp_path / "exp.yaml"

    def write(description: str) -> None:
        path.write_text(json.dumps({
            "apiVersion": "pipelines.ketch.dev/v1", "kind": "Experiment",
            "metadata": {"name": "owned"}, "spec": {"description": description}}))

    write("one")
    assert ketch(server, "apply", "-f", str(path)).stdout.strip() == \
        "experiment.pipelines.ketch.dev/owned created"
    url = f"{server.url}/apis/pipelines.ketch.dev/v1/namespaces/default/experiments/owned"
    got = httpx.get(url).json()
    assert [(e["manager"], e["operation"]) for e in got["metadata"]["managedFields"]] == [
        ("ketch", "Apply")]
    # Someone else changes the description: ketch's next apply of another one conflicts.
    assert httpx.patch(url, params={"fieldManager": "editor"}, content='{"spec": {'
                       '"description": "edited"}}', headers={
                           "Content-Type": "application/merge-patch+json"}).status_code == 200
    write("two")
    refused = ketch(server, "apply", "-f", str(path))
    assert refused.returncode == 1
    assert 'conflict with "editor" using pipelines.ketch.dev/v1' in refused.stderr
    assert ".spec.description" in refused.stderr
    forced = ketch(server, "apply", "-f", str(path), "--force-conflicts")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == "experiment.pipelines.ketch.dev/owned configured"
    assert httpx.get(url).json()["spec"]["description"] == "two"
