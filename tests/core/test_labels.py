"""Label selectors with Kubernetes syntax."""

from __future__ import annotations

import pytest

from ketch.core.errors import InvalidError
from ketch.core.labels import LabelSelector

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(("selector", "matches"), [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("missing!=x", True),
    ("env in (prod, staging)", True),
    ("env notin (prod)", False),
    ("tier", True),
    ("!tier", False),
    ("!missing", True),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("example.com/team=a", False),
])
def test_selector_matching(selector: str, matches: bool) -> None:
    assert LabelSelector.parse(selector).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["app=", "=web", "env in prod", "env in (a", "a b", "app=web,,",
                                 "app in ()", "app notin ()", "app in (a b)", "app in (a,,b)",
                                 "app in (,a)"])
def test_bad_selectors_are_400_and_name_the_parameter(bad: str) -> None:
    with pytest.raises(InvalidError) as err:
        LabelSelector.parse(bad)
    assert err.value.fields[0].path == "labelSelector"
    assert err.value.http_status == 400  # as kube-apiserver answers


def test_an_empty_value_set_says_so_as_kubernetes() -> None:
    with pytest.raises(InvalidError, match="values set can't be empty"):
        LabelSelector.parse("app in ()")
