"""A step that fails to import while its component's ``packages_to_install`` were not
installed (a run without ``--install-packages``) says so, in its status message and its
log, and names the switch; other failures are reported as before."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PIPELINE = textwrap.dedent('''
    from ketch import dsl

    @dsl.component(packages_to_install=["ketch-test-absent-package==1.0"])
    def needs_package() -> str:
        import ketch_test_absent_package

        return ketch_test_absent_package.__name__

    @dsl.component
    def imports_without_declaring() -> str:
        import ketch_test_undeclared_module

        return ketch_test_undeclared_module.__name__

    @dsl.component(packages_to_install=["ketch-test-absent-package==1.0"])
    def fails_otherwise() -> str:
        raise ValueError("nothing to do with packages")

    @dsl.pipeline(name="missing-packages")
    def missing_packages():
        # A tenth of a CPU each: all three start in one pass, before any has failed.
        needs_package().set_cpu_request("100m")
        imports_without_declaring().set_cpu_request("100m")
        fails_otherwise().set_cpu_request("100m")
''')


def test_import_error_names_the_uninstalled_packages_and_the_switch(client: Any,
                                                                   tmp_path: Path) -> None:
    pipeline = tmp_path / "missing_packages.py"
    pipeline.write_text(PIPELINE)
    result = client.create_run_from_pipeline_package(pipeline, enable_caching=False)
    run = result.wait_for_run_completion(timeout=120)
    assert run.status["phase"] == "Failed"
    tasks = run.status["tasks"]

    message = tasks["needs-package"]["message"]
    headline = message.splitlines()[0]
    assert "ketch-test-absent-package==1.0" in headline
    assert "were not installed" in headline and "--install-packages" in headline
    assert "No module named 'ketch_test_absent_package'" in headline
    log = b"".join(client.logs("pipelinerun", result.run_id, task="needs-package")).decode()
    assert "ModuleNotFoundError" in log  # the user's traceback, then the hint
    assert log.rstrip().splitlines()[-1].startswith(
        "ketch: this step's packages_to_install (ketch-test-absent-package==1.0) were not "
        "installed")

    # Nothing declared, or a failure other than an import: no hint.
    for name in ("imports-without-declaring", "fails-otherwise"):
        assert tasks[name]["phase"] == "Failed"
        assert "--install-packages" not in tasks[name]["message"], name
    assert "nothing to do with packages" in tasks["fails-otherwise"]["message"]
