"""Pipelines test helpers: the corpus, and the real ``kfp==2.16.1`` SDK in its own venv.

kfp 2.16.1 pins versions that clash with ketch's (and pulls protobuf/google-cloud
packages ketch does not need), so it is not installed into ketch's venv:
:func:`kfp_python` builds a separate venv once, cached under
``~/.cache/ketch-test/kfp-2.16.1`` (``KETCH_TEST_CACHE`` moves it), as the serving tests
do for KServe. It also provides ``kfp-pipeline-spec``'s protobuf, which proves the
schema of ketch's IR.
"""

from __future__ import annotations

import ast
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from _venvs import cached_venv

KFP_VERSION = "2.16.1"
CORPUS = Path(__file__).parent / "pipelines" / "corpus"


def corpus_files() -> list[Path]:
    """Every corpus pipeline file."""
    return sorted(CORPUS.glob("*.py"))


def load_expected(path: Path) -> dict[str, Any]:
    """A corpus file's ``EXPECTED`` dict, read without importing the file."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "EXPECTED" for t in node.targets):
            return ast.literal_eval(node.value)  # type: ignore[no-any-return]
    raise AssertionError(f"{path.name} has no EXPECTED dict")


def kfp_python() -> Path:
    """The python of a venv holding ``kfp==KFP_VERSION``, built once and cached."""
    return cached_venv("kfp", KFP_VERSION, "import kfp, kfp.pipeline_spec")


@pytest.fixture(scope="session")
def kfp_venv() -> Path:
    """The python of the cached kfp venv (built on first use)."""
    return kfp_python()


# Compiles each file given as argv pairs (path, pipeline-name-or-empty) with the real
# kfp, printing {file name: IR dict or {"error": text}} as JSON.
_KFP_COMPILE = textwrap.dedent("""
    import importlib.util, json, sys, tempfile, warnings
    import yaml
    from kfp import compiler
    from kfp.dsl.graph_component import GraphComponent
    warnings.simplefilter("ignore")
    result = {}
    args = sys.argv[1:]
    for path, name in zip(args[::2], args[1::2]):
        try:
            # The module takes the file's name, as an import would give it.
            stem = path.rsplit("/", 1)[-1][:-3]
            spec = importlib.util.spec_from_file_location(stem, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            found = [v for k, v in vars(module).items() if isinstance(v, GraphComponent)
                     and (not name or name in (k, v.name))]
            out = tempfile.mktemp(suffix=".yaml")
            compiler.Compiler().compile(found[-1], out)
            result[path] = yaml.safe_load(open(out))
        except Exception as err:
            result[path] = {"error": f"{type(err).__name__}: {err}"}
    print(json.dumps(result))
""")

# Parses each IR document (JSON list on stdin) with kfp-pipeline-spec's PipelineSpec,
# rejecting unknown fields; prints one error text (or null) per document.
_PROTO_CHECK = textwrap.dedent("""
    import json, sys
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    errors = []
    for doc in json.load(sys.stdin):
        try:
            json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec(),
                                  ignore_unknown_fields=False)
            errors.append(None)
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
    print(json.dumps(errors))
""")


def kfp_compile_files(python: Path, files: list[tuple[Path, str | None]]) -> dict[str, Any]:
    """Compile ``(file, pipeline name)`` pairs with the real kfp in one process."""
    argv: list[str] = []
    for path, name in files:
        argv += [str(path), name or ""]
    proc = subprocess.run([str(python), "-c", _KFP_COMPILE, *argv], capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def proto_errors(python: Path, docs: list[dict[str, Any]]) -> list[str | None]:
    """For each IR dict: None if ``PipelineSpec`` parses it strictly, else the error."""
    proc = subprocess.run([str(python), "-c", _PROTO_CHECK], input=json.dumps(docs),
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def kfp_compile(kfp_venv: Path) -> Any:
    """``kfp_compile([(file, pipeline name)]) -> {file: IR}`` with the real kfp."""
    return lambda files: kfp_compile_files(kfp_venv, files)


@pytest.fixture(scope="session")
def proto_check(kfp_venv: Path) -> Any:
    """``proto_check(docs) -> [error or None]``: strict PipelineSpec parsing (kfp venv)."""
    return lambda docs: proto_errors(kfp_venv, docs)


@pytest.fixture(scope="session")
def expected_of() -> Any:
    """``expected_of(path) -> dict``: a corpus file's EXPECTED, without importing it."""
    return load_expected


@pytest.fixture(scope="session")
def kfp_corpus_ir(kfp_venv: Path) -> dict[str, dict[str, Any]]:
    """Every corpus file compiled by the real kfp, keyed by file name."""
    files = [(p, load_expected(p).get("pipeline")) for p in corpus_files()]
    compiled = kfp_compile_files(kfp_venv, files)
    return {Path(k).name: v for k, v in compiled.items()}
