"""fieldValidation on a parsed object: what each directive drops, refuses and warns about,
at every depth (metadata, spec, nested models, list items)."""

from __future__ import annotations

from typing import Any

import pytest

from ketch.core.delete_options import parse_delete_options
from ketch.core.errors import BadRequestError, InvalidError
from ketch.core.field_validation import parse_field_validation
from ketch.core.kinds import KindRegistry
from ketch.core.loader import parse_resource
from ketch.jobs import JOB

REGISTRY = KindRegistry.of([JOB])


def doc() -> dict[str, Any]:
    return {"apiVersion": "ketch.dev/v1", "kind": "Job", "top": 1,
            "metadata": {"name": "a", "zz": 1},
            "spec": {"command": ["true"], "resources": {"cpu": "1", "bogus": 2},
                     "env": [{"name": "A", "value": "1", "nope": True}]}}


UNKNOWN = ["metadata.zz", "top", "spec.resources.bogus", "spec.env[0].nope"]


def test_warn_drops_every_unknown_field_and_names_it() -> None:
    validation = parse_field_validation("Warn")
    _, obj = parse_resource(doc(), REGISTRY, validation=validation)
    assert sorted(validation.warnings) == sorted(f'unknown field "{p}"' for p in UNKNOWN)
    assert "bogus" not in obj.spec["resources"] and "nope" not in obj.spec["env"][0]
    assert obj.spec["env"][0]["value"] == "1"


def test_ignore_drops_them_silently_and_strict_refuses_naming_each() -> None:
    ignore = parse_field_validation("Ignore")
    parse_resource(doc(), REGISTRY, validation=ignore)
    assert ignore.warnings == []
    with pytest.raises(BadRequestError) as caught:
        parse_resource(doc(), REGISTRY, validation=parse_field_validation("Strict"))
    assert caught.value.message.startswith(
        'Job in version "v1" cannot be handled as a Job: strict decoding error: ')
    assert sorted(f.path for f in caught.value.fields) == sorted(UNKNOWN)
    assert caught.value.to_body()["reason"] == "BadRequest"


def test_without_a_directive_unknown_fields_are_invalid() -> None:
    with pytest.raises(InvalidError) as caught:
        parse_resource(doc(), REGISTRY, validation=parse_field_validation(None))
    assert not isinstance(caught.value, BadRequestError)
    # The envelope is validated before the spec, so its fields come first, as before.
    assert {f.path for f in caught.value.fields} == {"metadata.zz", "top"}


def test_strict_still_validates_known_fields() -> None:
    body = {"apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": "a"},
            "spec": {"command": ["true"], "backoffLimit": -1}}
    with pytest.raises(InvalidError) as caught:
        parse_resource(body, REGISTRY, validation=parse_field_validation("Strict"))
    assert [f.path for f in caught.value.fields] == ["spec.backoffLimit"]


@pytest.mark.parametrize("text", ["strict", "warn", "Yes", "STRICT"])
def test_other_directives_are_a_400_naming_the_parameter(text: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_field_validation(text)
    assert [f.path for f in caught.value.fields] == ["fieldValidation"]


def test_delete_options_from_body_and_query() -> None:
    body = {"propagationPolicy": "Foreground", "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u1", "resourceVersion": "7"}}
    got = parse_delete_options(body, propagation="Orphan", resource_version="3")
    assert (got.propagation, got.uid, got.resource_version) == ("Foreground", "u1", "7")
    assert parse_delete_options(None, propagation="Orphan").propagation == "Orphan"
    assert parse_delete_options({"orphanDependents": True}).propagation == "Orphan"
    assert parse_delete_options(None, resource_version="3").resource_version == "3"
    for bad in ({"propagationPolicy": "Sideways"}, {"gracePeriodSeconds": -1},
                {"preconditions": "x"}, ["not", "an", "object"]):
        with pytest.raises(BadRequestError):
            parse_delete_options(bad)
