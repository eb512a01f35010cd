"""The Model Registry REST API (``/api/model_registry/v1`` and ``v1alpha3``) over
HTTP against a real ``ketch up``, on SQLite and on PostgreSQL.

Checks the upstream contract (docs/design/registry-api-notes.md): shapes, status
codes, error bodies naming the field, PATCH semantics, paging tokens,
filterQuery, plus ketch's extensions (DELETE with the deployed-service guard,
the ``namespace`` parameter) and ketch's own SDK (``ketch.registry.client``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, backend_server

pytestmark = pytest.mark.slow

V1 = "/api/model_registry/v1"
V1ALPHA3 = "/api/model_registry/v1alpha3"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def registry_server(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = backend_server(request, tmp_path_factory, "registry-api")
    yield server
    server.kill(15)


@pytest.fixture
def api(registry_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry_server.url + V1, timeout=30) as c:
        yield c


@pytest.fixture
def alpha(registry_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry_server.url + V1ALPHA3, timeout=30) as c:
        yield c


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


def error(response: httpx.Response, status: int, *needles: str) -> str:
    """Assert an upstream-shaped error with ``status`` whose message has ``needles``."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert isinstance(body["code"], str) and body["code"], body
    for needle in needles:
        assert needle in body["message"], (needle, body)
    return str(body["message"])


def prop_str(value: str) -> dict[str, Any]:
    return {"string_value": value, "metadataType": "MetadataStringValue"}


def prop_int(value: int) -> dict[str, Any]:
    return {"int_value": str(value), "metadataType": "MetadataIntValue"}


def prop_double(value: float) -> dict[str, Any]:
    return {"double_value": value, "metadataType": "MetadataDoubleValue"}


def prop_bool(value: bool) -> dict[str, Any]:
    return {"bool_value": value, "metadataType": "MetadataBoolValue"}


def assert_common(entity: dict[str, Any]) -> None:
    assert isinstance(entity["id"], str) and entity["id"].isdigit(), entity
    for stamp in ("createTimeSinceEpoch", "lastUpdateTimeSinceEpoch"):
        assert isinstance(entity[stamp], str) and entity[stamp].isdigit(), entity
        # milliseconds since the epoch, and recent
        assert abs(int(entity[stamp]) - time.time() * 1000) < 3_600_000, entity
    assert isinstance(entity["customProperties"], dict), entity


def assert_list(page: dict[str, Any]) -> None:
    assert set(page) == {"items", "nextPageToken", "pageSize", "size"}, page
    assert isinstance(page["items"], list) and isinstance(page["nextPageToken"], str)
    assert isinstance(page["pageSize"], int) and page["size"] == len(page["items"])


def new_model(api: httpx.Client, name: str | None = None, **fields: Any) -> dict[str, Any]:
    return ok(api.post("/registered_models", json={"name": name or uniq("rm"), **fields}),
              201)  # type: ignore[no-any-return]


def new_version(api: httpx.Client, model_id: str, name: str = "v1",
                **fields: Any) -> dict[str, Any]:
    return ok(api.post("/model_versions", json={"name": name, "registeredModelId": model_id,
                                                **fields}), 201)  # type: ignore[no-any-return]


def new_artifact(api: httpx.Client, version_id: str, **fields: Any) -> dict[str, Any]:
    body = {"artifactType": "model-artifact", "uri": "s3://bucket/model", **fields}
    return ok(api.post(f"/model_versions/{version_id}/artifacts", json=body),
              201)  # type: ignore[no-any-return]


def count(api: httpx.Client, path: str, **params: str) -> int:
    page = ok(api.get(path, params=params))
    return int(page["size"])


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


# -- create / get / list / patch ----------------------------------------------------------------


def test_registered_model_crud_and_shapes(api: httpx.Client, alpha: httpx.Client) -> None:
    name = uniq("crud")
    rm = new_model(api, name, description="d", owner="alice", tasks=["classification"],
                   customProperties={"s": prop_str("x"), "i": prop_int(42),
                                     "f": prop_double(0.5), "b": prop_bool(True)})
    assert_common(rm)
    assert rm["name"] == name and rm["state"] == "LIVE" and rm["owner"] == "alice"
    assert rm["tasks"] == ["classification"]
    assert rm["customProperties"] == {"s": prop_str("x"), "i": prop_int(42),
                                      "f": prop_double(0.5), "b": prop_bool(True)}
    assert ok(api.get(f"/registered_models/{rm['id']}")) == rm
    # Both prefixes serve the same data.
    assert ok(alpha.get(f"/registered_models/{rm['id']}")) == rm
    assert ok(api.get("/registered_model", params={"name": name})) == rm
    assert ok(alpha.get("/registered_model", params={"name": name})) == rm

    page = ok(api.get("/registered_models"))
    assert_list(page)
    assert page["pageSize"] == 0 and page["nextPageToken"] == ""
    assert name in names(page)
    assert names(ok(alpha.get("/registered_models"))) == names(page)

    # An empty model gets customProperties {}.
    bare = new_model(api)
    assert bare["customProperties"] == {}


def test_model_version_flat_and_nested(api: httpx.Client, alpha: httpx.Client) -> None:
    rm = new_model(api)
    flat = new_version(api, rm["id"], "v1", author="bob",
                       customProperties={"acc": prop_double(0.9)})
    assert_common(flat)
    assert flat["registeredModelId"] == rm["id"] and flat["state"] == "LIVE"
    assert flat["author"] == "bob"
    nested = ok(api.post(f"/registered_models/{rm['id']}/versions",
                         json={"name": "v2", "registeredModelId": rm["id"]}), 201)
    assert nested["registeredModelId"] == rm["id"]
    # The path's parent wins when the body does not name one.
    nested3 = ok(alpha.post(f"/registered_models/{rm['id']}/versions", json={"name": "v3",
                            "registeredModelId": rm["id"]}), 201)
    assert nested3["registeredModelId"] == rm["id"]

    assert ok(api.get(f"/model_versions/{flat['id']}")) == flat
    listed = ok(api.get(f"/registered_models/{rm['id']}/versions"))
    assert_list(listed)
    assert names(listed) == ["v1", "v2", "v3"]
    assert names(ok(alpha.get(f"/registered_models/{rm['id']}/versions"))) == ["v1", "v2", "v3"]
    by_name = ok(api.get(f"/registered_models/{rm['id']}/versions", params={"name": "v2"}))
    assert [v["id"] for v in by_name["items"]] == [nested["id"]]
    assert {v["id"] for v in ok(api.get("/model_versions"))["items"]} >= {
        flat["id"], nested["id"], nested3["id"]}
    # A list under a missing parent is empty (upstream).
    assert ok(api.get("/registered_models/999999/versions"))["items"] == []

    found = ok(api.get("/model_version", params={"name": "v2", "parentResourceId": rm["id"]}))
    assert found["id"] == nested["id"]


def test_model_artifact_upsert_and_doc_artifact(api: httpx.Client) -> None:
    rm = new_model(api)
    mv = new_version(api, rm["id"])
    art = new_artifact(api, mv["id"], name=rm["name"], modelFormatName="onnx",
                       modelFormatVersion="1", storagePath="p",
                       customProperties={"k": prop_str("v")})
    assert_common(art)
    assert art["artifactType"] == "model-artifact" and art["state"] == "UNKNOWN"
    assert art["uri"] == "s3://bucket/model" and art["modelFormatName"] == "onnx"
    # Upsert with an existing id -> 200, updated, same id.
    again = ok(api.post(f"/model_versions/{mv['id']}/artifacts",
                        json={"id": art["id"], "artifactType": "model-artifact",
                              "uri": "s3://bucket/v2"}), 200)
    assert again["id"] == art["id"] and again["uri"] == "s3://bucket/v2"
    assert again["modelFormatName"] == "onnx"  # kept
    assert ok(api.get(f"/model_artifacts/{art['id']}"))["uri"] == "s3://bucket/v2"
    assert ok(api.get(f"/artifacts/{art['id']}"))["artifactType"] == "model-artifact"

    doc = ok(api.post(f"/model_versions/{mv['id']}/artifacts",
                      json={"artifactType": "doc-artifact", "name": "readme",
                            "uri": "https://example.com/readme.md"}), 201)
    assert doc["artifactType"] == "doc-artifact"
    assert_common(doc)
    listed = ok(api.get(f"/model_versions/{mv['id']}/artifacts"))
    assert_list(listed)
    assert {a["artifactType"] for a in listed["items"]} == {"model-artifact", "doc-artifact"}
    only_docs = ok(api.get(f"/model_versions/{mv['id']}/artifacts",
                           params={"artifactType": "doc-artifact"}))
    assert [a["id"] for a in only_docs["items"]] == [doc["id"]]
    patched = ok(api.patch(f"/artifacts/{doc['id']}",
                           json={"artifactType": "doc-artifact", "state": "LIVE"}))
    assert patched["state"] == "LIVE" and patched["uri"] == "https://example.com/readme.md"
    patched = ok(api.patch(f"/model_artifacts/{art['id']}", json={"modelFormatVersion": "2"}))
    assert patched["modelFormatVersion"] == "2" and patched["artifactType"] == "model-artifact"

    found = ok(api.get("/model_artifact", params={"name": rm["name"],
                                                 "parentResourceId": mv["id"]}))
    assert found["id"] == art["id"]
    assert ok(api.get("/artifact", params={"name": "readme",
                                          "parentResourceId": mv["id"]}))["id"] == doc["id"]


def test_serving_environment_inference_service_serve_model(api: httpx.Client) -> None:
    rm = new_model(api)
    mv = new_version(api, rm["id"])
    env_name = uniq("env")
    env = ok(api.post("/serving_environments", json={"name": env_name, "description": "e"}), 201)
    assert_common(env)
    assert ok(api.get(f"/serving_environments/{env['id']}")) == env
    assert ok(api.get("/serving_environment", params={"name": env_name}))["id"] == env["id"]
    env2 = ok(api.patch(f"/serving_environments/{env['id']}", json={"description": "e2"}))
    assert env2["description"] == "e2"

    isvc = ok(api.post(f"/serving_environments/{env['id']}/inference_services",
                       json={"name": uniq("isvc"), "registeredModelId": rm["id"],
                             "servingEnvironmentId": env["id"], "runtime": "sklearn",
                             "desiredState": "UNDEPLOYED"}), 201)
    assert_common(isvc)
    assert isvc["servingEnvironmentId"] == env["id"] and isvc["registeredModelId"] == rm["id"]
    assert ok(api.get(f"/inference_services/{isvc['id']}")) == isvc
    listed = ok(api.get(f"/serving_environments/{env['id']}/inference_services"))
    assert [i["id"] for i in listed["items"]] == [isvc["id"]]
    assert ok(api.get("/inference_service", params={
        "name": isvc["name"], "parentResourceId": env["id"]}))["id"] == isvc["id"]
    # No modelVersionId: /version is the latest version; /model the model.
    assert ok(api.get(f"/inference_services/{isvc['id']}/model"))["id"] == rm["id"]
    assert ok(api.get(f"/inference_services/{isvc['id']}/version"))["id"] == mv["id"]
    isvc2 = ok(api.patch(f"/inference_services/{isvc['id']}",
                         json={"modelVersionId": mv["id"], "runtime": "onnx"}))
    assert isvc2["modelVersionId"] == mv["id"] and isvc2["runtime"] == "onnx"
    assert isvc2["desiredState"] == "UNDEPLOYED"

    serve = ok(api.post(f"/inference_services/{isvc['id']}/serves",
                        json={"modelVersionId": mv["id"], "lastKnownState": "RUNNING"}), 201)
    assert_common(serve)
    assert serve["lastKnownState"] == "RUNNING" and serve["name"]
    serves = ok(api.get(f"/inference_services/{isvc['id']}/serves"))
    assert [s["id"] for s in serves["items"]] == [serve["id"]]
    error(api.post(f"/inference_services/{isvc['id']}/serves",
                   json={"modelVersionId": mv["id"], "lastKnownState": "SLEEPING"}), 400,
          "lastKnownState")
    # A link to a version that does not exist is refused.
    error(api.post(f"/inference_services/{isvc['id']}/serves",
                   json={"modelVersionId": "999999"}), 404)


def test_experiments_on_v1alpha3(alpha: httpx.Client) -> None:
    name = uniq("exp")
    exp = ok(alpha.post("/experiments", json={"name": name, "owner": "carol"}), 201)
    assert_common(exp)
    assert exp["state"] == "LIVE" and exp["owner"] == "carol"
    assert ok(alpha.get(f"/experiments/{exp['id']}")) == exp
    assert ok(alpha.get("/experiment", params={"name": name}))["id"] == exp["id"]
    run = ok(alpha.post(f"/experiments/{exp['id']}/experiment_runs",
                        json={"experimentId": exp["id"], "name": "run-1",
                              "status": "RUNNING"}), 201)
    assert_common(run)
    assert run["experimentId"] == exp["id"] and run["status"] == "RUNNING"
    run = ok(alpha.patch(f"/experiment_runs/{run['id']}", json={"status": "FINISHED"}))
    assert run["status"] == "FINISHED"
    runs = ok(alpha.get(f"/experiments/{exp['id']}/experiment_runs"))
    assert [r["id"] for r in runs["items"]] == [run["id"]]
    metric = ok(alpha.post(f"/experiment_runs/{run['id']}/artifacts",
                           json={"artifactType": "metric", "name": "loss", "value": 0.25,
                                 "step": "1"}), 201)
    assert metric["artifactType"] == "metric" and metric["value"] == 0.25
    arts = ok(alpha.get(f"/experiment_runs/{run['id']}/artifacts"))
    assert [a["id"] for a in arts["items"]] == [metric["id"]]
    error(alpha.post(f"/experiments/{exp['id']}/experiment_runs",
                     json={"experimentId": exp["id"], "status": "BORED"}), 400, "status")


# -- find-one -----------------------------------------------------------------------------------


def test_find_one_routes(api: httpx.Client) -> None:
    ext = uniq("ext")
    rm = new_model(api, externalId=ext)
    assert ok(api.get("/registered_model", params={"externalId": ext}))["id"] == rm["id"]
    error(api.get("/registered_model"), 400, "name")
    error(api.get("/registered_model", params={"name": uniq("nope")}), 404)
    error(api.get("/registered_model", params={"externalId": uniq("nope")}), 404)

    mv = new_version(api, rm["id"], "v1", externalId=uniq("mvext"))
    assert ok(api.get("/model_version", params={"externalId": mv["externalId"]}))["id"] == mv["id"]
    error(api.get("/model_version"), 400)
    error(api.get("/model_version", params={"name": "v9", "parentResourceId": rm["id"]}), 404)
    for bad in ("abc", "\u00b3"):
        error(api.get("/model_version", params={"name": "v1", "parentResourceId": bad}), 400,
              "parentResourceId")
    error(api.get("/model_artifact"), 400)
    error(api.get("/serving_environment", params={"name": uniq("nope")}), 404)


# -- bad input ----------------------------------------------------------------------------------


def test_conflicts(api: httpx.Client) -> None:
    rm = new_model(api)
    before = count(api, "/registered_models")
    error(api.post("/registered_models", json={"name": rm["name"]}), 409, rm["name"])
    assert count(api, "/registered_models") == before

    mv = new_version(api, rm["id"], "v1")
    error(api.post("/model_versions", json={"name": "v1", "registeredModelId": rm["id"]}), 409,
          "v1")
    error(api.post(f"/registered_models/{rm['id']}/versions", json={"name": "v1",
          "registeredModelId": rm["id"]}), 409, "v1")
    assert count(api, f"/registered_models/{rm['id']}/versions") == 1
    other = new_model(api)
    assert new_version(api, other["id"], "v1")["id"] != mv["id"]  # same name, other model: 201

    ext = uniq("ext")
    new_model(api, externalId=ext)
    before = count(api, "/registered_models")
    error(api.post("/registered_models", json={"name": uniq("rm"), "externalId": ext}), 409,
          ext)
    assert count(api, "/registered_models") == before
    # externalId taken by another model via PATCH -> 409, unchanged.
    error(api.patch(f"/registered_models/{rm['id']}", json={"externalId": ext}), 409, ext)
    assert "externalId" not in ok(api.get(f"/registered_models/{rm['id']}"))

    env = ok(api.post("/serving_environments", json={"name": uniq("env")}), 201)
    error(api.post("/serving_environments", json={"name": env["name"]}), 409, env["name"])


def test_ids(api: httpx.Client) -> None:
    error(api.get("/registered_models/999999"), 404, "999999")
    error(api.patch("/registered_models/999999", json={"description": "x"}), 404)
    error(api.delete("/registered_models/999999"), 404)
    # "\u00b3" (superscript three) passes str.isdigit() but not int(): once a 500.
    for bad in ("abc", "0", "-1", "99999999999", "1.5", "\u00b3", "\u0663"):
        error(api.get(f"/registered_models/{bad}"), 400, "id")
        error(api.patch(f"/model_versions/{bad}", json={}), 400, "id")
    # An id of another type is not found.
    rm = new_model(api)
    mv = new_version(api, rm["id"])
    error(api.get(f"/model_versions/{rm['id']}"), 404)
    error(api.get(f"/registered_models/{mv['id']}"), 404)
    # A version under a model that does not exist: 404, nothing written.
    before = count(api, "/model_versions")
    error(api.post("/model_versions", json={"name": "v1", "registeredModelId": "999999"}), 404)
    error(api.post("/registered_models/999999/versions", json={"name": "v1",
                                                                "registeredModelId": "999999"}),
          404)
    error(api.post("/model_versions/999999/artifacts",
                   json={"artifactType": "model-artifact", "uri": "x"}), 404)
    assert count(api, "/model_versions") == before


@pytest.mark.parametrize(("props", "key"), [
    ({"acc": {"int_value": "abc", "metadataType": "MetadataIntValue"}}, "acc"),
    ({"big": {"int_value": "12345678901", "metadataType": "MetadataIntValue"}}, "big"),
    ({"nometa": {"string_value": "x"}}, "nometa"),
    ({"dbl": {"double_value": "x", "metadataType": "MetadataDoubleValue"}}, "dbl"),
    ({"kind": {"string_value": "x", "metadataType": "MetadataMagicValue"}}, "kind"),
    ({"extra": {"string_value": "x", "bool_value": True,
                "metadataType": "MetadataStringValue"}}, "extra"),
    ({"flag": {"bool_value": "yes", "metadataType": "MetadataBoolValue"}}, "flag"),
    ({"plain": "value"}, "plain"),
])
def test_bad_custom_properties(api: httpx.Client, props: dict[str, Any], key: str) -> None:
    before = count(api, "/registered_models")
    error(api.post("/registered_models", json={"name": uniq("rm"), "customProperties": props}),
          400, f"customProperties.{key}")
    assert count(api, "/registered_models") == before
    rm = new_model(api, customProperties={"keep": prop_str("me")})
    error(api.patch(f"/registered_models/{rm['id']}", json={"customProperties": props}), 400,
          f"customProperties.{key}")
    assert ok(api.get(f"/registered_models/{rm['id']}")) == rm  # untouched
    mv_before = count(api, "/model_versions")
    error(api.post("/model_versions", json={"name": "v1", "registeredModelId": rm["id"],
                                            "customProperties": props}), 400,
          f"customProperties.{key}")
    assert count(api, "/model_versions") == mv_before


def test_bad_bodies(api: httpx.Client) -> None:
    before = count(api, "/registered_models")
    error(api.post("/registered_models", json={"name": uniq("rm"), "colour": "blue"}), 400,
          "colour")
    error(api.post("/registered_models", json={"description": "no name"}), 422, "name")
    error(api.post("/registered_models", json={"name": uniq("rm"), "state": "DEAD"}), 400,
          "state")
    error(api.post("/registered_models", content=b'{"name": "x",', headers={
        "Content-Type": "application/json"}), 400, "JSON")
    error(api.post("/registered_models", json=["not", "an", "object"]), 400)
    error(api.post("/registered_models", json={"name": ""}), 400, "name")
    assert count(api, "/registered_models") == before

    rm = new_model(api)
    error(api.patch(f"/registered_models/{rm['id']}", json={"state": "GONE"}), 400, "state")
    error(api.patch(f"/registered_models/{rm['id']}", json={"bogus": 1}), 400, "bogus")
    error(api.patch(f"/registered_models/{rm['id']}", content=b"{nope"), 400)
    assert ok(api.get(f"/registered_models/{rm['id']}")) == rm

    error(api.post("/model_versions", json={"name": "v1"}), 422, "registeredModelId")
    error(api.post("/model_versions", json={"name": "v1", "registeredModelId": "abc"}), 400,
          "registeredModelId")
    mv = new_version(api, rm["id"])
    error(api.post(f"/model_versions/{mv['id']}/artifacts", json={"uri": "x"}), 400,
          "artifactType")
    error(api.post(f"/model_versions/{mv['id']}/artifacts",
                   json={"artifactType": "model-artifact", "state": "SHINY"}), 400, "state")
    error(api.post(f"/model_versions/{mv['id']}/artifacts",
                   json={"artifactType": "model-artifact", "color": "red"}), 400, "color")
    assert count(api, f"/model_versions/{mv['id']}/artifacts") == 0
    error(api.get("/artifacts", params={"artifactType": "painting"}), 400, "artifactType")


@pytest.mark.parametrize(("params", "field"), [
    ({"pageSize": "abc"}, "pageSize"),
    ({"pageSize": "-1"}, "pageSize"),
    ({"pageSize": "\u00b3"}, "pageSize"),
    ({"orderBy": "NAME"}, "orderBy"),
    ({"sortOrder": "SIDEWAYS"}, "sortOrder"),
    ({"nextPageToken": "not-a-token"}, "nextPageToken"),
    # base64 of "99999999999999999999:99999999999999999999": once a 500 (int overflow).
    ({"nextPageToken": "OTk5OTk5OTk5OTk5OTk5OTk5OTk6OTk5OTk5OTk5OTk5OTk5OTk5OTk="},
     "nextPageToken"),
    ({"filterQuery": 'name = '}, "filterQuery"),
    ({"filterQuery": '(name = "x"'}, "filterQuery"),
    ({"filterQuery": 'name === "x"'}, "filterQuery"),
    ({"namespace": "Not_A_Namespace"}, "namespace"),
])
def test_bad_list_parameters(api: httpx.Client, params: dict[str, str], field: str) -> None:
    for path in ("/registered_models", "/model_versions", "/artifacts"):
        error(api.get(path, params=params), 400, field)


def test_artifact_upsert_is_one_transaction(api: httpx.Client) -> None:
    rm = new_model(api)
    v = new_version(api, rm["id"], "v")
    w = new_version(api, rm["id"], "w")
    a = new_artifact(api, v["id"], name="same")
    b = new_artifact(api, w["id"], name="same", uri="s3://w")
    # Linking w's artifact to v, where its name is taken: 409 (once a 500).
    error(api.post(f"/model_versions/{v['id']}/artifacts", json={
        "id": b["id"], "artifactType": "model-artifact"}), 409, "same")
    # Linking with a bad field: 400, and the artifact was not moved either.
    other = new_artifact(api, w["id"], name="other")
    error(api.post(f"/model_versions/{v['id']}/artifacts", json={
        "id": other["id"], "artifactType": "model-artifact", "bogus": 1}), 400, "bogus")
    assert {x["id"] for x in ok(api.get(f"/model_versions/{v['id']}/artifacts"))["items"]} == {
        a["id"]}
    assert {x["id"] for x in ok(api.get(f"/model_versions/{w['id']}/artifacts"))["items"]} == {
        b["id"], other["id"]}
    # A valid link moves it (200).
    moved = ok(api.post(f"/model_versions/{v['id']}/artifacts", json={
        "id": other["id"], "artifactType": "model-artifact", "uri": "s3://moved"}), 200)
    assert moved["uri"] == "s3://moved"
    assert {x["id"] for x in ok(api.get(f"/model_versions/{v['id']}/artifacts"))["items"]} == {
        a["id"], other["id"]}


def test_artifact_external_ids_unique_with_and_without_parent(api: httpx.Client) -> None:
    ext = uniq("artext")
    ok(api.post("/artifacts", json={"artifactType": "doc-artifact", "externalId": ext}), 201)
    error(api.post("/artifacts", json={"artifactType": "doc-artifact", "externalId": ext}),
          409, ext)
    mv = new_version(api, new_model(api)["id"])
    error(api.post(f"/model_versions/{mv['id']}/artifacts",
                   json={"artifactType": "model-artifact", "externalId": ext}), 409, ext)
    assert count(api, f"/model_versions/{mv['id']}/artifacts") == 0
    found = ok(api.get("/artifact", params={"externalId": ext}))
    assert found["externalId"] == ext


# -- PATCH semantics ----------------------------------------------------------------------------


def test_patch_semantics(api: httpx.Client, alpha: httpx.Client) -> None:
    name = uniq("patch")
    rm = new_model(api, name, description="d", owner="o",
                   customProperties={"a": prop_str("1"), "b": prop_int(2)})
    time.sleep(0.01)
    p1 = ok(api.patch(f"/registered_models/{rm['id']}", json={"owner": "o2"}))
    assert p1["owner"] == "o2" and p1["description"] == "d"  # absent fields kept
    assert p1["customProperties"] == rm["customProperties"]  # absent: preserved
    assert int(p1["lastUpdateTimeSinceEpoch"]) > int(rm["lastUpdateTimeSinceEpoch"])
    assert p1["createTimeSinceEpoch"] == rm["createTimeSinceEpoch"]

    p2 = ok(api.patch(f"/registered_models/{rm['id']}", json={
        "customProperties": {"c": prop_bool(False)}, "name": "renamed", "id": "1",
        "createTimeSinceEpoch": "1"}))
    assert p2["customProperties"] == {"c": prop_bool(False)}  # replaces the whole map
    assert p2["name"] == name and p2["id"] == rm["id"]  # immutable fields ignored
    assert p2["createTimeSinceEpoch"] == rm["createTimeSinceEpoch"]
    assert int(p2["lastUpdateTimeSinceEpoch"]) > int(p1["lastUpdateTimeSinceEpoch"])

    p3 = ok(alpha.patch(f"/registered_models/{rm['id']}", json={"customProperties": {},
                                                                "state": "ARCHIVED"}))
    assert p3["customProperties"] == {} and p3["state"] == "ARCHIVED"
    assert ok(api.get(f"/registered_models/{rm['id']}")) == p3

    mv = new_version(api, rm["id"], author="x", description="first")
    mv2 = ok(api.patch(f"/model_versions/{mv['id']}", json={
        "state": "ARCHIVED", "registeredModelId": "999999"}))
    assert mv2["state"] == "ARCHIVED" and mv2["author"] == "x"
    assert mv2["description"] == "first" and mv2["registeredModelId"] == rm["id"]


# -- paging -------------------------------------------------------------------------------------


def _walk(api: httpx.Client, path: str, **params: str) -> tuple[list[str], list[str]]:
    seen: list[str] = []
    tokens: list[str] = []
    token = ""
    for _ in range(20):
        page = ok(api.get(path, params={**params, "pageSize": "2",
                                        **({"nextPageToken": token} if token else {})}))
        assert_list(page)
        assert page["pageSize"] == 2 and page["size"] <= 2
        seen += [item["id"] for item in page["items"]]
        token = page["nextPageToken"]
        tokens.append(token)
        if not token:
            return seen, tokens
    raise AssertionError("the pager never ended")


def test_paging(api: httpx.Client) -> None:
    tag = uniq("paging")
    made = []
    for i in range(5):
        made.append(new_model(api, f"{tag}-{i}", customProperties={"batch": prop_str(tag)}))
        time.sleep(0.005)
    ids = [m["id"] for m in made]
    # Touch the first model so LAST_UPDATE_TIME order differs from creation order.
    time.sleep(0.005)
    ok(api.patch(f"/registered_models/{ids[0]}", json={"description": "touched"}))
    by_update = ids[1:] + ids[:1]
    query = {"filterQuery": f'batch = "{tag}"'}
    for order, expected in (("CREATE_TIME", ids), ("ID", ids), ("LAST_UPDATE_TIME", by_update)):
        for sort, want in (("ASC", expected), ("DESC", expected[::-1])):
            seen, tokens = _walk(api, "/registered_models", orderBy=order, sortOrder=sort,
                                 **query)
            assert seen == want, (order, sort)
            assert len(tokens) == 3 and tokens[-1] == "" and all(tokens[:2])
            # Tokens are stable: the same query gives the same token.
            again = ok(api.get("/registered_models", params={
                **query, "orderBy": order, "sortOrder": sort, "pageSize": "2"}))
            assert again["nextPageToken"] == tokens[0]
            # An empty nextPageToken means the first page.
            first = ok(api.get("/registered_models", params={
                **query, "orderBy": order, "sortOrder": sort, "pageSize": "2",
                "nextPageToken": ""}))
            assert first["nextPageToken"] == tokens[0]
            assert [m["id"] for m in first["items"]] == want[:2]
    # Default order: ID ascending; no pageSize: everything, pageSize 0, no token.
    everything = ok(api.get("/registered_models", params=query))
    assert [m["id"] for m in everything["items"]] == ids
    assert everything["pageSize"] == 0 and everything["nextPageToken"] == ""
    # A page size larger than the rest: no token.
    big = ok(api.get("/registered_models", params={**query, "pageSize": "5"}))
    assert big["size"] == 5 and big["nextPageToken"] == ""


# -- filterQuery --------------------------------------------------------------------------------


def test_filter_query(api: httpx.Client) -> None:
    tag = uniq("flt")
    a = new_model(api, f"{tag}-Alpha", customProperties={
        "framework": prop_str("pytorch"), "acc": prop_double(0.97), "epochs": prop_int(10),
        "tuned": prop_bool(True)})
    b = new_model(api, f"{tag}-beta", customProperties={
        "framework": prop_str("sklearn"), "acc": prop_double(0.80), "epochs": prop_int(3)})
    c = new_model(api, f"{tag}-gamma", state="ARCHIVED")

    def rms(q: str) -> set[str]:
        return {m["id"] for m in ok(api.get("/registered_models",
                                            params={"filterQuery": q}))["items"]}

    assert rms(f'name LIKE "{tag}-%"') == {a["id"], b["id"], c["id"]}
    assert rms(f'name LIKE "{tag}-alpha"') == set()  # LIKE is case-sensitive
    assert rms(f'name ILIKE "{tag}-ALPHA"') == {a["id"]}
    assert rms(f'name LIKE "{tag}-%" AND state = "ARCHIVED"') == {c["id"]}
    assert rms(f"name LIKE '{tag}-%' AND state = 'LIVE'") == {a["id"], b["id"]}
    assert rms(f'name LIKE "{tag}-%" AND framework = "pytorch"') == {a["id"]}
    assert rms(f'name LIKE "{tag}-%" AND framework.string_value = "sklearn"') == {b["id"]}
    assert rms(f'name LIKE "{tag}-%" AND acc > 0.9') == {a["id"]}
    assert rms(f'name LIKE "{tag}-%" AND acc.double_value < 0.9') == {b["id"]}
    assert rms(f'name LIKE "{tag}-%" AND epochs.int_value >= 5') == {a["id"]}
    assert rms(f'name LIKE "{tag}-%" AND epochs > 5') == {a["id"]}
    assert rms(f'name LIKE "{tag}-%" AND tuned = true') == {a["id"]}
    assert rms(f'name LIKE "{tag}-%" AND (framework = "sklearn" OR state = "ARCHIVED")') == {
        b["id"], c["id"]}
    assert rms(f'name = "{tag}-beta" OR name = "{tag}-gamma"') == {b["id"], c["id"]}
    assert rms(f'name LIKE "{tag}-%" AND id IN ({a["id"]}, {c["id"]})') == {a["id"], c["id"]}

    va = new_version(api, a["id"], "v1", author="ann",
                     customProperties={"stage": prop_str("prod")})
    vb = new_version(api, b["id"], "v1", author="ben", state="ARCHIVED",
                     customProperties={"stage": prop_str("dev")})

    def mvs(q: str) -> set[str]:
        return {m["id"] for m in ok(api.get("/model_versions",
                                            params={"filterQuery": q}))["items"]}

    base = f'registeredModelId IN ({a["id"]}, {b["id"]})'
    assert mvs(base) == {va["id"], vb["id"]}
    assert mvs(f'{base} AND author = "ann"') == {va["id"]}
    assert mvs(f'{base} AND state = "ARCHIVED"') == {vb["id"]}
    assert mvs(f'{base} AND stage.string_value = "prod"') == {va["id"]}
    assert mvs(f'{base} AND (stage = "dev" OR author = "ann")') == {va["id"], vb["id"]}
    assert mvs(f'{base} AND name ILIKE "V%"') == {va["id"], vb["id"]}

    fmt = uniq("fmt")
    ma = new_artifact(api, va["id"], modelFormatName=fmt, state="LIVE",
                      customProperties={"size": prop_int(100)})
    mb = new_artifact(api, vb["id"], modelFormatName=fmt,
                      customProperties={"size": prop_int(5)})
    ok(api.post(f"/model_versions/{va['id']}/artifacts",
                json={"artifactType": "doc-artifact", "uri": "x"}), 201)

    def arts(q: str) -> set[str]:
        return {m["id"] for m in ok(api.get("/artifacts", params={
            "filterQuery": q, "artifactType": "model-artifact"}))["items"]}

    assert arts(f'modelFormatName = "{fmt}"') == {ma["id"], mb["id"]}
    assert arts(f'modelFormatName = "{fmt}" AND state = "LIVE"') == {ma["id"]}
    assert arts(f'modelFormatName = "{fmt}" AND size > 10') == {ma["id"]}
    assert arts(f'modelFormatName = "{fmt}" AND size.int_value < 10') == {mb["id"]}
    assert arts(f'modelFormatName = "{fmt}" AND (size = 5 OR state = "LIVE")') == {
        ma["id"], mb["id"]}
    assert arts(f'modelFormatName = "{fmt}" AND uri LIKE "s3://%"') == {ma["id"], mb["id"]}


# -- delete -------------------------------------------------------------------------------------


def test_delete_cascades(api: httpx.Client) -> None:
    rm = new_model(api)
    v1 = new_version(api, rm["id"], "v1")
    v2 = new_version(api, rm["id"], "v2")
    a1 = new_artifact(api, v1["id"])
    a2 = new_artifact(api, v2["id"])
    d2 = ok(api.post(f"/model_versions/{v2['id']}/artifacts",
                     json={"artifactType": "doc-artifact", "uri": "x"}), 201)

    assert api.delete(f"/model_versions/{v1['id']}").status_code == 204
    error(api.get(f"/model_versions/{v1['id']}"), 404)
    error(api.get(f"/artifacts/{a1['id']}"), 404)
    assert ok(api.get(f"/model_versions/{v2['id']}"))["id"] == v2["id"]
    assert ok(api.get(f"/artifacts/{a2['id']}"))["id"] == a2["id"]

    assert api.delete(f"/registered_models/{rm['id']}").status_code == 204
    for path in (f"/registered_models/{rm['id']}", f"/model_versions/{v2['id']}",
                 f"/artifacts/{a2['id']}", f"/artifacts/{d2['id']}"):
        error(api.get(path), 404)
    error(api.delete(f"/registered_models/{rm['id']}"), 404)
    # The name is free again, and the new model inherits nothing of the old one.
    # (SQLite may hand out the deleted id again: the table is not AUTOINCREMENT.)
    again = new_model(api, rm["name"])
    assert ok(api.get(f"/registered_models/{again['id']}/versions"))["items"] == []


def test_delete_refused_while_deployed(api: httpx.Client) -> None:
    rm = new_model(api)
    mv = new_version(api, rm["id"])
    art = new_artifact(api, mv["id"])
    env = ok(api.post("/serving_environments", json={"name": uniq("env")}), 201)
    isvc_name = uniq("isvc")
    isvc = ok(api.post("/inference_services", json={
        "name": isvc_name, "registeredModelId": rm["id"], "servingEnvironmentId": env["id"],
        "modelVersionId": mv["id"], "desiredState": "DEPLOYED"}), 201)

    error(api.delete(f"/model_versions/{mv['id']}"), 409, isvc_name)
    error(api.delete(f"/registered_models/{rm['id']}"), 409, isvc_name)
    for path in (f"/registered_models/{rm['id']}", f"/model_versions/{mv['id']}",
                 f"/artifacts/{art['id']}", f"/inference_services/{isvc['id']}"):
        ok(api.get(path))  # nothing deleted

    ok(api.patch(f"/inference_services/{isvc['id']}", json={"desiredState": "UNDEPLOYED"}))
    assert api.delete(f"/model_versions/{mv['id']}").status_code == 204
    assert api.delete(f"/registered_models/{rm['id']}").status_code == 204
    error(api.get(f"/registered_models/{rm['id']}"), 404)
    error(api.get(f"/artifacts/{art['id']}"), 404)


# -- namespaces ---------------------------------------------------------------------------------


def test_namespace_isolation(api: httpx.Client) -> None:
    name = uniq("ns")
    team = {"namespace": "team-a"}
    rm = ok(api.post("/registered_models", params=team, json={"name": name}), 201)
    assert ok(api.get(f"/registered_models/{rm['id']}", params=team))["name"] == name
    error(api.get(f"/registered_models/{rm['id']}"), 404)
    error(api.get(f"/registered_models/{rm['id']}", params={"namespace": "default"}), 404)
    error(api.get("/registered_model", params={"name": name}), 404)
    assert name not in names(ok(api.get("/registered_models")))
    assert name in names(ok(api.get("/registered_models", params=team)))
    # The same name in another namespace is no conflict.
    other = new_model(api, name)
    assert other["id"] != rm["id"]
    # A version in default cannot hang under team-a's model.
    error(api.post("/model_versions", json={"name": "v1", "registeredModelId": rm["id"]}), 404)
    error(api.delete(f"/registered_models/{rm['id']}"), 404)
    assert api.delete(f"/registered_models/{rm['id']}", params=team).status_code == 204


# -- ketch's SDK --------------------------------------------------------------------------------


def test_ketch_sdk(registry_server: ServerProcess) -> None:
    from ketch.core.errors import AlreadyExistsError, NotFoundError
    from ketch.registry.client import ModelRegistry, resolve_model_uri

    name = uniq("sdk")
    with ModelRegistry(registry_server.url, author="dana") as reg:
        mv = reg.register_model(name, "s3://bucket/sdk/v1", model_format_name="sklearn",
                                model_format_version="1", version="v1",
                                metadata={"acc": 0.9, "epochs": 3, "ok": True, "fw": "sk"})
        assert mv["name"] == "v1" and mv["author"] == "dana"
        reg.register_model(name, "s3://bucket/sdk/v2", model_format_name="sklearn",
                           version="v2")
        with pytest.raises(AlreadyExistsError):
            reg.register_model(name, "s3://x", model_format_name="sklearn", version="v1")
        model = reg.get_registered_model(name)
        assert model is not None and model["owner"] == "dana"
        got = reg.get_model_version(name, "v1")
        assert got is not None and got["id"] == mv["id"]
        from ketch.registry.client import from_metadata
        assert from_metadata(got["customProperties"]) == {"acc": 0.9, "epochs": 3, "ok": True,
                                                          "fw": "sk"}
        assert reg.get_model_version(name, "v9") is None
        assert reg.get_registered_model(uniq("nope")) is None
        art = reg.get_model_artifact(name, "v1")
        assert art is not None and art["uri"] == "s3://bucket/sdk/v1"
        assert art["modelFormatName"] == "sklearn"
        assert [v["name"] for v in reg.list_versions(name)] == ["v1", "v2"]
        assert name in [m["name"] for m in reg.list_models(page_size=2)]
        assert [m["name"] for m in reg.list_models(filter_query=f'name = "{name}"')] == [name]

        assert resolve_model_uri(f"model-registry://{name}/v2", reg) == "s3://bucket/sdk/v2"
        assert resolve_model_uri("s3://plain/uri", reg) == "s3://plain/uri"
        with pytest.raises(NotFoundError):
            resolve_model_uri(f"model-registry://{name}/v9", reg)
        with pytest.raises(NotFoundError):
            resolve_model_uri(f"model-registry://{uniq('nope')}/v1", reg)

        assert reg.archive(name, "v1")["state"] == "ARCHIVED"
        assert reg.archive(name)["state"] == "ARCHIVED"
        reg.delete(name, "v1")
        assert reg.get_model_version(name, "v1") is None
        reg.delete(name)
        assert reg.get_registered_model(name) is None
        with pytest.raises(NotFoundError):
            reg.delete(name)
