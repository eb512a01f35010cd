"""The in-task executor: ``run_lightweight`` on kfp-generated source, checked against the
files it writes, and against the real ``kfp.dsl.executor_main`` on the same input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ketch.pipelines.compiler import load_pipeline_file
from ketch.pipelines.executor import install_kfp_alias, main, run_lightweight

HEADER = ("\nimport kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n\n")

SOURCE = HEADER + textwrap.dedent('''
    def params(text: str, count: int, ratio: float, flag: bool, items: list, mapping: dict,
               note: Optional[str] = None, scale: float = 2.0) -> NamedTuple(
                   "Out", [("summary", str), ("total", int), ("scaled", float), ("ok", bool),
                           ("doubled", List[int]), ("keys", Dict[str, int])]):
        assert isinstance(count, int) and isinstance(ratio, float)
        summary = f"{text}:{count}:{note}"
        return (summary, count + sum(items), ratio * scale, not flag, [i * 2 for i in items],
                {k: v + 1 for k, v in mapping.items()})

    def artifacts(data: Input[Dataset], model: Output[Model], metrics: Output[Metrics],
                  classification: Output[ClassificationMetrics], page: Output[HTML]) -> int:
        with open(data.path) as fh:
            rows = fh.read().splitlines()
        with open(model.path, "w") as fh:
            fh.write(f"model of {len(rows)}")
        model.framework = "counting"
        metrics.log_metric("rows", len(rows))
        classification.log_confusion_matrix(["a", "b"], [[1, 0], [0, 1]])
        classification.log_roc_curve([0.0, 1.0], [0.0, 1.0], [1.0, 0.0])
        with open(page.path, "w") as fh:
            fh.write(f"<p>{data.metadata['source']}</p>")
        return len(rows)

    def paths(src: InputPath("Dataset"), dst: OutputPath("Model"), first: OutputPath(str),
              size: OutputPath(int)):
        with open(src) as fh:
            lines = fh.read().splitlines()
        with open(dst, "w") as fh:
            fh.write(lines[0].upper())
        with open(first, "w") as fh:
            fh.write(lines[0])
        with open(size, "w") as fh:
            fh.write(str(len(lines)))

    def many(datasets: Input[List[Dataset]]) -> str:
        return ",".join(open(d.path).read() for d in datasets)

    def returns_artifact(base: str) -> Model:
        model = Model(uri=base + "/bundle", metadata={"kind": "bundle"})
        with open(model.path, "w") as fh:
            fh.write("weights")
        return model

    def custom(out: Output[Artifact]):
        out.set_path(out.path + ".custom")
        with open(out.path, "w") as fh:
            fh.write("elsewhere")

    def final(status: PipelineTaskFinalStatus) -> str:
        return f"{status.state}|{status.pipeline_task_name}|{status.error_message}"

    def boom(x: int) -> int:
        raise ValueError(f"bad x {x}")

    def wrong_type() -> int:
        return "not an int"
''')


def artifact(uri: str, title: str, name: str = "a", **metadata: Any) -> dict[str, Any]:
    return {"artifacts": [{"name": name, "uri": uri, "type": {"schemaTitle": title},
                           "metadata": metadata}]}


def run(tmp_path: Path, func: str, executor_input: dict[str, Any]) -> dict[str, Any]:
    executor_input.setdefault("outputs", {})["outputFile"] = str(tmp_path / "out" / "output.json")
    run_lightweight(SOURCE, func, executor_input)
    return json.loads((tmp_path / "out" / "output.json").read_text())  # type: ignore[no-any-return]


def test_parameters_of_every_type_and_named_tuple(tmp_path: Path) -> None:
    # Numbers arrive as the IR's doubles (2.0); ints come back where KFP gives ints.
    ei = {"inputs": {"parameterValues": {"text": "hi", "count": 2.0, "ratio": 1,
                                         "flag": True, "items": [1.0, 2.0],
                                         "mapping": {"a": 1.0}}},
          "outputs": {"parameters": {"total": {"outputFile": str(tmp_path / "p" / "total")},
                                     "doubled": {"outputFile": str(tmp_path / "p" / "d")}}}}
    out = run(tmp_path, "params", ei)
    assert out == {"parameterValues": {"summary": "hi:2:None", "total": 5, "scaled": 2.0,
                                       "ok": False, "doubled": [2, 4], "keys": {"a": 2}}}
    # Like kfp's executor, returned values go to the ExecutorOutput only.
    assert not (tmp_path / "p").exists()


def test_input_and_output_artifacts(tmp_path: Path) -> None:
    data = tmp_path / "in" / "data"
    data.parent.mkdir()
    data.write_text("x\ny\nz")
    ei = {"inputs": {"artifacts": {"data": artifact(str(data), "system.Dataset",
                                                    source="unit")}},
          "outputs": {"artifacts": {
              "model": artifact(str(tmp_path / "o" / "model" / "m"), "system.Model", "model"),
              "metrics": artifact(str(tmp_path / "o" / "metrics"), "system.Metrics", "metrics"),
              "classification": artifact(str(tmp_path / "o" / "cls"),
                                         "system.ClassificationMetrics", "classification"),
              "page": artifact(str(tmp_path / "o" / "page.html"), "system.HTML", "page")}}}
    out = run(tmp_path, "artifacts", ei)
    assert out["parameterValues"] == {"Output": 3}
    arts = {k: v["artifacts"][0] for k, v in out["artifacts"].items()}
    assert arts["model"] == {"name": "model", "uri": str(tmp_path / "o" / "model" / "m"),
                             "metadata": {"framework": "counting"}}
    assert (tmp_path / "o" / "model" / "m").read_text() == "model of 3"
    assert arts["metrics"]["metadata"] == {"rows": 3}
    assert arts["classification"]["metadata"]["confusionMatrix"]["rows"] == [
        {"row": [1, 0]}, {"row": [0, 1]}]
    assert len(arts["classification"]["metadata"]["confidenceMetrics"]) == 2
    assert (tmp_path / "o" / "page.html").read_text() == "<p>unit</p>"


def test_input_path_and_output_path(tmp_path: Path) -> None:
    src = tmp_path / "src.txt"
    src.write_text("alpha\nbeta")
    ei = {"inputs": {"artifacts": {"src": artifact(str(src), "system.Dataset")}},
          "outputs": {"artifacts": {"dst": artifact(str(tmp_path / "o" / "dst"),
                                                    "system.Model", "dst")},
                      "parameters": {"first": {"outputFile": str(tmp_path / "o" / "first")},
                                     "size": {"outputFile": str(tmp_path / "o" / "size")}}}}
    out = run(tmp_path, "paths", ei)
    assert (tmp_path / "o" / "dst").read_text() == "ALPHA"
    assert (tmp_path / "o" / "first").read_text() == "alpha"
    # Parameters written through OutputPath files are read back, typed.
    assert out["parameterValues"] == {"first": "alpha", "size": 2}
    assert out["artifacts"]["dst"]["artifacts"][0]["uri"] == str(tmp_path / "o" / "dst")


def test_list_of_artifacts_and_returned_artifact(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"d{i}"
        f.write_text(str(i))
        files.append({"name": f"d{i}", "uri": str(f), "type": {"schemaTitle": "system.Dataset"}})
    out = run(tmp_path, "many", {"inputs": {"artifacts": {"datasets": {"artifacts": files}}}})
    assert out["parameterValues"] == {"Output": "0,1,2"}
    base = tmp_path / "models"
    base.mkdir()
    out = run(tmp_path, "returns_artifact", {
        "inputs": {"parameterValues": {"base": str(base)}},
        "outputs": {"artifacts": {"Output": artifact(str(tmp_path / "unused"), "system.Model",
                                                     "Output")}}})
    returned = out["artifacts"]["Output"]["artifacts"][0]
    assert returned["uri"] == str(base / "bundle")
    assert returned["metadata"] == {"kind": "bundle"}
    assert (base / "bundle").read_text() == "weights"


def test_custom_path_reported(tmp_path: Path) -> None:
    target = tmp_path / "o" / "art"
    out = run(tmp_path, "custom", {"outputs": {"artifacts": {
        "out": artifact(str(target), "system.Artifact", "out")}}})
    entry = out["artifacts"]["out"]["artifacts"][0]
    assert entry["uri"] == str(target)
    assert entry["custom_path"] == f"{target}.custom"
    assert Path(f"{target}.custom").read_text() == "elsewhere"


def test_task_final_status(tmp_path: Path) -> None:
    status = {"state": "FAILED", "pipelineJobResourceName": "default/run-1",
              "pipelineTaskName": "exit-handler-1", "error": {"code": 9, "message": "boom"}}
    out = run(tmp_path, "final", {"inputs": {"parameterValues": {"status": status}}})
    assert out["parameterValues"] == {"Output": "FAILED|exit-handler-1|boom"}


def test_raising_function_gives_traceback_and_status_1(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    source_file = tmp_path / "component.py"
    source_file.write_text(SOURCE)
    ei = {"inputs": {"parameterValues": {"x": 3}},
          "outputs": {"outputFile": str(tmp_path / "o.json")}}
    code = main(["--executor_input", json.dumps(ei), "--function_to_execute", "boom",
                 "--component_module_path", str(source_file)])
    assert code == 1
    err = capsys.readouterr().err
    assert "ValueError: bad x 3" in err
    # The user's own source line is shown in the traceback.
    assert 'raise ValueError(f"bad x {x}")' in err
    assert not (tmp_path / "o.json").exists()
    with pytest.raises(ValueError, match="returned <class 'str'>"):
        run(tmp_path, "wrong_type", {})


def test_executor_as_a_process(tmp_path: Path) -> None:
    source_file = tmp_path / "component.py"
    source_file.write_text(SOURCE)
    ei = {"inputs": {"parameterValues": {"x": 1}},
          "outputs": {"outputFile": str(tmp_path / "o.json")}}
    proc = subprocess.run([sys.executable, "-m", "ketch.pipelines.executor",
                           "--executor_input", json.dumps(ei), "--function_to_execute", "boom",
                           "--component_module_path", str(source_file)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1
    assert "ValueError: bad x 1" in proc.stderr


def test_remote_uris_map_to_kfp_mount_paths() -> None:
    from ketch.dsl import Artifact, Model

    assert Artifact(uri="gs://bucket/a/b").path == "/gcs/bucket/a/b"
    assert Artifact(uri="s3://bucket/k").path == "/s3/bucket/k"
    assert Artifact(uri="minio://bucket/k").path == "/minio/bucket/k"
    assert Artifact(uri="/abs/local").path == "/abs/local"
    assert Model(uri="oci://reg/model").path == "/oci/reg_model/models"
    art = Artifact(uri="gs://b/x")
    art.path = "/s3/other/y"
    assert art.uri == "s3://other/y"


def test_runs_source_from_compiled_ir(tmp_path: Path) -> None:
    """The embedded program of ketch's IR runs through the kfp alias as it is."""
    ir = load_pipeline_file(Path(__file__).parent / "corpus" / "add_chain.py")
    container = ir["deploymentSpec"]["executors"]["exec-add"]["container"]
    assert container["args"][-1] == "add"
    out = run_with(tmp_path, container["command"][-1], "add",
                   {"inputs": {"parameterValues": {"a": 2.0, "b": 5.0}}})
    assert out == {"parameterValues": {"Output": 7}}


def run_with(tmp_path: Path, source: str, func: str, ei: dict[str, Any]) -> dict[str, Any]:
    ei.setdefault("outputs", {})["outputFile"] = str(tmp_path / "ir-out.json")
    run_lightweight(source, func, ei)
    return json.loads((tmp_path / "ir-out.json").read_text())  # type: ignore[no-any-return]


def test_kfp_alias_resolves_generated_imports() -> None:
    assert install_kfp_alias() is True
    import kfp  # type: ignore[import-not-found]
    from kfp import dsl  # type: ignore[import-not-found]
    from kfp.dsl.types.artifact_types import Dataset  # type: ignore[import-not-found]

    import ketch.dsl

    assert dsl.Dataset is ketch.dsl.Dataset is Dataset
    assert dsl.component is ketch.dsl.component
    assert kfp.__version__ == "2.16.1"


SRC = str(Path(__file__).resolve().parents[2] / "src")


def _same_output_cases(tmp: Path) -> list[tuple[str, dict[str, Any]]]:
    data = tmp / "data.txt"
    data.write_text("x\ny")
    out = tmp / "outs"
    return [
        ("params", {"inputs": {"parameterValues": {
            "text": "hi", "count": 2, "ratio": 1.5, "flag": False, "items": [1],
            "mapping": {"k": 0}, "note": "n"}}}),
        ("final", {"inputs": {"parameterValues": {"status": {
            "state": "SUCCEEDED", "pipelineTaskName": "t"}}}}),
        ("artifacts", {
            "inputs": {"artifacts": {"data": artifact(str(data), "system.Dataset",
                                                      source="s")}},
            "outputs": {"artifacts": {
                "model": artifact(str(out / "model"), "system.Model", "model"),
                "metrics": artifact(str(out / "metrics"), "system.Metrics", "metrics"),
                "classification": artifact(str(out / "cls"), "system.ClassificationMetrics",
                                           "classification"),
                "page": artifact(str(out / "page"), "system.HTML", "page")}}}),
        ("returns_artifact", {
            "inputs": {"parameterValues": {"base": str(tmp)}},
            "outputs": {"artifacts": {"Output": artifact(str(out / "o"), "system.Model",
                                                         "Output")}}}),
        ("custom", {"outputs": {"artifacts": {"out": artifact(str(out / "c"),
                                                              "system.Artifact", "out")}}}),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("case", range(5))
def test_same_output_as_kfp_executor(tmp_path: Path, kfp_venv: Path, case: int) -> None:
    """kfp's executor_main, ketch's executor, and ketch's executor with the real kfp
    importable (its annotations and artifact classes) write the same ExecutorOutput."""
    source_file = tmp_path / "component.py"
    source_file.write_text(SOURCE)
    func, template = _same_output_cases(tmp_path)[case]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    outputs = {}
    for who in ("kfp", "ketch", "ketch-beside-kfp"):
        ei = json.loads(json.dumps(template))
        ei.setdefault("outputs", {})["outputFile"] = str(tmp_path / who / "o.json")
        if who == "kfp":
            command = [str(kfp_venv), "-m", "kfp.dsl.executor_main",
                       "--component_module_path", str(source_file),
                       "--function_to_execute", func, "--executor_input", json.dumps(ei)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=120, env=env)
            assert proc.returncode == 0, proc.stderr[-2000:]
        elif who == "ketch":
            run_lightweight(SOURCE, func, ei)
        else:
            command = [str(kfp_venv), "-W", "ignore", "-m", "ketch.pipelines.executor",
                       "--component_module_path", str(source_file),
                       "--function_to_execute", func, "--executor_input", json.dumps(ei)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=120, env=dict(env, PYTHONPATH=SRC))
            assert proc.returncode == 0, proc.stderr[-2000:]
        outputs[who] = json.loads((tmp_path / who / "o.json").read_text())
    assert outputs["ketch"] == outputs["kfp"]
    assert outputs["ketch-beside-kfp"] == outputs["kfp"]
