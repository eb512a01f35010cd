"""End-to-end test of the dashboard's Model Registry pages, through system chromium.

Models, versions and artifacts are seeded through the Kubeflow Model Registry
REST API (``/api/model_registry/v1``) of a real ``ketch up`` (the
``server_url`` fixture), then the Models list, a model's page and a version's
page are checked in the browser. Build the UI first (``cd ui && npm run build``).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from _browser import page  # noqa: F401  (the fixture; tests/e2e is on sys.path)
from test_dashboard import _png_colours
from test_dashboard_pipelines import _run, _write

from conftest import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
REGISTRY = "/api/model_registry/v1"

# Train in one step, register in the next, as examples/pipelines/wine_classifier.py does.
REGISTERS = textwrap.dedent('''
    from ketch import dsl
    from ketch.dsl import Input, Model, Output

    @dsl.component
    def train(model: Output[Model]):
        with open(model.path, "w") as f:
            f.write("weights")

    @dsl.component
    def register(model: Input[Model]) -> str:
        from ketch.registry.client import ModelRegistry
        ModelRegistry(author="pipeline").register_model(
            "from-pipeline", model.uri, version="v1", model_format_name="sklearn")
        return "v1"

    @dsl.pipeline(name="registers")
    def registers():
        trained = train()
        register(model=trained.outputs["model"])
''')


def _label() -> dict[str, str]:
    return {"string_value": "", "metadataType": "MetadataStringValue"}


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    res = http.post(f"{REGISTRY}{path}", json=body)
    assert res.status_code == 201, f"POST {path}: {res.status_code} {res.text}"
    data: dict[str, Any] = res.json()
    return data


@pytest.fixture
def seeded(server_url: str) -> dict[str, str]:
    """Two models (one archived), a version of the first with a model artifact."""
    with httpx.Client(base_url=server_url, timeout=30) as http:
        iris = _post(http, "/registered_models", {
            "name": "iris-classifier",
            "owner": "alice",
            "description": "Classifies iris flowers",
            "customProperties": {"vision": _label()},
        })
        v1 = _post(http, "/model_versions", {
            "name": "v1",
            "registeredModelId": iris["id"],
            "author": "alice",
            "customProperties": {
                "accuracy": {"double_value": 0.97, "metadataType": "MetadataDoubleValue"},
            },
        })
        _post(http, f"/model_versions/{v1['id']}/artifacts", {
            "artifactType": "model-artifact",
            "name": "iris-classifier",
            "uri": "file:///tmp/model.joblib",
            "modelFormatName": "sklearn",
            "modelFormatVersion": "1",
            "modelSourceKind": "job",
            "modelSourceName": "train-iris",
        })
        old = _post(http, "/registered_models", {"name": "old-sentiment", "owner": "carol"})
        res = http.patch(f"{REGISTRY}/registered_models/{old['id']}", json={"state": "ARCHIVED"})
        assert res.status_code == 200, res.text
        assert res.json()["state"] == "ARCHIVED"
    return {"model": iris["id"], "version": v1["id"], "archived": old["id"]}


def test_models_pages(
    page: Page, server_url: str, seeded: dict[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server_url}/?namespace=default")
    nav = page.get_by_role("navigation", name="Components")
    models_nav = nav.locator('[data-nav="models"]')
    expect(models_nav).to_have_attribute("href", re.compile(r"^/models"))
    models_nav.click()
    expect(page).to_have_url(re.compile(r"/models\?namespace=default$"))
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()

    table = page.get_by_test_id("models-table")
    rows = table.locator("tbody tr")
    iris = table.locator('tr[data-name="iris-classifier"]')
    old = table.locator('tr[data-name="old-sentiment"]')

    # Both models, with state badges, the label chip and the latest version.
    expect(rows).to_have_count(2)
    expect(iris.locator(".badge")).to_have_text("Live")
    expect(old.locator(".badge")).to_have_text("Archived")
    expect(iris.locator('.chip[data-label="vision"]')).to_be_visible()
    expect(iris.get_by_test_id("latest-version")).to_have_text("v1")
    expect(iris).to_contain_text("alice")

    # Search by name (name ILIKE "%...%", case-insensitive).
    search = page.get_by_test_id("model-search")
    search.fill("IRIS")
    expect(rows).to_have_count(1)
    expect(iris).to_be_visible()
    search.fill("")
    expect(rows).to_have_count(2)

    # State filter.
    states = page.get_by_role("group", name="State")
    states.get_by_role("button", name="Archived").click()
    expect(rows).to_have_count(1)
    expect(old).to_be_visible()
    states.get_by_role("button", name="Live").click()
    expect(rows).to_have_count(1)
    expect(iris).to_be_visible()
    states.get_by_role("button", name="All").click()
    expect(rows).to_have_count(2)

    # Label filter (`vision` = "").
    page.get_by_test_id("label-filter").locator('[data-label="vision"]').click()
    expect(rows).to_have_count(1)
    expect(iris).to_be_visible()
    page.get_by_test_id("label-filter").locator('[data-label="vision"]').click()
    expect(rows).to_have_count(2)

    # Model page: details and versions.
    iris.click()
    expect(page).to_have_url(re.compile(rf"/models/{seeded['model']}(\?|$)"))
    detail = page.get_by_test_id("model-detail")
    expect(detail.get_by_role("heading", name="iris-classifier")).to_be_visible()
    expect(detail).to_contain_text("Classifies iris flowers")
    versions = page.get_by_test_id("versions-table")
    v1 = versions.locator('tr[data-name="v1"]')
    expect(v1).to_be_visible()
    expect(v1).to_contain_text("alice")
    expect(v1.locator(".badge")).to_have_text("Live")

    # Version page: properties, artifact, source job link, deploy snippets.
    v1.locator("a").click()
    expect(page).to_have_url(
        re.compile(rf"/models/{seeded['model']}/versions/{seeded['version']}(\?|$)")
    )
    version = page.get_by_test_id("version-detail")
    expect(version.get_by_test_id("version-properties").locator('tr[data-key="accuracy"]')).to_contain_text("0.97")
    artifact = version.get_by_test_id("artifact").first
    expect(artifact).to_contain_text("file:///tmp/model.joblib")
    expect(artifact).to_contain_text("sklearn")
    job_link = version.get_by_test_id("source-job-link")
    expect(job_link).to_have_attribute("href", re.compile(r"^/jobs/default/train-iris(\?|$)"))
    expect(version.get_by_test_id("deploy-command")).to_contain_text(
        "ketch serve model-registry://iris-classifier/v1"
    )
    yaml = version.get_by_test_id("deploy-yaml")
    expect(yaml).to_contain_text("storageUri: model-registry://iris-classifier/v1")
    expect(yaml).to_contain_text("name: sklearn")

    shot = tmp_path / "model-version.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert len(data) > 10_000, f"screenshot suspiciously small ({len(data)} bytes)"
    assert _png_colours(data) > 64, "screenshot looks like a blank shell"
    body = page.inner_text("body")
    assert "iris-classifier" in body
    assert "0.97" in body

    # The source link opens the ketch Job page.
    job_link.click()
    expect(page).to_have_url(re.compile(r"/jobs/default/train-iris(\?|$)"))


def test_unknown_model_shows_not_found(page: Page, server_url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server_url}/models/999999?namespace=default")
    expect(page.get_by_role("heading", name="Model not found")).to_be_visible()


@pytest.mark.timeout(300)
def test_pipeline_registered_model_source_opens_the_run_and_task(
        page: Page, ketch_server: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    run = _run(ketch_server, _write(tmp_path, "registers.py", REGISTERS))
    assert run["status"]["phase"] == "Succeeded", run["status"]
    name = run["metadata"]["name"]
    with httpx.Client(base_url=ketch_server.url, timeout=30) as http:
        versions = http.get(f"{REGISTRY}/model_versions").json()["items"]
    [version] = versions
    model_id, version_id = version["registeredModelId"], version["id"]

    page.goto(f"{ketch_server.url}/models/{model_id}/versions/{version_id}?namespace=default")
    source = page.get_by_test_id("model-source")
    expect(source).to_contain_text("kfp")
    link = source.get_by_test_id("source-run-link")
    # The step that wrote the registered URI is found in the run's status.
    expect(link).to_have_text(f"default/{name} · train")
    expect(source.get_by_test_id("source-job-link")).to_have_count(0)
    link.click()

    expect(page).to_have_url(re.compile(rf"/pipelines/runs/default/{name}\?.*task=train"))
    expect(page.get_by_test_id("run-name")).to_have_text(name)
    expect(page.locator(".page-head .badge")).to_have_text("Succeeded")
    graph = page.get_by_test_id("run-graph")
    for task in ("train", "register"):
        expect(graph.locator(f'[data-task="{task}"]')).to_have_attribute("data-phase", "Succeeded")
    panel = page.get_by_test_id("task-panel")
    expect(panel).to_have_attribute("data-task", "train")
    expect(panel.get_by_test_id("task-artifacts")).to_be_visible()

    # A deleted run is said to be gone, not linked to a "not found" page.
    run_url = f"/apis/pipelines.ketch.dev/v1/namespaces/default/pipelineruns/{name}"
    with httpx.Client(base_url=ketch_server.url, timeout=30) as http:
        res = http.delete(run_url)
        assert res.status_code in (200, 202), res.text
        wait_for(lambda: http.get(run_url).status_code == 404, timeout=60, message="run deleted")
    page.goto(f"{ketch_server.url}/models/{model_id}/versions/{version_id}?namespace=default")
    expect(page.get_by_test_id("model-source").get_by_test_id("source-run-gone")).to_contain_text(
        "the run no longer exists")
