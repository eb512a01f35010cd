"""The corpus compiled by ketch and by the real kfp 2.16.1: the IR is the same, key by
key, except for the known cosmetic differences listed in ``COSMETIC``; ketch's IR parses
with kfp-pipeline-spec's protobuf (unknown fields rejected)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from _kfp import CORPUS, corpus_files, load_expected
from ketch.pipelines.compiler import load_pipeline_file

# Top-level IR keys whose values legitimately differ between the two compilers.
COSMETIC = {
    "sdkVersion": "names the compiler: 'kfp-2.16.1' there, 'ketch-<version>' here",
}

FILES = corpus_files()
IDS = [p.stem for p in FILES]


def ketch_ir(path: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dsl.Condition warns
        return load_pipeline_file(path, load_expected(path).get("pipeline"))


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every path where two IR documents differ, readable in an assertion message."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}" if path else key
            if key not in a:
                out.append(f"{where}: only in ketch's IR")
            elif key not in b:
                out.append(f"{where}: only in kfp's IR")
            else:
                out.extend(differences(a[key], b[key], where))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: kfp {a!r} != ketch {b!r}"]


def test_corpus_is_big_enough_and_has_expectations() -> None:
    assert len(FILES) >= 15
    for path in FILES:
        expected = load_expected(path)
        assert expected["phase"] in ("Succeeded", "Failed"), path.name
        assert expected["tasks"], path.name
    phases = {load_expected(p)["phase"] for p in FILES}
    assert phases == {"Succeeded", "Failed"}


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_ketch_compiles_corpus(path: Path) -> None:
    ir = ketch_ir(path)
    assert ir["schemaVersion"] == "2.1.0"
    assert ir["root"]["dag"]["tasks"]
    executors = ir["deploymentSpec"]["executors"]
    for component in ir["components"].values():
        assert "dag" in component or component["executorLabel"] in executors
    # Every task the expectation names exists where it says (nested under its DAG).
    pending = [(ir["root"], load_expected(path)["tasks"])]
    while pending:
        component, expected_tasks = pending.pop()
        tasks = component["dag"]["tasks"]
        for task_name, expected in expected_tasks.items():
            assert task_name in tasks, (path.name, task_name, sorted(tasks))
            if "tasks" in expected:
                ref = tasks[task_name]["componentRef"]["name"]
                pending.append((ir["components"][ref], expected["tasks"]))


def test_condition_is_deprecated_like_kfp() -> None:
    with pytest.warns(DeprecationWarning, match="dsl.If"):
        load_pipeline_file(CORPUS / "condition_legacy.py")


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_ir_equals_kfp(path: Path, kfp_corpus_ir: dict[str, dict[str, Any]]) -> None:
    theirs = dict(kfp_corpus_ir[path.name])
    assert "error" not in theirs, theirs.get("error")
    ours = ketch_ir(path)
    for key in COSMETIC:
        assert key in theirs and key in ours
        theirs.pop(key)
        ours = {k: v for k, v in ours.items() if k != key}
    diff = differences(theirs, ours)
    assert not diff, "\n".join(diff[:40])


@pytest.mark.slow
def test_ir_parses_with_pipeline_spec_protobuf(proto_check: Any) -> None:
    docs = [ketch_ir(p) for p in FILES]
    errors = proto_check(docs)
    assert errors == [None] * len(FILES), dict(zip(IDS, errors, strict=True))
    # The check is strict: a misspelt field is rejected.
    broken = dict(docs[0], pipelineInf={"name": "x"})
    assert "pipelineInf" in (proto_check([broken])[0] or "")


@pytest.mark.slow
def test_loader_reads_kfp_compiled_yaml(tmp_path: Path,
                                        kfp_corpus_ir: dict[str, dict[str, Any]]) -> None:
    import yaml

    for name, ir in kfp_corpus_ir.items():
        file = tmp_path / f"{Path(name).stem}.yaml"
        file.write_text("# PIPELINE DEFINITION\n" + yaml.safe_dump(ir))
        assert load_pipeline_file(file) == ir
