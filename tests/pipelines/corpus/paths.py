"""InputPath/OutputPath for artifacts and an OutputPath(str) output parameter."""

from kfp import dsl
from kfp.dsl import InputPath, OutputPath


@dsl.component
def write_lines(count: int, lines_path: OutputPath("Dataset"), first_path: OutputPath(str)):
    with open(lines_path, "w") as fh:
        fh.write("\n".join(f"line {i}" for i in range(count)))
    with open(first_path, "w") as fh:
        fh.write("line 0")


@dsl.component
def count_lines(lines_path: InputPath("Dataset"), first: str) -> int:
    with open(lines_path) as fh:
        lines = fh.read().splitlines()
    assert lines[0] == first
    return len(lines)


@dsl.pipeline(name="paths")
def paths_pipeline(count: int = 3) -> int:
    written = write_lines(count=count)
    counted = count_lines(lines_path=written.outputs["lines_path"],
                          first=written.outputs["first_path"])
    return counted.output


EXPECTED = {
    "arguments": {"count": 3},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": 3}},
    "tasks": {
        "write-lines": {"phase": "Succeeded",
                        "outputs": {"parameters": {"first_path": "line 0"}}},
        "count-lines": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 3}}},
    },
}
