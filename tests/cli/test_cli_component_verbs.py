"""Component verbs come from the components' declarations, loaded only when they run."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from ketch.cli._app import app

HELP_THEN_MODULES = """
import sys
from ketch.cli._errors import run_app
from ketch.cli._app import app
code = run_app(app, sys.argv[1:])
loaded = sorted(m for m in ('ketch.pipelines.run_cli', 'ketch.pipelines.cli',
                            'ketch.registry.cli', 'ketch.serving.cli', 'pydantic',
                            'sqlalchemy', 'httpx') if m in sys.modules)
print('LOADED=' + ','.join(loaded))
sys.exit(code)
"""


def _run(*args: str) -> tuple[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", HELP_THEN_MODULES, *args],
                         capture_output=True, text=True, check=True)
    text, _, loaded = out.stdout.rpartition("LOADED=")
    return text, [m for m in loaded.strip().split(",") if m]


def test_help_lists_every_component_verb_without_importing_one() -> None:
    text, loaded = _run("--help")
    for verb, words in (("run", "Run a pipeline"), ("compile", "Compile a pipeline"),
                        ("serve", "Serve a model"), ("models", "Model registry")):
        assert any(line.split()[:1] == [verb] and words in line
                   for line in text.splitlines()), f"{verb} missing from:\n{text}"
    assert loaded == []


def test_a_verb_loads_its_own_module_only() -> None:
    text, loaded = _run("compile", "--help")
    assert "Usage: ketch compile" in text
    assert [m for m in loaded if m.startswith("ketch.")] == ["ketch.pipelines.cli"]
    text, loaded = _run("models", "--help")
    assert "Usage: ketch models" in text and "register" in text
    assert [m for m in loaded if m.startswith("ketch.")] == ["ketch.registry.cli"]


def test_ketch_own_verbs_read_no_component_declaration() -> None:
    code = ("import sys\nfrom ketch.cli._errors import run_app\nfrom ketch.cli._app import app\n"
            "run_app(app, ['version'])\n"
            "print(sorted(m for m in sys.modules if m.endswith('.component') and m != "
            "'ketch.core.component' "
            "or m == 'ketch.jobs'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_a_typo_of_a_component_verb_is_suggested() -> None:
    result = CliRunner().invoke(app, ["servee"])
    assert result.exit_code != 0
    assert "serve" in (result.output + str(result.exception))
