"""Property-based requests against the Model Registry routes of a real ``ketch up``
(SQLite): no generated request answers 500.

The registry handlers read their path, query and body by hand, so the served
OpenAPI document describes them without parameters or bodies. The test fills
that in (the ``id`` path parameter, the paging / find / filter query parameters,
a JSON-object body for POST and PATCH) so schemathesis reaches the handlers with
both well-formed and hostile input. Only ``/api/model_registry/v1`` is fuzzed:
the ``v1alpha3`` duplicates are left out of the document.
"""

from __future__ import annotations

import copy
import signal
import time
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

PREFIX = "/api/model_registry/v1"
MAX_EXAMPLES = 12
BUDGET_S = 90

_STRING = {"type": "string"}
LIST_PARAMS = {
    "pageSize": {"type": "string", "pattern": "^[0-9]{1,3}$"},
    "orderBy": {"type": "string", "enum": ["CREATE_TIME", "LAST_UPDATE_TIME", "ID"]},
    "sortOrder": {"type": "string", "enum": ["ASC", "DESC"]},
    "nextPageToken": _STRING,
    "filterQuery": _STRING,
    "artifactType": {"type": "string", "enum": ["model-artifact", "doc-artifact",
                                                "dataset-artifact", "metric", "parameter"]},
    "name": _STRING,
    "externalId": _STRING,
}
FIND_PARAMS = {"name": _STRING, "externalId": _STRING, "parentResourceId": _STRING}
_ID = {"type": "string", "pattern": "^[1-9][0-9]{0,1}$"}


def _variant(kind: str, field: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "required": ["metadataType", field],
            "properties": {"metadataType": {"type": "string", "enum": [kind]}, field: schema}}


METADATA_VALUE = {"oneOf": [
    _variant("MetadataStringValue", "string_value", _STRING),
    _variant("MetadataIntValue", "int_value", {"type": "string", "pattern": "^-?[1-9][0-9]{0,8}$"}),
    _variant("MetadataDoubleValue", "double_value", {"type": "number"}),
    _variant("MetadataBoolValue", "bool_value", {"type": "boolean"}),
]}
COMMON = {"description": _STRING, "externalId": _STRING,
          "customProperties": {"type": "object", "additionalProperties": METADATA_VALUE}}
CONTEXT_STATE = {"type": "string", "enum": ["LIVE", "ARCHIVED"]}
ARTIFACT = {"artifactType": LIST_PARAMS["artifactType"], "name": _STRING, "uri": _STRING,
            "id": _ID, "state": {"type": "string", "enum": ["UNKNOWN", "LIVE", "PENDING"]}}
ISVC = {"name": _STRING, "registeredModelId": _ID, "servingEnvironmentId": _ID,
        "modelVersionId": _ID, "runtime": _STRING,
        "desiredState": {"type": "string", "enum": ["DEPLOYED", "UNDEPLOYED"]}}
# Body fields per route family (the longest matching suffix of the path wins).
BODIES: dict[str, dict[str, Any]] = {
    "/registered_models": {"name": _STRING, "state": CONTEXT_STATE, "owner": _STRING},
    "/versions": {"name": _STRING, "registeredModelId": _ID, "state": CONTEXT_STATE,
                  "author": _STRING},
    "/model_versions": {"name": _STRING, "registeredModelId": _ID, "state": CONTEXT_STATE,
                        "author": _STRING},
    "/artifacts": ARTIFACT,
    "/model_artifacts": {**ARTIFACT, "artifactType": {"type": "string",
                                                      "enum": ["model-artifact"]},
                         "modelFormatName": _STRING},
    "/serving_environments": {"name": _STRING},
    "/inference_services": ISVC,
    "/serves": {"name": _STRING, "modelVersionId": _ID, "lastKnownState": {
        "type": "string", "enum": ["UNKNOWN", "RUNNING", "COMPLETE"]}},
    "/experiments": {"name": _STRING, "owner": _STRING, "state": CONTEXT_STATE},
    "/experiment_runs": {"name": _STRING, "experimentId": _ID, "status": {
        "type": "string", "enum": ["RUNNING", "FINISHED"]}},
}


def body_schema(path: str) -> dict[str, Any]:
    """The JSON body schema for a POST or PATCH on ``path``."""
    collection = path.removesuffix("/{id}")
    for suffix in sorted(BODIES, key=len, reverse=True):
        if collection.endswith(suffix):
            return {"type": "object", "additionalProperties": False,
                    "properties": {**COMMON, **BODIES[suffix]}}
    return {"type": "object"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path / "home", command="up",
                       database_url=f"sqlite:///{tmp_path / 'ketch.db'}")
    yield srv
    srv.kill(signal.SIGTERM)


def registry_document(served: dict[str, Any]) -> dict[str, Any]:
    """The served document, registry v1 routes only, with parameters and bodies."""
    document = copy.deepcopy(served)
    document["paths"] = {p: item for p, item in served["paths"].items()
                         if p.startswith(PREFIX + "/")}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            params = {p["name"]: p for p in operation.get("parameters", [])}
            if "{id}" in path:
                # Plausible ids when positive; the negative mode sends anything.
                params.setdefault("id", {"name": "id", "in": "path", "required": True,
                                         "schema": {"type": "string",
                                                    "pattern": "^[0-9]{1,3}$"}})
            last = path.rsplit("/", 1)[1]
            if method != "get" or last in ("{id}", "model", "version"):
                query: dict[str, Any] = {}
            elif last.endswith("s"):  # a list: plain or nested
                query = dict(LIST_PARAMS)
            else:  # a find-one route
                query = dict(FIND_PARAMS)
            query["namespace"] = {"type": "string", "enum": ["default", "team-x"]}
            for name, schema in query.items():
                params.setdefault(name, {"name": name, "in": "query", "required": False,
                                         "schema": schema})
            operation["parameters"] = list(params.values())
            if method in ("post", "patch") and "requestBody" not in operation:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": body_schema(path)}}}
    return document


def seed(url: str) -> None:
    """One of each entity, so ids 1.. exist and writes get past their lookups."""
    with httpx.Client(base_url=url + PREFIX, timeout=30) as c:
        rm = c.post("/registered_models", json={"name": "seed"}).json()
        mv = c.post("/model_versions", json={"name": "v1", "registeredModelId": rm["id"]}).json()
        c.post(f"/model_versions/{mv['id']}/artifacts",
               json={"artifactType": "model-artifact", "uri": "s3://b/k"}).raise_for_status()
        env = c.post("/serving_environments", json={"name": "seed"}).json()
        c.post("/inference_services", json={
            "name": "seed", "registeredModelId": rm["id"], "servingEnvironmentId": env["id"],
            "modelVersionId": mv["id"], "desiredState": "UNDEPLOYED"}).raise_for_status()


def test_no_registry_operation_answers_a_server_error(server: ServerProcess) -> None:
    served = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert not any("v1alpha3" in p for p in served.json()["paths"])
    document = registry_document(served.json())
    seed(server.url)

    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    tested: list[str] = []
    failures: list[str] = []
    codes: Counter[int] = Counter()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE)]
        if "{id}" in operation.path:
            # Also aim at ids that exist.
            strategies.append(operation.as_strategy(
                GenerationMode.POSITIVE,
                path_parameters={"id": st.sampled_from(["1", "2", "3", "4", "5"])}))  # type: ignore[dict-item]

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
    elapsed = time.monotonic() - started

    assert server.proc.poll() is None, "the server died"
    assert not failures, "\n\n".join(failures)
    paths = {label.split(" ", 1)[1] for label in tested}
    assert {f"{PREFIX}/registered_models", f"{PREFIX}/registered_models/{{id}}",
            f"{PREFIX}/model_versions/{{id}}/artifacts", f"{PREFIX}/model_version",
            f"{PREFIX}/inference_services/{{id}}/serves"} <= paths, paths
    assert len(tested) >= 50, tested
    # The requests reached the handlers: successes, rejections and misses.
    assert codes[200] and codes[400] and codes[404], codes
    assert sum(codes.values()) >= len(tested) * MAX_EXAMPLES, codes
    assert elapsed < BUDGET_S * 1.5, f"took {elapsed:.0f}s"
