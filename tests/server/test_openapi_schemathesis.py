"""Property-based requests from the served OpenAPI document: no operation answers 500.

Schemathesis generates valid and invalid requests for every operation of the
kind routes and discovery routes of a real ``ketch server`` (SQLite) and checks
``not_a_server_error``. The streaming modes (``watch=true``, ``follow=true``)
are taken out of the document: an endless stream cannot be checked this way.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from conftest import ServerProcess, start_server

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 15
STREAMING_PARAMS = {"watch", "follow"}
# Routes that are a stream whatever their parameters (tested in test_api.py instead).
STREAMING_PATHS = {"/api/ketch/watch"}
SEED = {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "seed"},
        "spec": {"command": ["true"]}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'ketch.db'}")
    yield srv
    srv.kill(signal.SIGTERM)


def without_streaming(document: dict[str, Any]) -> dict[str, Any]:
    """The document less the parameters and routes that make an endless stream."""
    for path in STREAMING_PATHS:
        document["paths"].pop(path, None)
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [p for p in operation["parameters"]
                                           if p.get("name") not in STREAMING_PARAMS]
    return document


def test_no_operation_answers_a_server_error(server: ServerProcess) -> None:
    served = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert served.status_code == 200
    document = without_streaming(served.json())
    assert not any(p.get("name") in STREAMING_PARAMS
                   for item in document["paths"].values() for op in item.values()
                   if isinstance(op, dict) for p in op.get("parameters", []))
    created = httpx.post(f"{server.url}/apis/ketch.dev/v1/namespaces/default/jobs", json=SEED)
    assert created.status_code == 201, created.text

    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    tested: list[str] = []
    failures: list[str] = []
    codes: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if not operation.path.startswith(("/api", "/version", "/healthz", "/readyz")):
            continue
        strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE)]
        if "{name}" in operation.path:
            # Also aim at an object that exists, so writes get past the lookup.
            strategies.append(operation.as_strategy(
                GenerationMode.POSITIVE,
                path_parameters={"namespace": "default", "name": "seed"}))

        @settings(max_examples=MAX_EXAMPLES * len(strategies), deadline=None,
                  database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=server.url, session=session,
                                              checks=[not_a_server_error], timeout=30)
            codes[response.status_code] += 1

        try:
            check()
        except Exception as err:  # gather every operation's failure, then fail once
            failures.append(f"{label}: {err}")
        tested.append(label)
    session.close()

    assert server.proc.poll() is None, "the server died"
    paths = {label.split(" ", 1)[1] for label in tested}
    item = "/apis/ketch.dev/v1/namespaces/{namespace}/jobs/{name}"
    assert {item, f"{item}/status", f"{item}/log", "/apis/ketch.dev/v1/jobs", "/apis",
            "/apis/{group}/{version}", "/api/v1/namespaces", "/version"} <= paths, paths
    # Every route family: the pipelines (KFP-shaped) and serving kinds, and lineage.
    ns = "/namespaces/{namespace}"
    assert {f"/apis/pipelines.ketch.dev/v1{ns}/pipelineruns/{{name}}",
            f"/apis/pipelines.ketch.dev/v1{ns}/experiments",
            f"/apis/pipelines.ketch.dev/v1{ns}/recurringruns/{{name}}",
            f"/apis/serving.kserve.io/v1beta1{ns}/inferenceservices/{{name}}",
            "/api/ketch/lineage/artifacts", "/api/ketch/lineage/executions/{execution_id}",
            } <= paths, sorted(paths)
    assert len(tested) >= 14, tested
    assert not failures, "\n\n".join(failures)
    # The requests reached the handlers: successes and rejected input both.
    assert codes[200] and codes[422] and codes[404], codes
    assert sum(codes.values()) >= len(tested) * MAX_EXAMPLES, codes
