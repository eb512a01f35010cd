"""Field ownership (ketch.core.managed_fields) and JSON patch (ketch.core.json_patch) as
pure functions over dicts."""

from __future__ import annotations

from typing import Any

import pytest

from ketch.core import managed_fields as mf
from ketch.core.errors import ApplyConflictError, BadRequestError, InvalidError
from ketch.core.json_patch import apply_json_patch
from ketch.core.resources import ManagedFieldsEntry

ENV_A = 'k:{"name":"a"}'


def obj(**spec: Any) -> dict[str, Any]:
    """An object; without fields, one with no spec at all (``spec: {}`` would own an
    empty spec)."""
    return {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "o"},
            **({"spec": spec} if spec else {})}


def run(live: dict[str, Any], config: dict[str, Any], managers: list[mf.Manager],
        manager: str, force: bool = False) -> tuple[dict[str, Any], list[mf.Manager]]:
    return mf.apply(live, config, managers, manager=manager, api_version="x/v1", time="t",
                    force=force)


def fields(managers: list[mf.Manager], name: str) -> set[str]:
    found = next(m for m in managers if m.manager == name)
    return {mf.path_string(p) for p in found.fields}


def test_field_set_and_the_fieldsv1_form_round_trip() -> None:
    body = {**obj(replicas=2, args=["x"], env=[{"name": "a", "value": "1"}], empty={}),
            "metadata": {"name": "o", "uid": "u", "labels": {"app": "w"}},
            "status": {"phase": "Running"}}
    paths = mf.field_set(mf.tracked(body))
    assert {mf.path_string(p) for p in paths} == {
        ".spec.replicas", ".spec.args", ".spec.empty", '.spec.env[name="a"]',
        '.spec.env[name="a"].name', '.spec.env[name="a"].value', ".metadata.labels.app"}
    tree = mf.to_fields_v1(paths)
    assert tree["f:spec"]["f:env"][ENV_A] == {".": {}, "f:name": {}, "f:value": {}}
    assert next(iter(tree["f:spec"]["f:env"][ENV_A])) == "."  # first, as kube-apiserver does
    assert tree["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert mf.from_fields_v1(tree) == paths
    assert mf.field_set(mf.tracked(body, "status")) == {("f:status", "f:phase")}
    at = mf.index(mf.tracked(body))
    assert at[("f:spec", "f:env", ENV_A, "f:value")] == "1"
    assert at[("f:spec", "f:empty")] == {} and ("f:spec", "f:nope") not in at


def test_lists_without_unique_names_are_atomic() -> None:
    twice = obj(env=[{"name": "a"}, {"name": "a"}], ports=[{"port": 1}], args=["a", "b"])
    assert {mf.path_string(p) for p in mf.field_set(mf.tracked(twice))} == {
        ".spec.env", ".spec.ports", ".spec.args"}


def test_check_fields_v1_refuses_what_kube_apiserver_would_not_decode() -> None:
    mf.check_fields_v1({"f:spec": {".": {}, "f:a": {}, ENV_A: {}, 'v:"x"': {}, "i:0": {}}})
    for bad in ({"spec": {}}, {"f:a": []}, {".": {"f:a": {}}}, {"k:notjson": {}},
                {"k:[1]": {}}, {"i:x": {}}, []):
        with pytest.raises(ValueError):
            mf.check_fields_v1(bad)
    with pytest.raises(ValueError):
        ManagedFieldsEntry.model_validate({"manager": "m", "operation": "Take"})


def test_apply_owns_what_it_sends_and_reapplying_changes_nothing() -> None:
    config = obj(a=1, env=[{"name": "a", "value": "1"}])
    result, managers = run({}, config, [], "m")
    assert result["spec"] == config["spec"]
    assert fields(managers, "m") == {".spec.a", '.spec.env[name="a"]',
                                     '.spec.env[name="a"].name', '.spec.env[name="a"].value'}
    again, same = mf.apply(result, config, managers, manager="m", api_version="x/v1",
                           time="later")
    assert again == result and same == managers  # the entry keeps its time


def test_another_managers_field_conflicts_unless_forced() -> None:
    live, managers = run({}, obj(a=1, b=1), [], "first")
    same, shared = run(live, obj(a=1), managers, "second")  # same value: shared, no conflict
    assert same == live and fields(shared, "second") == {".spec.a"}
    with pytest.raises(ApplyConflictError) as caught:
        run(live, obj(a=2, b=2), shared, "third")
    err = caught.value
    assert err.http_status == 409
    assert err.message.startswith("Apply failed with 3 conflicts: conflicts with \"first\":")
    assert {(c["field"], c["message"]) for c in err.causes} == {
        (".spec.a", 'conflict with "first"'), (".spec.b", 'conflict with "first"'),
        (".spec.a", 'conflict with "second"')}
    result, forced = run(live, obj(a=2), shared, "third", force=True)
    assert result["spec"] == {"a": 2, "b": 1}
    assert fields(forced, "first") == {".spec.b"}
    assert [m.manager for m in forced] == ["first", "third"]  # second owned only .spec.a


def test_one_conflict_message_names_an_update_manager_with_its_version() -> None:
    live = obj(a=1)
    managers = mf.update(None, live, [], manager="kubectl", api_version="x/v1", time="T")
    with pytest.raises(ApplyConflictError) as caught:
        run(live, obj(a=2), managers, "ssa")
    assert caught.value.message == ('Apply failed with 1 conflict: conflict with "kubectl" '
                                    "using x/v1 at T: .spec.a")


def test_an_omitted_field_goes_unless_someone_else_owns_it() -> None:
    live, managers = run({}, obj(a=1, nested={"x": 1}, env=[{"name": "a", "v": 1}]), [], "m")
    live, managers = run(live, obj(a=1, env=[{"name": "b"}]), managers, "other")
    result, managers = run(live, obj(), managers, "m")
    # nested.x went and took its emptied map with it; a stays (other owns it); item a of
    # env went, item b (other's) stays.
    assert result["spec"] == {"a": 1, "env": [{"name": "b"}]}
    assert [m.manager for m in managers] == ["other"]


def test_an_item_another_manager_has_a_field_in_stays() -> None:
    live, managers = run({}, obj(env=[{"name": "a", "value": "1"}]), [], "m")
    live, managers = run(live, obj(env=[{"name": "a", "extra": "2"}]), managers, "other")
    result, _ = run(live, obj(), managers, "m")
    assert result["spec"]["env"] == [{"name": "a", "extra": "2"}]


def test_applied_nulls_set_nothing_and_lists_merge_by_name() -> None:
    assert mf.strip_nulls({"a": None, "b": {"c": None, "d": [1, {"e": None}]}}) == {
        "b": {"d": [1, {}]}}
    merged = mf.merge({"env": [{"name": "a", "v": 1}, {"name": "b"}]},
                      {"env": [{"name": "b", "v": 2}, {"name": "c"}]})
    assert merged == {"env": [{"name": "a", "v": 1}, {"name": "b", "v": 2}, {"name": "c"}]}
    assert mf.merge({"args": [1, 2]}, {"args": [3]}) == {"args": [3]}


def test_update_takes_changed_fields_from_other_managers() -> None:
    old, managers = run({}, obj(a=1, b=1), [], "ssa")
    new = obj(a=2, b=1, c=3)
    after = mf.update(old, new, managers, manager="kubectl", api_version="x/v1", time="T")
    assert fields(after, "ssa") == {".spec.b"}
    assert fields(after, "kubectl") == {".spec.a", ".spec.c"}
    removed = mf.update(new, obj(a=2), after, manager="kubectl", api_version="x/v1",
                        time="T2")
    assert [m.manager for m in removed] == ["kubectl"]  # b went, and ssa owned only b
    assert mf.update(new, new, after, manager="x", api_version="x/v1", time="T3") == after


def test_json_patch_operations_and_pointer_escapes() -> None:
    doc = {"a": {"b~c": 1, "d/e": 2}, "list": [1, 2]}
    out = apply_json_patch(doc, [
        {"op": "test", "path": "/a/b~0c", "value": 1},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "add", "path": "/list/0", "value": 0},
        {"op": "replace", "path": "/a/d~1e", "value": 5},
        {"op": "copy", "from": "/a", "path": "/copy"},
        {"op": "move", "from": "/list/1", "path": "/moved"},
        {"op": "remove", "path": "/copy/b~0c"},
        {"op": "test", "path": "/list", "value": [0, 2, 3]},
    ])
    assert out == {"a": {"b~c": 1, "d/e": 5}, "list": [0, 2, 3],
                   "copy": {"d/e": 5}, "moved": 1}
    assert doc == {"a": {"b~c": 1, "d/e": 2}, "list": [1, 2]}  # the input is untouched


@pytest.mark.parametrize(("ops", "where"), [
    ([{"op": "test", "path": "/a", "value": 2}], "[0]"),
    ([{"op": "add", "path": "/a", "value": 2}, {"op": "remove", "path": "/nope"}], "[1]"),
    ([{"op": "replace", "path": "/missing", "value": 1}], "[0]"),
    ([{"op": "add", "path": "/l/5", "value": 1}], "[0]"),
    ([{"op": "add", "path": "/l/01", "value": 1}], "[0]"),
    ([{"op": "add", "path": "no-slash", "value": 1}], "[0]"),
    ([{"op": "add", "path": "/a"}], "[0]"),
    ([{"op": "move", "from": "/m", "path": "/m/x"}], "[0]"),
    ([{"op": "test", "path": "/a", "value": True}], "[0]"),  # 1 is not true in JSON
])
def test_json_patch_failures_name_the_operation(ops: list[dict[str, Any]], where: str) -> None:
    with pytest.raises(InvalidError) as caught:
        apply_json_patch({"a": 1, "l": [], "m": {}}, ops)
    assert caught.value.http_status == 422
    assert caught.value.fields[0].path == where


def test_a_json_patch_that_is_not_a_list_of_operations_is_a_bad_request() -> None:
    for bad in ({"op": "add"}, [{"op": "frobnicate", "path": "/"}], ["add"]):
        with pytest.raises(BadRequestError):
            apply_json_patch({}, bad)
