"""End-to-end test of the dashboard's Serving page, through system chromium.

An iris model is trained with scikit-learn (``examples/serving/train_iris.py``) and
deployed with the example InferenceService YAML on a real ``ketch up``; the page
must list it with its URL, readiness and traffic, show its revisions and
conditions, send a V2 request from the try-it form and get the model's own
prediction back, count that request in the live metrics, and show the model
server's log. Build the UI first (``cd ui && npm run build``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from _browser import page  # noqa: F401  (the fixture; tests/e2e is on sys.path)

from _modelserver import trained_iris
from conftest import ServerProcess, wait_for
from ketch import Client

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300),
              pytest.mark.usefixtures("stop_services")]

ROOT = Path(__file__).resolve().parents[2]
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def _deploy(client: Client, name: str, model_dir: Path) -> Any:
    doc = yaml.safe_load((ROOT / "examples" / "serving" / "iris.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["predictor"]["model"]["storageUri"] = f"file://{model_dir}"
    client.apply(doc)

    def ready() -> Any:
        obj = client.get("isvc", name)
        conds = {c["type"]: c["status"] for c in obj.status.get("conditions", [])}
        return obj if conds.get("Ready") == "True" else None

    return wait_for(ready, timeout=120, message=f"{name} Ready")


def test_serving_page_lists_the_service_and_try_it_predicts(
        page: Page, ketch_server: ServerProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    model = trained_iris(tmp_path / "iris")
    with Client(ketch_server.url) as client:
        svc = _deploy(client, "iris", tmp_path / "iris")
    url = svc.status["url"]
    revision = svc.status["components"]["predictor"]["traffic"][0]["revisionName"]

    # Home shows the service's state from its Ready condition (it has no phase),
    # and the row opens its page.
    page.goto(f"{ketch_server.url}/?namespace=default")
    home_row = page.locator('[data-testid="recent-activity"] tr[data-kind="InferenceService"]'
                            '[data-name="iris"]')
    expect(home_row.locator("td[data-state]")).to_have_text("Ready")
    home_row.click()
    expect(page.get_by_test_id("service-name")).to_have_text("iris")

    page.goto(f"{ketch_server.url}/serving?namespace=default")
    row = page.locator('[data-testid="services-table"] tr[data-name="iris"]')
    expect(row.locator(".badge")).to_have_text("Ready")
    expect(row).to_contain_text(url)
    expect(row.get_by_test_id("traffic").locator(f'[data-revision="{revision}"]')).to_contain_text(
        "100%")
    row.click()
    expect(page).to_have_url(re.compile(r"/serving\?.*service=default%2Firis"))
    expect(page.get_by_test_id("service-name")).to_have_text("iris")
    expect(page.get_by_test_id("service-url")).to_have_text(url)
    expect(page.get_by_test_id("conditions-table").locator('[data-condition="Ready"]')).to_contain_text(
        "True")
    rev = page.get_by_test_id("revisions-table").locator(f'tr[data-revision="{revision}"]')
    expect(rev).to_contain_text("100%")
    expect(rev).to_contain_text("1/1")

    # The try-it form is prefilled from the model's V2 metadata...
    try_it = page.get_by_test_id("try-it")
    request = try_it.get_by_test_id("try-request")
    expect(request).to_have_value(re.compile(r'"name":"input-0".*"datatype":"FP64"'))
    prefilled = json.loads(request.input_value())
    assert prefilled["inputs"][0]["shape"] == [1, 4]

    # ...and a real request gets the model's own predictions back.
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                        "data": SETOSA + VIRGINICA}]}
    request.fill(json.dumps(body))
    try_it.get_by_test_id("try-send").click()
    expect(try_it.get_by_test_id("try-status")).to_contain_text("200")
    want = [int(v) for v in model.predict([SETOSA, VIRGINICA])]
    assert want == [0, 2]
    out = try_it.get_by_test_id("try-outputs").locator('tr[data-output="output-0"]')
    expect(out).to_contain_text(json.dumps(want).replace(" ", ""))

    # A bad request shows the server's error and status, and the page stays usable.
    request.fill(json.dumps({"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                                         "data": [1, 2, 3]}]}))
    try_it.get_by_test_id("try-send").click()
    expect(try_it.get_by_test_id("try-status")).to_contain_text("400")
    expect(try_it.get_by_test_id("try-response")).to_contain_text("error")
    request.fill("{not json")
    try_it.get_by_test_id("try-send").click()
    expect(try_it.locator(".banner-error")).to_contain_text("not JSON")

    # The requests just sent show in the live metrics (polled every 2 s).
    metrics = page.get_by_test_id("serving-metrics")
    total = metrics.locator('[data-metric-card="total"] .metric-value')
    expect(total).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=20_000)
    # One revision took all of them: the observed split says so.
    expect(rev.locator(f'[data-observed="{revision}"]')).to_have_text("100%", timeout=20_000)
    expect(page.get_by_test_id("service-log")).to_contain_text("modelserver: serving 'iris'",
                                                               timeout=20_000)
