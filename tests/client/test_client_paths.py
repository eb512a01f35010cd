"""The client builds object paths only from names an object can have."""

from __future__ import annotations

import pytest

from ketch.client import KindRef
from ketch.core.errors import InvalidError

JOBS = KindRef(group="ketch.dev", version="v1", kind="Job", plural="jobs")


def test_paths_of_valid_names() -> None:
    assert JOBS.path("default") == "/apis/ketch.dev/v1/namespaces/default/jobs"
    assert JOBS.path("team-a", "train.v2", "log") == (
        "/apis/ketch.dev/v1/namespaces/team-a/jobs/train.v2/log")


@pytest.mark.parametrize("name", ["zzz/../withsecret", "../../../../version", "..", "a/b",
                                  "a%2Fb", "a?watch=true", "Hello", "", "x" * 254])
def test_a_name_no_object_can_have_is_refused_before_any_request(name: str) -> None:
    with pytest.raises(InvalidError, match=r"^invalid job name .*: must be lowercase"):
        JOBS.path("default", name)


@pytest.mark.parametrize("namespace", ["../kube-system", "a/b", "NS"])
def test_so_is_such_a_namespace(namespace: str) -> None:
    with pytest.raises(InvalidError, match=rf"^invalid namespace '{namespace}'"):
        JOBS.path(namespace, "hello")
