"""``dsl.importer``: an artifact that already exists (a URI) as a task output."""

from __future__ import annotations

from typing import Any

from ketch.pipelines.dsl._channels import PipelineChannel
from ketch.pipelines.dsl._component import BaseComponent, IOSpec, Signature
from ketch.pipelines.dsl._task import PipelineTask

__all__ = ["ImporterComponent", "importer"]


class ImporterComponent(BaseComponent):
    """The component behind one ``dsl.importer`` call (kfp names it ``importer``)."""

    def __init__(self, artifact_uri: Any, artifact_class: Any, *, reimport: bool,
                 metadata: Any, download_to_workspace: bool,
                 metadata_inputs: dict[str, IOSpec]) -> None:
        signature = Signature(
            inputs={"uri": IOSpec(type="String"), **metadata_inputs},
            outputs={"artifact": IOSpec(type=artifact_class, is_artifact=True)})
        super().__init__("importer", signature, None)
        self.artifact_uri = artifact_uri
        self.artifact_class = artifact_class
        self.reimport = reimport
        self.metadata = metadata
        self.download_to_workspace = download_to_workspace


def importer(artifact_uri: Any, artifact_class: Any, reimport: bool = False,
             metadata: dict[str, Any] | None = None,
             download_to_workspace: bool = False) -> PipelineTask:
    """Import an existing artifact (``artifact_uri``) for downstream tasks.

    ``artifact_uri`` is a constant or a string pipeline parameter/task output; values in
    ``metadata`` may be channels too (each becomes an input ``metadata``, ``metadata-2``...).
    The task's ``.output`` is the artifact.
    """
    from ketch.pipelines.dsl._pipeline import channels_in

    call_inputs: dict[str, Any] = {}
    metadata_inputs: dict[str, IOSpec] = {}

    def input_for(channel: PipelineChannel) -> str:
        for name, existing in call_inputs.items():
            if existing is channel:
                return f"{{{{$.inputs.parameters['{name}']}}}}"
        name, index = "metadata", 2
        while name in call_inputs:
            name, index = f"metadata-{index}", index + 1
        call_inputs[name] = channel
        metadata_inputs[name] = IOSpec(type=channel.channel_type)
        return f"{{{{$.inputs.parameters['{name}']}}}}"

    def walk(value: Any) -> Any:
        if isinstance(value, PipelineChannel):
            return input_for(value)
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            for channel in channels_in(value):
                value = value.replace(channel.pattern, input_for(channel))
        return value

    component = ImporterComponent(artifact_uri, artifact_class, reimport=reimport,
                                  metadata=walk(metadata),
                                  download_to_workspace=download_to_workspace,
                                  metadata_inputs=metadata_inputs)
    result: PipelineTask = component(uri=artifact_uri, **call_inputs)
    return result
