"""End-to-end tests of the dashboard's Pipelines pages, through system chromium.

Each test runs real pipelines with ``ketch run`` against a real ``ketch up`` (the
``ketch_server`` fixture), then checks in the browser what a user sees: the run's
DAG with each task's state, a task's outputs, log and artifact previews, a failed
run's traceback, the live state of a running run and its Cancel button, the
compare page, and the pipeline catalog. Build the UI first (``cd ui && npm run build``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _browser import page  # noqa: F401  (the fixture; tests/e2e is on sys.path)

from ketch import Client

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]

RUN_TIMEOUT_MS = 90_000

DEMO = textwrap.dedent('''
    from ketch import dsl
    from ketch.dsl import Dataset, Input, Markdown, Metrics, Output


    @dsl.component
    def make_data(rows: int, data: Output[Dataset]):
        with open(data.path, "w") as f:
            f.write("x,y\\n")
            for i in range(rows):
                f.write(f"{i},{i * i}\\n")
        print(f"wrote {rows} rows")


    @dsl.component
    def evaluate(data: Input[Dataset], metrics: Output[Metrics],
                 report: Output[Markdown]) -> float:
        with open(data.path) as f:
            n = len(f.readlines()) - 1
        accuracy = n / (n + 1)
        metrics.log_metric("accuracy", accuracy)
        metrics.log_metric("rows", n)
        with open(report.path, "w") as f:
            f.write(f"# Evaluation\\n\\n**{n}** rows, <script>alert(1)</script>\\n")
        print(f"evaluated {n} rows")
        return accuracy


    @dsl.component
    def square(x: int) -> int:
        return x * x


    @dsl.component
    def announce(message: str) -> str:
        print(message)
        return message


    @dsl.pipeline(name="dashboard-demo")
    def demo(rows: int = 5):
        data = make_data(rows=rows)
        scored = evaluate(data=data.outputs["data"])
        with dsl.If(scored.outputs["Output"] > 0.5):
            announce(message="good model")
        with dsl.Else():
            announce(message="bad model")
        with dsl.ParallelFor([1, 2, 3]) as x:
            square(x=x)
''')

FAILS = textwrap.dedent('''
    from ketch import dsl

    @dsl.component
    def explode(why: str):
        print("about to explode")
        raise ValueError(f"exploded: {why}")

    @dsl.component
    def after(x: str) -> str:
        return x

    @dsl.pipeline(name="fails")
    def fails(why: str = "bad data"):
        step = explode(why=why)
        after(x="never").after(step)
''')

# A step that runs until a flag file appears: the run stays Running for as long
# as the test needs, with no timing involved.
WAITS = textwrap.dedent('''
    from ketch import dsl

    @dsl.component
    def hold(flag: str) -> str:
        import os, time
        print("holding until", flag, flush=True)
        while not os.path.exists(flag):
            time.sleep(0.05)
        return "released"

    @dsl.pipeline(name="holds")
    def holds(flag: str):
        hold(flag=flag)
''')


PLOTS = textwrap.dedent('''
    from ketch import dsl
    from ketch.dsl import HTML, ClassificationMetrics, Output

    @dsl.component
    def classify(scores: Output[ClassificationMetrics], page: Output[HTML]):
        scores.log_confusion_matrix(["cat", "dog"], [[8, 2], [1, 9]])
        scores.log_roc_curve(fpr=[0.0, 0.5, 1.0], tpr=[0.0, 0.8, 1.0],
                             threshold=[1.0, 0.5, 0.0])
        with open(page.path, "w") as f:
            f.write("<h1>Report</h1><script>document.body.innerHTML += '<p id=ran>ran</p>'"
                    "</script>")

    @dsl.pipeline(name="plots")
    def plots():
        classify()
''')


def _ketch(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ketch.cli", *args], env=server.env,
                          capture_output=True, text=True, timeout=240, check=False)


def _run(server: Any, path: Path, *params: str, wait: bool = True) -> dict[str, Any]:
    args = ["run", str(path), "-o", "json"]
    for p in params:
        args += ["-p", p]
    if wait:
        args.append("--wait")
    done = _ketch(server, *args)
    run: dict[str, Any] = json.loads(done.stdout)
    return run


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def _open_run(page: Page, server_url: str, name: str, task: str | None = None) -> None:
    from playwright.sync_api import expect

    query = f"?namespace=default{f'&task={task}' if task else ''}"
    page.goto(f"{server_url}/pipelines/runs/default/{name}{query}")
    expect(page.get_by_test_id("run-name")).to_have_text(name)


def test_run_page_draws_the_dag_with_states_outputs_logs_and_previews(
        page: Page, ketch_server: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    demo = _write(tmp_path, "demo.py", DEMO)
    first = _run(ketch_server, demo, "rows=5")
    assert first["status"]["phase"] == "Succeeded", first["status"]
    name = first["metadata"]["name"]

    # From the runs list to the run page.
    page.goto(f"{ketch_server.url}/pipelines?namespace=default")
    row = page.locator(f'[data-testid="runs-table"] tr[data-name="{name}"]')
    expect(row).to_contain_text("dashboard-demo")
    expect(row.locator(".badge")).to_have_text("Succeeded")
    row.click()
    expect(page).to_have_url(re.compile(rf"/pipelines/runs/default/{name}"))

    graph = page.get_by_test_id("run-graph")
    for task in ("make-data", "evaluate", "condition-branches-1",
                 "condition-branches-1/condition-2/announce"):
        expect(graph.locator(f'[data-task="{task}"]')).to_have_attribute("data-phase", "Succeeded")
    # The Else branch was not taken: skipped and dimmed.
    skipped = graph.locator('[data-task="condition-branches-1/condition-3"]')
    expect(skipped).to_have_attribute("data-phase", "Skipped")
    expect(skipped).to_have_css("opacity", "0.45")
    # make-data -> evaluate -> the condition group: edges drawn from the IR.
    expect(graph.locator('[data-edge="make-data->evaluate"]')).to_have_count(1)
    expect(graph.locator('[data-edge="evaluate->condition-branches-1"]')).to_have_count(1)

    # The loop lists its iterations (item, phase, tasks) in its panel...
    loop = graph.locator('[data-task="for-loop-5"]')
    expect(loop).to_contain_text("3 iterations")
    loop.click()
    iterations = page.get_by_test_id("loop-iterations")
    expect(iterations.locator("tbody tr")).to_have_count(3)
    expect(iterations.locator('tr[data-iteration="2"]')).to_contain_text("3")
    iterations.locator('[data-select="for-loop-5/2/square"]').click()
    expect(page).to_have_url(re.compile(r"task=for-loop-5%2F2%2Fsquare"))
    expect(page.get_by_test_id("task-outputs").locator('[data-param="Output"]')).to_contain_text("9")
    # ...and opens into them in the graph.
    graph.locator('[data-toggle="for-loop-5"]').click()
    for i, want in enumerate((1, 4, 9)):
        node = graph.locator(f'[data-task="for-loop-5/{i}/square"]')
        expect(node).to_have_attribute("data-phase", "Succeeded")
        node.click()
        expect(page.get_by_test_id("task-outputs").locator('[data-param="Output"]')).to_contain_text(
            str(want))

    # A task's panel: inputs, outputs, its log, a dataset head.
    graph.locator('[data-task="make-data"]').click()
    expect(page).to_have_url(re.compile(r"task=make-data"))
    panel = page.get_by_test_id("task-panel")
    expect(panel.get_by_test_id("task-inputs").locator('[data-param="rows"]')).to_contain_text("5")
    expect(panel.get_by_test_id("task-log")).to_contain_text("wrote 5 rows")
    head = panel.get_by_test_id("dataset-head")
    expect(head.locator("th")).to_have_text(["x", "y"])
    expect(head.locator("tbody tr")).to_have_count(5)
    expect(head.locator("tbody tr").nth(4)).to_have_text(re.compile(r"4\s*16"))

    # Metrics as a table, Markdown rendered without running its script.
    graph.locator('[data-task="evaluate"]').click()
    panel = page.get_by_test_id("task-panel")
    expect(panel.get_by_test_id("task-outputs").locator('[data-param="Output"]')).to_contain_text(
        "0.833333")
    metrics = panel.get_by_test_id("metrics-table")
    expect(metrics.locator('[data-metric="accuracy"] td').nth(1)).to_have_text("0.833333")
    expect(metrics.locator('[data-metric="rows"] td').nth(1)).to_have_text("5")
    markdown = panel.get_by_test_id("markdown-preview")
    expect(markdown.locator("h2")).to_have_text("Evaluation")
    expect(markdown.locator("strong")).to_have_text("5")
    expect(markdown).to_contain_text("<script>alert(1)</script>")  # shown as text
    expect(markdown.locator("script")).to_have_count(0)
    expect(panel.get_by_test_id("task-log")).to_contain_text("evaluated 5 rows")

    # The same run again is served from the cache: every step marked, linked back.
    second = _run(ketch_server, demo, "rows=5")
    _open_run(page, ketch_server.url, second["metadata"]["name"], task="make-data")
    graph = page.get_by_test_id("run-graph")
    for task in ("make-data", "evaluate"):
        node = graph.locator(f'[data-task="{task}"]')
        expect(node).to_have_attribute("data-cached", "true")
        expect(node.locator(".dag-cached-mark")).to_have_text("cached")
    cached_from = page.get_by_test_id("task-panel").get_by_test_id("cached-from")
    expect(cached_from).to_contain_text(name)
    cached_from.click()
    expect(page).to_have_url(re.compile(rf"/pipelines/runs/default/{name}\?"))
    expect(page.get_by_test_id("run-name")).to_have_text(name)


def test_classification_metrics_and_html_previews(page: Page, ketch_server: Any,
                                                  tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = _run(ketch_server, _write(tmp_path, "plots.py", PLOTS))
    assert run["status"]["phase"] == "Succeeded", run["status"]
    _open_run(page, ketch_server.url, run["metadata"]["name"], task="classify")
    panel = page.get_by_test_id("task-panel")

    matrix = panel.get_by_test_id("confusion-matrix")
    expect(matrix.locator("thead th")).to_have_text([re.compile("actual"), "cat", "dog"])
    for cell, value in (("0,0", "8"), ("0,1", "2"), ("1,0", "1"), ("1,1", "9")):
        expect(matrix.locator(f'[data-cell="{cell}"]')).to_have_text(value)
    roc = panel.get_by_test_id("roc-curve")
    expect(roc.locator("circle")).to_have_count(3)
    # Trapezoids under (0,0) (0.5,0.8) (1,1): 0.2 + 0.45.
    expect(roc.locator("figcaption")).to_have_text("ROC · AUC 0.650")

    # HTML in a sandboxed frame: rendered, its script never runs.
    frame_el = panel.get_by_test_id("html-preview")
    expect(frame_el).to_have_attribute("sandbox", "")
    frame = page.frame_locator('[data-testid="html-preview"]')
    expect(frame.locator("h1")).to_have_text("Report")
    expect(frame.locator("#ran")).to_have_count(0)


def _shown(page: Page, text: str) -> int:
    """How many times ``text`` is on screen (innerText leaves out folded parts)."""
    count: int = page.evaluate("t => document.body.innerText.split(t).length - 1", text)
    return count


def test_failed_run_shows_the_failure_and_traceback(page: Page, ketch_server: Any,
                                                    tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = _run(ketch_server, _write(tmp_path, "fails.py", FAILS))
    assert run["status"]["phase"] == "Failed"
    name = run["metadata"]["name"]
    assert "Traceback" in run["status"]["message"]  # the message holds the whole traceback

    # Home: the failed run's row stays one line: the exception, the rest on hover.
    page.goto(f"{ketch_server.url}/?namespace=default")
    row = page.locator(f'[data-testid="recent-activity"] tr[data-name="{name}"]')
    message = row.get_by_test_id("one-line-message")
    expect(message).to_have_text(re.compile(r"ValueError: exploded: bad data$"))
    expect(message).to_have_attribute("title", re.compile(r"Traceback \(most recent call last\)"))
    box = row.bounding_box()
    assert box is not None and box["height"] < 60, box

    # The row opens the run, on the step that failed it.
    row.click()
    expect(page).to_have_url(re.compile(rf"/pipelines/runs/default/{name}\?.*task=explode"))
    expect(page.locator(".page-head .badge")).to_have_text("Failed")
    banner = page.get_by_test_id("run-message")
    expect(banner).to_have_text(re.compile(r"explode failed: ValueError: exploded: bad data"))
    graph = page.get_by_test_id("run-graph")
    failed = graph.locator('[data-task="explode"]')
    expect(failed).to_have_attribute("data-phase", "Failed")
    expect(graph.locator('[data-task="after"]')).not_to_have_attribute("data-phase", "Succeeded")

    panel = page.get_by_test_id("task-panel")
    expect(panel).to_have_attribute("data-task", "explode")
    expect(panel.get_by_test_id("failure-headline")).to_contain_text("step failed (exit status 1)")
    traceback = panel.get_by_test_id("task-message")
    expect(traceback).to_contain_text("ValueError: exploded: bad data")
    log = panel.get_by_test_id("task-log")
    expect(log).to_contain_text("about to explode")
    # The log's copy of the traceback is folded once the log is in.
    expect(log.get_by_test_id("log-fold")).to_be_visible()

    # The traceback is on the page once, and starts at the user's own frame.
    lines = traceback.inner_text().splitlines()
    assert lines[0] == "Traceback (most recent call last):", lines
    assert lines[1].strip().startswith('File "<ephemeral_component:explode>"'), lines
    assert _shown(page, "Traceback (most recent call last)") == 1
    assert _shown(page, 'raise ValueError(f"exploded: {why}")') == 1
    assert _shown(page, "pipelines/_unit.py") == 0

    # Nothing is lost: ketch's frames and the log's copy are one click away.
    panel.get_by_test_id("toggle-ketch-frames").click()
    expect(traceback).to_contain_text("pipelines/_unit.py")
    log.get_by_test_id("log-fold").click()
    expect(log.get_by_test_id("job-logs")).to_contain_text('raise ValueError(f"exploded: {why}")')

    # A closed panel stays closed; the banner offers the traceback back.
    panel.get_by_title("Close").click()
    expect(page.get_by_test_id("task-panel")).to_have_count(0)
    banner.get_by_test_id("show-failure").click()
    expect(page.get_by_test_id("task-panel")).to_have_attribute("data-task", "explode")

    # The runs list filters by phase.
    page.goto(f"{ketch_server.url}/pipelines?namespace=default&phase=Succeeded")
    expect(page.locator(".empty-state")).to_contain_text("No runs match the filters")
    page.get_by_test_id("filter-phase").select_option("Failed")
    expect(page.locator('[data-testid="runs-table"] tbody tr')).to_have_count(1)


def test_running_run_is_live_and_cancel_stops_it(page: Page, ketch_server: Any,
                                                 tmp_path: Path) -> None:
    from playwright.sync_api import expect

    holds = _write(tmp_path, "holds.py", WAITS)
    flag = tmp_path / "release"
    run = _run(ketch_server, holds, f"flag={flag}", wait=False)
    name = run["metadata"]["name"]
    _open_run(page, ketch_server.url, name, task="hold")
    page.evaluate("window.__ketchNoReload = true")

    node = page.get_by_test_id("run-graph").locator('[data-task="hold"]')
    expect(node).to_have_attribute("data-phase", "Running", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("cancel-run")).to_be_enabled()
    # The log streams while the step runs.
    expect(page.get_by_test_id("task-log")).to_contain_text("holding until", timeout=RUN_TIMEOUT_MS)
    # Released: the node, the run and the outputs follow without a reload.
    flag.touch()
    expect(node).to_have_attribute("data-phase", "Succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(".page-head .badge")).to_have_text("Succeeded")
    expect(page.get_by_test_id("task-outputs").locator('[data-param="Output"]')).to_have_text(
        re.compile("released"))
    expect(page.get_by_test_id("cancel-run")).to_have_count(0)
    assert page.evaluate("window.__ketchNoReload === true"), "page reloaded"

    # A second run, held forever, is stopped from the page. (No task is selected:
    # the server's log follow of a killed step does not end yet, see the report.)
    other = _run(ketch_server, holds, f"flag={tmp_path / 'never'}", wait=False)["metadata"]["name"]
    _open_run(page, ketch_server.url, other)
    node = page.get_by_test_id("run-graph").locator('[data-task="hold"]')
    expect(node).to_have_attribute("data-phase", "Running", timeout=RUN_TIMEOUT_MS)
    page.get_by_test_id("cancel-run").click()
    expect(page.locator(".page-head .badge")).to_have_text("Cancelled", timeout=RUN_TIMEOUT_MS)
    expect(node).to_have_attribute("data-phase", "Cancelled", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("cancel-run")).to_have_count(0)
    with Client(ketch_server.url) as client:
        stored = client.get("pipelineruns", other)
    assert stored.spec["cancel"] is True
    assert stored.status["phase"] == "Cancelled"


def test_compare_runs_side_by_side(page: Page, ketch_server: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    demo = _write(tmp_path, "demo.py", DEMO)
    small = _run(ketch_server, demo, "rows=3")["metadata"]["name"]
    large = _run(ketch_server, demo, "rows=9")["metadata"]["name"]

    page.goto(f"{ketch_server.url}/pipelines?namespace=default")
    compare = page.get_by_test_id("compare-runs")
    expect(compare).to_be_disabled()
    for name in (small, large):
        page.get_by_label(f"Select {name}").check()
    compare.click()
    expect(page).to_have_url(re.compile(r"/pipelines/compare\?"))

    overview = page.get_by_test_id("compare-overview")
    expect(overview.locator("th[data-run]")).to_have_count(2)
    expect(overview).to_contain_text(small)
    expect(overview).to_contain_text(large)
    args = page.get_by_test_id("compare-arguments").locator('tr[data-row="rows"]')
    expect(args.locator("td")).to_have_text(["rows", "3", "9"])
    expect(args).to_have_class(re.compile(r"\bdiffers\b"))
    accuracy = page.get_by_test_id("compare-metrics").locator(
        'tr[data-row="evaluate · metrics · accuracy"]')
    expect(accuracy.locator("td")).to_have_text(["evaluate · metrics · accuracy", "0.75", "0.9"])
    outputs = page.get_by_test_id("compare-task-outputs").locator(
        'tr[data-row="condition-branches-1/condition-2/announce · Output"]')
    expect(outputs.locator("td")).to_have_text(
        ["condition-branches-1/condition-2/announce · Output", "good model", "good model"])
    expect(outputs).not_to_have_class(re.compile(r"\bdiffers\b"))


def test_run_again_with_edited_arguments(page: Page, ketch_server: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    first = _run(ketch_server, _write(tmp_path, "demo.py", DEMO), "rows=3")["metadata"]["name"]
    _open_run(page, ketch_server.url, first)
    page.get_by_test_id("run-again").click()
    form = page.get_by_test_id("run-again-form")
    rows = form.locator('[data-param-input="rows"]')
    expect(rows).to_have_value("3")

    # Wrong values are refused with the parameter named: by the page, then by the server.
    rows.fill("three")
    form.get_by_test_id("run-again-submit").click()
    expect(form.get_by_test_id("run-again-error")).to_contain_text("rows: not a NUMBER_INTEGER")
    rows.fill("1.5")
    form.get_by_test_id("run-again-submit").click()
    expect(form.get_by_test_id("run-again-error")).to_contain_text(
        "spec.arguments.rows: expected NUMBER_INTEGER")

    rows.fill("7")
    form.get_by_test_id("run-again-submit").click()
    expect(page.get_by_test_id("run-name")).not_to_have_text(first)
    expect(page.locator(".page-head .badge")).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("run-arguments").locator('[data-param="rows"]')).to_contain_text("7")
    with Client(ketch_server.url) as client:
        runs = {r.name: r for r in client.list("pipelineruns").items}
    assert len(runs) == 2
    again = runs[page.get_by_test_id("run-name").inner_text()]
    assert again.spec["arguments"] == {"rows": 7}
    assert again.status["phase"] == "Succeeded"


def test_pipeline_catalog_shows_versions_and_the_ir(page: Page, ketch_server: Any,
                                                    tmp_path: Path) -> None:
    from playwright.sync_api import expect

    demo = _write(tmp_path, "demo.py", DEMO)
    with Client(ketch_server.url) as client:
        client.upload_pipeline(str(demo), pipeline_name="demo-pipeline",
                               description="A demo for the dashboard")

    page.goto(f"{ketch_server.url}/pipelines?namespace=default")
    page.get_by_test_id("tab-catalog").click()
    row = page.locator('[data-testid="pipelines-table"] tr[data-name="demo-pipeline"]')
    expect(row).to_contain_text("A demo for the dashboard")
    row.click()
    expect(page.locator('[data-testid="versions-table"] tbody tr')).to_have_count(1)
    summary = page.get_by_test_id("ir-summary")
    expect(summary.get_by_test_id("ir-inputs")).to_contain_text("rows")
    expect(summary.get_by_test_id("ir-inputs")).to_contain_text("NUMBER_INTEGER")
    expect(summary.get_by_test_id("run-graph").locator('[data-task="evaluate"]')).to_have_count(1)

    # A run of the uploaded pipeline (pipelineRef, no inline IR) draws the version's DAG.
    with Client(ketch_server.url) as client:
        client.create_experiment("nightly-exp", description="Runs every night")
        client.create({"apiVersion": "pipelines.ketch.dev/v1", "kind": "PipelineRun",
                       "metadata": {"name": "from-ref"},
                       "spec": {"pipelineRef": {"name": "demo-pipeline"},
                                "arguments": {"rows": 2}, "experiment": "nightly-exp"}})
        client.create_recurring_run("nightly", pipeline_name="demo-pipeline",
                                    cron_expression="0 3 * * *", params={"rows": 4},
                                    description="the nightly evaluation")
    _open_run(page, ketch_server.url, "from-ref")
    node = page.get_by_test_id("run-graph").locator('[data-task="evaluate"]')
    expect(node).to_have_attribute("data-phase", "Succeeded", timeout=RUN_TIMEOUT_MS)

    page.locator(".crumbs a", has_text="Runs").click()
    page.get_by_test_id("tab-experiments").click()
    exp = page.locator('[data-testid="experiments-table"] tr[data-name="nightly-exp"]')
    expect(exp).to_contain_text("Runs every night")
    expect(exp.locator("td.num")).to_have_text("1")
    exp.click()
    expect(page).to_have_url(re.compile(r"/pipelines\?.*experiment=nightly-exp"))
    expect(page.locator('[data-testid="runs-table"] tbody tr')).to_have_count(1)
    expect(page.locator('[data-testid="runs-table"] tbody tr')).to_have_attribute(
        "data-name", "from-ref")

    page.get_by_test_id("tab-recurring").click()
    rr = page.locator('[data-testid="recurring-table"] tr[data-name="nightly"]')
    expect(rr).to_contain_text("cron 0 3 * * *")
    expect(rr).to_contain_text("demo-pipeline")
    expect(rr.locator(".badge")).to_have_text("Enabled")
    rr.get_by_test_id("toggle-nightly").click()
    expect(rr.locator(".badge")).to_have_text("Disabled")
    with Client(ketch_server.url) as client:
        assert client.get_recurring_run("nightly").spec["mode"] == "Disable"

    # Home shows each kind's real state: kinds with no phase are not "Unknown".
    page.goto(f"{ketch_server.url}/?namespace=default")
    table = page.get_by_test_id("recent-activity")
    states = {
        ("Pipeline", "demo-pipeline"): "1 version",
        ("Experiment", "nightly-exp"): "1 run",
        ("RecurringRun", "nightly"): "Disabled",
        ("PipelineRun", "from-ref"): "Succeeded",
    }
    for (kind, obj), want in states.items():
        cell = table.locator(f'tr[data-kind="{kind}"][data-name="{obj}"] td[data-state]')
        expect(cell).to_have_text(want)
    expect(table.locator('td[data-state="Unknown"]')).to_have_count(0)
