"""Artifacts: Output[...]/Input[...] of Dataset, Model, Artifact, HTML and Markdown, with
.path, .uri and .metadata, and an artifact returned from the function."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output


@dsl.component
def make_data(rows: int, data: Output[Dataset], report: Output[HTML], notes: Output[Markdown]):
    with open(data.path, "w") as fh:
        fh.write("\n".join(str(i) for i in range(rows)))
    data.metadata["rows"] = rows
    with open(report.path, "w") as fh:
        fh.write(f"<h1>{rows} rows</h1>")
    with open(notes.path, "w") as fh:
        fh.write(f"# {rows} rows")


@dsl.component
def train(data: Input[Dataset], model: Output[Model]) -> float:
    with open(data.path) as fh:
        values = [int(line) for line in fh.read().split()]
    mean = sum(values) / len(values)
    with open(model.path, "w") as fh:
        fh.write(str(mean))
    model.framework = "mean"
    model.metadata["source_rows"] = data.metadata["rows"]
    return mean


@dsl.component
def package(model: Input[Model]) -> Artifact:
    bundle = Artifact(uri=model.uri + ".bundle", metadata={"framework": model.framework})
    with open(bundle.path, "w") as fh:
        fh.write("bundled")
    return bundle


@dsl.pipeline(name="artifacts")
def artifacts_pipeline(rows: int = 5) -> Model:
    data = make_data(rows=rows)
    trained = train(data=data.outputs["data"])
    package(model=trained.outputs["model"])
    return trained.outputs["model"]


EXPECTED = {
    "arguments": {"rows": 5},
    "phase": "Succeeded",
    "outputs": {"artifacts": {"Output": {"metadata": {"framework": "mean", "source_rows": 5}}}},
    "tasks": {
        "make-data": {"phase": "Succeeded",
                      "outputs": {"artifacts": {"data": {"metadata": {"rows": 5}}}}},
        "train": {"phase": "Succeeded", "outputs": {"parameters": {"Output": 2.0}}},
        "package": {"phase": "Succeeded",
                    "outputs": {"artifacts": {"Output": {"metadata": {"framework": "mean"}}}}},
    },
}
