"""Bad pipelines fail at compile time with the task and parameter named; bad files fail
in the loader and in ``ketch compile`` with the file and field named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from ketch import dsl
from ketch.core.errors import InvalidError
from ketch.dsl import CompileError, Dataset, Input, Model, Output
from ketch.pipelines.compiler import load_pipeline_file


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.component
def text() -> str:
    return "x"


@dsl.component
def numbers() -> list:
    return [1, 2]


@dsl.component
def make_dataset(out: Output[Dataset]) -> None:
    pass


@dsl.component
def use_model(model: Input[Model]) -> None:
    pass


@dsl.component
def two() -> NamedTuple("Two", [("a", int), ("b", int)]):  # type: ignore[misc]
    return (1, 2)  # type: ignore[return-value]


def compile_error(build: object) -> CompileError:
    with pytest.raises(CompileError) as info:
        dsl.pipeline(build)  # type: ignore[arg-type]
    return info.value


def test_parameter_type_mismatch_names_task_and_parameter() -> None:
    def p() -> None:
        add(a=text().output, b=1)

    err = compile_error(p)
    assert (err.task, err.parameter) == ("add", "a")
    assert "text-Output is STRING" in err.message and "NUMBER_INTEGER" in err.message
    assert isinstance(err, InvalidError)


def test_artifact_type_mismatch() -> None:
    def p() -> None:
        use_model(model=make_dataset().outputs["out"])

    err = compile_error(p)
    assert (err.task, err.parameter) == ("use-model", "model")
    assert "system.Dataset" in err.message and "system.Model" in err.message


def test_artifact_into_parameter_and_constant_into_artifact() -> None:
    def p() -> None:
        add(a=make_dataset().outputs["out"], b=1)

    err = compile_error(p)
    assert (err.task, err.parameter) == ("add", "a")
    assert "artifact" in err.message

    def q() -> None:
        use_model(model="gs://bucket/model")

    err = compile_error(q)
    assert (err.task, err.parameter) == ("use-model", "model")


def test_constant_of_the_wrong_type() -> None:
    def p() -> None:
        add(a="three", b=1)

    err = compile_error(p)
    assert (err.task, err.parameter) == ("add", "a")
    assert "'three' is str" in err.message


def test_missing_and_unknown_arguments() -> None:
    def p() -> None:
        add(a=1)

    err = compile_error(p)
    assert (err.task, err.parameter) == ("add", "b")
    assert "missing required argument 'b'" in err.message

    def q() -> None:
        add(a=1, b=2, c=3)

    err = compile_error(q)
    assert (err.task, err.parameter) == ("add", "c")


def test_cycle_through_after() -> None:
    def p() -> None:
        first = add(a=1, b=2)
        second = add(a=first.output, b=1)
        first.after(second)

    err = compile_error(p)
    assert "dependency cycle" in err.message
    assert "add -> add-2 -> add" in err.message or "add-2 -> add -> add-2" in err.message


def test_unknown_placeholder_in_container_component() -> None:
    @dsl.container_component
    def echo(msg: str) -> dsl.ContainerSpec:
        return dsl.ContainerSpec(image="alpine", command=["echo", msg],
                                 args=["{{$.inputs.parameters['nope']}}"])

    def p() -> None:
        echo(msg="hi")

    err = compile_error(p)
    assert err.task == "echo"
    assert "args[0]: unknown placeholder {{$.inputs.parameters['nope']}}" in err.message


def test_output_of_a_conditional_task_used_outside() -> None:
    def p() -> None:
        produced = add(a=1, b=2)
        with dsl.If(produced.output > 1):
            inner = add(a=1, b=1)
        add(a=inner.output, b=1)

    err = compile_error(p)
    assert err.task == "add-3"
    assert "add-2" in err.message and "condition-1" in err.message


def test_loop_output_needs_collected() -> None:
    def p() -> None:
        with dsl.ParallelFor([1, 2]) as item:
            inner = add(a=item, b=1)
        add(a=inner.output, b=1)

    err = compile_error(p)
    assert err.task == "add-2"
    assert "dsl.Collected" in err.message


def test_collected_outside_a_loop() -> None:
    @dsl.component
    def total(xs: list) -> int:
        return sum(xs)

    def p() -> None:
        total(xs=dsl.Collected(add(a=1, b=2).output))

    err = compile_error(p)
    assert err.task == "total"


def test_pipeline_output_from_inside_a_group() -> None:
    def p() -> int:
        with dsl.If(add(a=1, b=2).output > 1):
            inner = add(a=1, b=1)
        return inner.output  # type: ignore[no-any-return]

    err = compile_error(p)
    assert "top level" in err.message and "add-2" in err.message


def test_control_flow_misuse() -> None:
    def else_alone() -> None:
        with dsl.Else():
            add(a=1, b=2)

    with pytest.raises(ValueError, match=r"dsl\.Else can only follow a dsl\.If or dsl\.Elif"):
        dsl.pipeline(else_alone)

    def over_an_int() -> None:
        with dsl.ParallelFor(add(a=1, b=2).output):
            pass

    with pytest.raises(ValueError, match=r"cannot iterate over a single parameter"):
        dsl.pipeline(over_an_int)

    def constant_condition() -> None:
        with dsl.If(1 > 0):  # type: ignore[arg-type]  # noqa: PLR0133
            add(a=1, b=2)

    with pytest.raises(ValueError, match=r"evaluated at compile time"):
        dsl.pipeline(constant_condition)

    def list_condition() -> None:
        with dsl.If(numbers().output == [1]):
            add(a=1, b=2)

    with pytest.raises(CompileError, match=r"primitive"):
        dsl.pipeline(list_condition)

    def oneof_without_else() -> None:
        flag = text()
        with dsl.If(flag.output == "x"):
            a = add(a=1, b=1)
        with dsl.Elif(flag.output == "y"):
            b = add(a=1, b=2)
        dsl.OneOf(a.output, b.output)

    with pytest.raises(ValueError, match=r"ends in dsl\.Else"):
        dsl.pipeline(oneof_without_else)


def test_final_status_only_in_exit_tasks() -> None:
    @dsl.component
    def report(status: dsl.PipelineTaskFinalStatus) -> None:
        pass

    def p() -> None:
        report()

    err = compile_error(p)
    assert (err.task, err.parameter) == ("report", "status")
    assert "exit task" in err.message


def test_several_outputs_need_a_name() -> None:
    def p() -> None:
        add(a=two().output, b=1)

    with pytest.raises(AttributeError, match=r"has 2 outputs \(a, b\)"):
        dsl.pipeline(p)


def test_component_called_outside_a_pipeline() -> None:
    with pytest.raises(RuntimeError, match=r"outside a @dsl\.pipeline"):
        add(a=1, b=2)


# --- files ------------------------------------------------------------------------------

GOOD = """
from kfp import dsl

@dsl.component
def hello(name: str) -> str:
    return name

@dsl.pipeline
def first(name: str = "a"):
    hello(name=name)

@dsl.pipeline(name="second-one")
def second():
    hello(name="b")
"""


def test_loader_choice_of_pipeline(tmp_path: Path) -> None:
    file = tmp_path / "two.py"
    file.write_text(GOOD)
    with pytest.raises(InvalidError, match=r"several pipelines .*--pipeline NAME"):
        load_pipeline_file(file)
    assert load_pipeline_file(file, "first")["pipelineInfo"]["name"] == "first"
    assert load_pipeline_file(file, "second-one")["pipelineInfo"]["name"] == "second-one"
    with pytest.raises(InvalidError, match=r"--pipeline 'third': no such pipeline or "
                                           r"component \(pipelines: first, second; "
                                           r"components: hello\)"):
        load_pipeline_file(file, "third")
    # A component of the file compiles on its own, as kfp's Compiler does.
    lone = load_pipeline_file(file, "hello")
    assert lone["pipelineInfo"]["name"] == "hello"
    assert lone["root"]["dag"]["tasks"]["hello"]["inputs"]["parameters"]["name"] == {
        "componentInputParameter": "name"}


def test_loader_bad_python(tmp_path: Path) -> None:
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(InvalidError, match=r"empty\.py: holds no @dsl\.pipeline"):
        load_pipeline_file(empty)
    only_components = tmp_path / "comps.py"
    only_components.write_text(GOOD.split("@dsl.pipeline", maxsplit=1)[0])
    with pytest.raises(InvalidError, match=r"components: hello; compile one with --pipeline"):
        load_pipeline_file(only_components)
    broken = tmp_path / "broken.py"
    broken.write_text("from kfp import dsl\n\ndef oops(:\n")
    with pytest.raises(InvalidError, match=r"broken\.py: line 3"):
        load_pipeline_file(broken)
    bad = tmp_path / "bad.py"
    bad.write_text(GOOD.replace('hello(name="b")', 'hello(name="b", extra=1)'))
    with pytest.raises(InvalidError, match=r"bad.py: .*hello\.extra: component 'hello' "
                                           "has no input 'extra'"):
        load_pipeline_file(bad)
    with pytest.raises(InvalidError, match=r"no such file"):
        load_pipeline_file(tmp_path / "missing.py")


@pytest.mark.skipif(not __import__("yaml").__with_libyaml__, reason="PyYAML without libyaml")
def test_loader_reads_ir_yaml_with_libyaml(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``ketch run chain.yaml`` parses the IR with libyaml: PyYAML's pure-Python reader
    took a tenth of a 120-task run (the IR grows by a component and an executor a task).
    The pure reader's constructor is counted; the documents are the same either way."""
    import yaml
    from yaml.reader import Reader

    from ketch.pipelines.compiler import compile_pipeline

    @dsl.component
    def one(x: int) -> int:
        return x + 1

    @dsl.pipeline(name="p")
    def p(x: int = 0) -> None:
        one(x=one(x=x).output)

    ir = tmp_path / "p.yaml"
    ir.write_text(yaml.safe_dump(compile_pipeline(p)) + "---\nplatforms: {}\n")
    expected = yaml.safe_load_all(ir.read_text()).__next__()
    made: list[object] = []
    init = Reader.__init__

    def counted(self: Reader, stream: object) -> None:
        made.append(stream)
        init(self, stream)

    monkeypatch.setattr(Reader, "__init__", counted)
    assert load_pipeline_file(ir) == expected
    assert made == []


def test_loader_bad_ir(tmp_path: Path) -> None:
    not_yaml = tmp_path / "p.yaml"
    not_yaml.write_text("root: [unclosed\n")
    with pytest.raises(InvalidError, match=r"p\.yaml: not valid YAML"):
        load_pipeline_file(not_yaml)
    missing = tmp_path / "m.yaml"
    missing.write_text("pipelineInfo: {name: x}\n")
    with pytest.raises(InvalidError, match=r"m\.yaml: invalid pipeline IR: root: required"):
        load_pipeline_file(missing)
    dangling = tmp_path / "d.json"
    dangling.write_text('{"pipelineInfo": {"name": "x"}, "root": {"dag": {"tasks": '
                        '{"t": {"componentRef": {"name": "comp-t"}}}}}}')
    with pytest.raises(InvalidError,
                       match=r"root\.dag\.tasks\.t\.componentRef\.name: no component"):
        load_pipeline_file(dangling)


def test_compile_cli(tmp_path: Path) -> None:
    import yaml

    file = tmp_path / "two.py"
    file.write_text(GOOD)
    out = tmp_path / "pipeline.yaml"
    ok = subprocess.run([sys.executable, "-m", "ketch.cli", "compile", str(file),
                         "--pipeline", "first", "-o", str(out)],
                        capture_output=True, text=True, check=False, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "written to" in ok.stdout
    assert out.read_text().startswith("# PIPELINE DEFINITION\n# Name: first\n")
    assert yaml.safe_load(out.read_text())["root"]["dag"]["tasks"]["hello"]
    bad = subprocess.run([sys.executable, "-m", "ketch.cli", "compile", str(file),
                          "-o", str(tmp_path / "x.yaml")],
                         capture_output=True, text=True, check=False, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and "--pipeline NAME" in bad.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_none_argument() -> None:
    def p() -> None:
        add(a=None, b=1)

    err = compile_error(p)
    assert (err.task, err.parameter) == ("add", "a")
    assert "leave the argument out" in err.message


def test_loader_helper_modules_are_per_file(tmp_path: Path) -> None:
    """Two pipeline files, each importing its own ``helpers.py``, load independently."""
    for variant in ("one", "two"):
        folder = tmp_path / variant
        folder.mkdir()
        (folder / "helpers.py").write_text(f"NAME = {variant!r}\n")
        (folder / "p.py").write_text(
            "from kfp import dsl\nimport helpers\n\n@dsl.component\ndef hello() -> str:\n"
            "    return 'x'\n\n@dsl.pipeline(name=helpers.NAME)\ndef p():\n    hello()\n")
    assert load_pipeline_file(tmp_path / "one" / "p.py")["pipelineInfo"]["name"] == "one"
    assert load_pipeline_file(tmp_path / "two" / "p.py")["pipelineInfo"]["name"] == "two"
    assert "helpers" not in sys.modules


def test_ignore_upstream_failure_needs_defaults() -> None:
    def p() -> None:
        add(a=add(a=1, b=2).output, b=1).ignore_upstream_failure()

    with pytest.raises(ValueError, match=r"task 'add-2': \.ignore_upstream_failure\(\) needs a "
                                         r"default for input 'a'"):
        dsl.pipeline(p)
