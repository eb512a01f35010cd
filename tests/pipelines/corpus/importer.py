"""dsl.importer: an existing file becomes an artifact (a constant URI and a URI from a
pipeline parameter, with metadata), consumed downstream. (Metadata holding task outputs is
compiled as kfp does in test_compiler_topologies.py.)"""

from kfp import dsl
from kfp.dsl import Dataset, Input


@dsl.component
def describe(data: Input[Dataset]) -> str:
    import os

    return f"{data.uri}|{data.metadata.get('source')}|{os.path.exists(data.path)}"


@dsl.pipeline(name="importer")
def importer_pipeline(uri: str = "/etc/passwd") -> str:
    fixed = dsl.importer(artifact_uri="/etc/hostname", artifact_class=dsl.Artifact,
                         reimport=True, metadata={"source": "constant"})
    describe(data=fixed.output)
    imported = dsl.importer(artifact_uri=uri, artifact_class=Dataset,
                            metadata={"source": "corpus"})
    return describe(data=imported.output).output


EXPECTED = {
    "arguments": {"uri": "/etc/passwd"},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": "/etc/passwd|corpus|True"}},
    "tasks": {
        "importer": {"phase": "Succeeded"},
        "describe": {"phase": "Succeeded",
                     "outputs": {"parameters": {"Output": "/etc/hostname|constant|True"}}},
        "describe-2": {"phase": "Succeeded",
                       "outputs": {"parameters": {"Output": "/etc/passwd|corpus|True"}}},
    },
}
