"""A model registered from inside a ketch Job names that Job as its source."""

from __future__ import annotations

import sys

import pytest

from conftest import ServerProcess
from ketch import Client
from ketch.registry.client import ModelRegistry

pytestmark = pytest.mark.slow


def test_model_registered_in_a_job_records_the_job(ketch_server: ServerProcess) -> None:
    script = (
        "from ketch.registry.client import ModelRegistry\n"
        "with ModelRegistry() as reg:\n"
        "    reg.register_model('from-job', 'file:///models/from-job', model_format_name="
        "'sklearn', version='v1', metadata={'accuracy': 0.9})\n"
        "print('registered')\n")
    with Client(ketch_server.url) as client:
        job = client.create({"apiVersion": "ketch.dev/v1", "kind": "Job",
                             "metadata": {"name": "train-and-register"},
                             "spec": {"command": [sys.executable, "-c", script]}})
        done = client.wait("job", "train-and-register", timeout=60)
        assert b"".join(client.logs("job", "train-and-register")) == b"registered\n"
    assert done.status["phase"] == "Succeeded"
    with ModelRegistry(ketch_server.url) as reg:
        artifact = reg.get_model_artifact("from-job", "v1")
    assert artifact is not None
    assert artifact["modelSourceKind"] == "job"
    assert artifact["modelSourceName"] == "train-and-register"
    assert artifact["modelSourceGroup"] == "default"
    assert artifact["modelSourceId"] == job.metadata.uid
    assert artifact["modelSourceClass"] == "ketch.dev/v1/Job"
