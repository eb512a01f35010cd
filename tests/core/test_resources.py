"""Resource envelope, kind registry and YAML loading: the errors users see."""

from __future__ import annotations

import pytest

from ketch.core.errors import InvalidError, UnknownKindError
from ketch.core.kinds import KindRegistry
from ketch.core.loader import load_documents, parse_resource, with_type_of
from ketch.core.quantity import parse_cpu, parse_memory
from ketch.core.resources import find_condition, set_condition
from ketch.jobs import JOB

REGISTRY = KindRegistry.of([JOB])


def test_multi_document_yaml_and_lists_load() -> None:
    text = """
apiVersion: ketch.dev/v1
kind: Job
metadata: {name: a}
spec: {command: [echo, a]}
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: ketch.dev/v1, kind: Job, metadata: {name: b}, spec: {command: [echo]}}
"""
    docs = load_documents(text, "jobs.yaml")
    assert [d["metadata"]["name"] for d in docs] == ["a", "b"]
    info, obj = parse_resource(docs[0], REGISTRY)
    assert info is JOB and obj.namespace == "default"
    # Defaults are filled in, so what is stored is the whole spec.
    assert obj.spec["backoffLimit"] == 0 and obj.spec["resources"]["cpu"] == 1


def test_malformed_yaml_names_file_and_line() -> None:
    with pytest.raises(InvalidError) as err:
        load_documents("kind: Job\nmetadata:\n  name: [x\n", "bad.yaml")
    assert err.value.message.startswith("bad.yaml: malformed YAML at line ")


@pytest.mark.parametrize(("doc", "path", "text"), [
    ({"kind": "Job", "metadata": {"name": "x"}}, "apiVersion", "required"),
    ({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {}}, "metadata.name", "required"),
    ({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "Bad_Name"},
      "spec": {"command": ["x"]}}, "metadata.name", "lowercase"),
    ({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "x"},
      "spec": {"command": ["x"], "backoffLimit": "many"}}, "spec.backoffLimit", "integer"),
    ({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "x"},
      "spec": {"command": ["x"], "resources": {"cpu": "lots"}}}, "spec.resources.cpu",
     "not a quantity"),
    ({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "x"},
      "spec": {"command": ["x"], "colour": "red"}}, "spec.colour", "unknown field"),
    ({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "x"},
      "spec": {"command": ["x"], "python": "m:f"}}, "spec", "exactly one"),
    ({"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "x",
      "labels": {"bad key!": "v"}}, "spec": {"command": ["x"]}}, "metadata.labels",
     "label"),
])
def test_invalid_documents_name_the_field(doc: dict[str, object], path: str, text: str) -> None:
    with pytest.raises(InvalidError) as err:
        parse_resource(doc, REGISTRY, source="job.yaml")
    fields = {f.path: f.message for f in err.value.fields}
    assert path in fields, fields
    assert text in fields[path]
    assert err.value.message.startswith("job.yaml: ")


def test_a_body_sent_to_a_kinds_url_is_of_that_kind_unless_it_says_otherwise() -> None:
    # What the Kubernetes Python client sends for V1ConfigMap(metadata=..., data=...).
    bare = {"metadata": {"name": "x"}, "spec": {"command": ["x"]}}
    info, obj = parse_resource(with_type_of(bare, JOB), REGISTRY, expect=JOB)
    assert info is JOB and (obj.api_version, obj.kind) == ("ketch.dev/v1", "Job")
    assert "kind" not in bare  # the caller's body is not changed
    other = {**bare, "apiVersion": "v1", "kind": "ConfigMap"}
    with pytest.raises(InvalidError) as err:
        parse_resource(with_type_of(other, JOB), REGISTRY, expect=JOB)
    assert err.value.message.startswith("kind mismatch") and err.value.fields[0].path == "kind"


def test_unknown_kind_and_version() -> None:
    with pytest.raises(UnknownKindError, match="unknown kind 'Gizmo'"):
        parse_resource({"apiVersion": "ketch.dev/v1", "kind": "Gizmo",
                        "metadata": {"name": "g"}}, REGISTRY)
    with pytest.raises(UnknownKindError, match=r"served as ketch\.dev/v1"):
        parse_resource({"apiVersion": "ketch.dev/v2", "kind": "Job",
                        "metadata": {"name": "g"}}, REGISTRY)


def test_kind_resolution_by_any_name() -> None:
    for name in ("job", "jobs", "Job", "JOBS", "kj", "jobs.ketch.dev"):
        assert REGISTRY.resolve(name) is JOB
    with pytest.raises(UnknownKindError, match="known kinds: jobs"):
        REGISTRY.resolve("pods")


def test_conditions_move_transition_time_only_on_change() -> None:
    status: dict[str, object] = {}
    set_condition(status, "Ready", False, "Starting", "")
    first = find_condition(status, "Ready")
    assert first is not None and first["status"] == "False"
    set_condition(status, "Ready", False, "StillStarting", "x")
    again = find_condition(status, "Ready")
    assert again is not None
    assert again["lastTransitionTime"] == first["lastTransitionTime"]
    assert again["reason"] == "StillStarting"
    assert len(status["conditions"]) == 1  # type: ignore[arg-type]


def test_quantities() -> None:
    assert parse_cpu("500m") == 0.5
    assert parse_cpu(2) == 2.0
    assert parse_memory("1Gi") == 2**30
    assert parse_memory("512M") == 512 * 10**6
    for bad in ("1Xi", "-1", "lots"):
        with pytest.raises(ValueError):
            parse_memory(bad)
