"""Harder topologies than the corpus (nested loops, sub-pipelines inside loops, typed
conditions, an exit handler over everything, loops over artifact lists, a OneOf returned by
a sub-pipeline, importers, pipeline_root, docstring descriptions, additional_funcs,
resources from task outputs, loops over dict-item fields, pipelines returning artifact
lists and dicts, v1 YAML components with every placeholder, custom artifact classes,
cache keys, images from channels, ignore_upstream_failure): ketch's IR equals kfp
2.16.1's, key by key, except ``sdkVersion``.

Known difference not exercised here: when one sub-pipeline holds two components whose
names collide with the outer pipeline's, kfp renames them in protobuf map order (a hash
order), ketch in declaration order; only the internal component names differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ketch.pipelines.compiler import load_pipeline_file

pytestmark = pytest.mark.slow

SOURCES = {
    "nested_loops_and_subpipelines": '''
from typing import List, Dict
from kfp import dsl
from kfp.dsl import Dataset, Input, Output, Model, Artifact

@dsl.component
def nums(n: int) -> List[int]:
    return list(range(n))

@dsl.component
def add(a: int, b: int) -> int:
    return a + b

@dsl.component
def total(xs: List[int]) -> int:
    return sum(xs)

@dsl.component
def mk(x: int, out: Output[Dataset]):
    pass

@dsl.component
def mks() -> List[Dict[str, int]]:
    return [{"a": 1}]

@dsl.component
def rd(ds: Input[List[Dataset]]) -> int:
    return 1

@dsl.component
def one(ds: Input[Dataset]) -> int:
    return 1

@dsl.pipeline
def inner(x: int, d: Input[Dataset]) -> int:
    return add(a=x, b=one(ds=d).output).output

@dsl.pipeline
def topology(n: int = 3, base: Input[Dataset] = None,
             cfg: List[Dict[str, int]] = [{"a": 1, "b": 2}]) -> List[int]:
    outer = nums(n=n)
    with dsl.ParallelFor(outer.output) as i:
        with dsl.ParallelFor([10, 20]) as j:
            s = add(a=i, b=j)
            with dsl.If(s.output > 11):
                add(a=s.output, b=1)
        m = mk(x=i)
        nested = inner(x=i, d=m.outputs["out"])
    rd(ds=dsl.Collected(m.outputs["out"]))
    tot = total(xs=dsl.Collected(nested.output))
    with dsl.ParallelFor(cfg) as c:
        add(a=c.a, b=c.b)
    with dsl.ParallelFor(mks().output) as d:
        add(a=d.a, b=tot.output)
    return dsl.Collected(nested.output)
''',
    "conditions_and_exit_handler": '''
from typing import List
from kfp import dsl
from kfp.dsl import Dataset, Input, Output, Artifact, PipelineTaskFinalStatus

@dsl.component
def num() -> float:
    return 1.5

@dsl.component
def flag() -> bool:
    return True

@dsl.component
def word() -> str:
    return "a"

@dsl.component
def mk(out: Output[Dataset]):
    pass

@dsl.component
def use(ds: Input[Dataset]) -> str:
    return "x"

@dsl.component
def echo(s: str) -> str:
    return s

@dsl.component
def fin(status: PipelineTaskFinalStatus, tag: str = "t"):
    pass


@dsl.pipeline
def topology(limit: int = 2, ratio: float = 0.5, name: str = "n", on: bool = True,
             dss: Input[List[Dataset]] = None):
    f = fin(tag=name)
    with dsl.ExitHandler(f):
        n = num()
        b = flag()
        w = word()
        with dsl.If(n.output >= limit, name="ge"):
            echo(s="a")
        with dsl.If(n.output != ratio):
            echo(s="b")
        with dsl.If(b.output == on):
            with dsl.If(w.output < name):
                echo(s=w.output)
        with dsl.If(limit <= 3):
            echo(s=name)
        with dsl.If(w.output == 3):
            echo(s="c")
        with dsl.ParallelFor([1.5, 2.5], name="floats", parallelism=1) as fl:
            with dsl.If(fl > 2):
                echo(s="d")
        with dsl.If(n.output == 1):
            m1 = mk()
        with dsl.Elif(n.output == 2):
            m2 = mk()
        with dsl.Else():
            m3 = mk()
        use(ds=dsl.OneOf(m1.outputs["out"], m2.outputs["out"], m3.outputs["out"]))
''',
    "artifact_loops_and_oneof_subpipeline": '''
from typing import List
from kfp import dsl
from kfp.dsl import Dataset, Input, Output, PipelineTaskFinalStatus

@dsl.component
def use(ds: Input[Dataset]) -> str:
    return "x"

@dsl.component
def mk(out: Output[Dataset]):
    pass

@dsl.component
def coin() -> str:
    return "h"

@dsl.component
def echo(s: str) -> str:
    return s

@dsl.component
def fin(status: PipelineTaskFinalStatus):
    pass

@dsl.pipeline
def pick(flip: str) -> str:
    with dsl.If(flip == "h"):
        a = echo(s="heads")
    with dsl.Else():
        b = echo(s="tails")
    return dsl.OneOf(a.output, b.output)

@dsl.pipeline
def topology(dss: Input[List[Dataset]]):
    f = fin()
    with dsl.ExitHandler(f):
        with dsl.ParallelFor(dss) as d:
            use(ds=d)
        c = coin()
        p = pick(flip=c.output)
        echo(s=p.output)
        with dsl.ParallelFor([1, 2]) as i:
            e = echo(s="loop")
        echo(s="after").after(e)
        m = mk()
        m.set_caching_options(False)
        with dsl.ParallelFor([1, 2]) as i:
            use(ds=m.outputs["out"])
''',
    "importers": '''
from kfp import dsl
from kfp.dsl import Dataset, Input, Model

@dsl.component
def use(ds: Input[Dataset]) -> str:
    return ds.uri

@dsl.component
def name() -> str:
    return "n"

@dsl.pipeline
def topology(uri: str = "gs://b/data.csv"):
    a = dsl.importer(artifact_uri="gs://b/fixed.csv", artifact_class=Dataset,
                     reimport=True, metadata={"k": "v"})
    use(ds=a.output)
    n = name()
    b = dsl.importer(artifact_uri=uri, artifact_class=Dataset,
                     metadata={"who": n.output, "x": f"pre-{uri}"})
    use(ds=b.output)
    c = dsl.importer(artifact_uri=uri, artifact_class=Model)
''',
    "pipeline_root_and_docstrings": '''
from kfp import dsl

@dsl.component
def hi(x: int = 1) -> int:
    """Says hi."""
    return x

@dsl.pipeline(name="pr", display_name="Pipeline Root",
              pipeline_root="gs://bucket/root")
def topology(x: int = 2):
    """Doc string."""
    hi(x=x)
    hi()
''',
    "kfp_features": '''
from typing import List, NamedTuple
from kfp import dsl
from kfp.dsl import Dataset, Input, Output, PipelineTaskFinalStatus


def helper(x: int) -> int:
    return x * 2


@dsl.component(additional_funcs=[helper])
def double(x: int) -> int:
    """Doubles a number.

    Args:
        x: The number.

    Returns:
        Output: Twice the number.
    """
    return helper(x)


@dsl.component
def limit() -> str:
    return "2"


@dsl.component
def rows() -> list:
    return [{"label": "a", "parts": [{"id": 1}]}]


@dsl.component
def show(text: str) -> str:
    return text


@dsl.component
def make(out: Output[Dataset]):
    pass


@dsl.component
def state(status: dict) -> str:
    return status["state"]


@dsl.container_component
def hello():
    return dsl.ContainerSpec(image="alpine", command=["echo", "hello"], args=[])


@dsl.pipeline
def collect() -> List[Dataset]:
    with dsl.ParallelFor([1, 2]):
        made = make()
    return dsl.Collected(made.outputs["out"])


@dsl.component
def make_other(out: Output[Dataset]):
    pass


@dsl.pipeline
def pair() -> NamedTuple("Pair", first=Dataset, second=Dataset):
    return {"first": make().outputs["out"], "second": make_other().outputs["out"]}


@dsl.pipeline
def notify(status: PipelineTaskFinalStatus):
    state(status=status)


@dsl.pipeline(name="KFP Features Pipeline")
def topology(cpu: str = "1", items: list = [{"a": 1}]):
    """Exercises kfp features.

    A longer description
    over two lines.

    Args:
        cpu: CPU limit for the doubling step.
    """
    exit_task = notify()
    with dsl.ExitHandler(exit_task):
        doubled = double(x=3)
        doubled.set_cpu_limit(cpu).set_memory_limit(limit().output)
        doubled.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(limit().output)
        with dsl.ParallelFor(rows().output) as row:
            with dsl.If(row.label == "a"):
                show(text=row.label)
            with dsl.ParallelFor(row.parts) as part:
                show(text=part.id)
        with dsl.ParallelFor(items) as item:
            with dsl.If(item.a > 0):
                show(text="positive")
        collect()
        pair()
        hello()
''',
    "yaml_components": '''
from kfp import components, dsl

producer = components.load_component_from_text("""
name: Produce Data
description: Writes a greeting and a count.
inputs:
- {name: Greeting Text, type: String, default: hello}
- {name: Times, type: Integer, default: "2"}
- {name: Suffix, type: String, optional: true}
outputs:
- {name: Data, type: Dataset}
- {name: Count, type: Integer}
implementation:
  container:
    image: alpine:3.19
    command:
    - sh
    - -c
    - |
      mkdir -p "$(dirname "$0")" "$(dirname "$1")"
      printf "%s" "$2" > "$0"; printf "%s" "$3" > "$1"
    - {outputPath: Data}
    - {outputPath: Count}
    - concat: [{inputValue: Greeting Text}, "-", {inputValue: Times}]
    - {inputValue: Times}
    args:
    - if:
        cond: {isPresent: Suffix}
        then: [--suffix, {inputValue: Suffix}]
        else: [--no-suffix]
    env:
      MODE: fast
""")

consumer = components.load_component_from_text("""
name: consume
inputs:
- {name: data, type: Dataset}
- {name: count, type: Integer}
- {name: anything}
implementation:
  container:
    image: alpine:3.19
    command: [cat, {inputPath: data}, {inputUri: data}, {inputValue: count}]
""")


@dsl.pipeline
def topology(times: int = 3):
    produced = producer(times=times).set_env_variable("MODE", "slow")
    consumer(data=produced.outputs["data"], count=produced.outputs["count"],
             anything=produced.outputs["data"])
''',
    "custom_artifacts": '''
from kfp import dsl
from kfp.dsl import Output, Input, Artifact


class VertexModel(Artifact):
    schema_title = "google.VertexModel"
    schema_version = "0.0.1"


@dsl.component
def make(out: Output[VertexModel]):
    out.metadata["x"] = 1


@dsl.component
def use(m: Input[VertexModel]) -> str:
    return m.schema_title


@dsl.pipeline
def topology():
    use(m=make().outputs["out"])
''',
    "task_options": '''
from kfp import dsl

@dsl.component
def step(x: int) -> int:
    return x

@dsl.component
def img() -> str:
    return "python:3.12"

@dsl.component
def cleanup(x: int = 0):
    pass

@dsl.pipeline
def topology(tag: str = "python:3.10"):
    a = step(x=1).set_caching_options(enable_caching=True, cache_key="my-key")
    b = step(x=a.output).set_container_image("python:3.13")
    c = step(x=2).set_container_image(img().output)
    d = step(x=3).set_container_image(tag)
    cleanup(x=b.output).ignore_upstream_failure()
    with dsl.ParallelFor([1, 2], name="loop-name"):
        step(x=4).set_display_name("in loop")
''',
    "loops_over_loop_items": '''
from typing import List
from kfp import dsl

@dsl.component
def show(x: int) -> int:
    return x

@dsl.component
def rows() -> List[List[int]]:
    return [[1, 2], [3]]

@dsl.component
def total(xs: List[int]) -> int:
    return sum(xs)

@dsl.pipeline
def topology():
    with dsl.ParallelFor([[1, 2], [3]]) as row:
        with dsl.ParallelFor(row) as x:
            show(x=x)
    with dsl.ParallelFor(rows().output) as r:
        with dsl.ParallelFor(r, parallelism=1) as y:
            s = show(x=y)
        total(xs=dsl.Collected(s.output))
''',
    "double_fan_in_and_oneof_in_a_loop": '''
from typing import List
from kfp import dsl

@dsl.component
def show(x: int) -> int:
    return x

@dsl.component
def total(xs: list) -> int:
    return len(xs)

@dsl.component
def flip(x: int) -> str:
    return "h"

@dsl.pipeline
def topology() -> List[int]:
    with dsl.ParallelFor([1, 2]) as a:
        with dsl.ParallelFor([3, 4]) as b:
            s = show(x=b)
        with dsl.If(flip(x=a).output == "h"):
            h = show(x=1)
        with dsl.Else():
            t = show(x=2)
        show(x=dsl.OneOf(h.output, t.output))
    total(xs=dsl.Collected(s.output))
    return dsl.Collected(s.output)
''',
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory, kfp_venv: Path,
             kfp_compile: Any) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    root = tmp_path_factory.mktemp("topologies")
    files = []
    for name, source in SOURCES.items():
        (root / f"{name}.py").write_text(source)
        files.append((root / f"{name}.py", "topology"))
    theirs = kfp_compile(files)
    return {name: (theirs[str(root / f"{name}.py")],
                   load_pipeline_file(root / f"{name}.py", "topology"))
            for name in SOURCES}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_same_ir_as_kfp(name: str,
                        compiled: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> None:
    theirs, ours = compiled[name]
    assert "error" not in theirs, theirs
    theirs = {k: v for k, v in theirs.items() if k != "sdkVersion"}
    ours = {k: v for k, v in ours.items() if k != "sdkVersion"}
    if theirs != ours:
        pytest.fail(_first_difference(theirs, ours))


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: present in only one IR"
            found = _first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return ""
    return "" if a == b else f"{path}: kfp {a!r} != ketch {b!r}"
