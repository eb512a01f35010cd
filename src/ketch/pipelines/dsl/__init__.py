"""``ketch.dsl``: the KFP v2 pipeline language, source-compatible with ``kfp.dsl``.

A KFP user's pipeline file runs by changing ``from kfp import dsl`` to
``from ketch import dsl`` (or unchanged, through the ``kfp`` alias ketch installs
when the real kfp is absent).
"""

from __future__ import annotations

from ketch.pipelines.dsl._artifacts import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Markdown,
    Metrics,
    Model,
    SlicedClassificationMetrics,
)
from ketch.pipelines.dsl._channels import Collected, OneOf, PipelineChannel
from ketch.pipelines.dsl._component import (
    BaseComponent,
    ContainerSpec,
    component,
    container_component,
)
from ketch.pipelines.dsl._groups import Condition, Elif, Else, ExitHandler, If, ParallelFor
from ketch.pipelines.dsl._importer import importer
from ketch.pipelines.dsl._pipeline import CompileError, GraphComponent, pipeline
from ketch.pipelines.dsl._placeholders import (
    PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
    PIPELINE_JOB_ID_PLACEHOLDER,
    PIPELINE_JOB_NAME_PLACEHOLDER,
    PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER,
    PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
    PIPELINE_ROOT_PLACEHOLDER,
    PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
    PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER,
    PIPELINE_TASK_ID_PLACEHOLDER,
    PIPELINE_TASK_NAME_PLACEHOLDER,
    WORKSPACE_PATH_PLACEHOLDER,
    ConcatPlaceholder,
    IfPresentPlaceholder,
)
from ketch.pipelines.dsl._task import PipelineTask
from ketch.pipelines.dsl._types import (
    Input,
    InputPath,
    Output,
    OutputPath,
    PipelineTaskFinalStatus,
)

__all__ = [
    "HTML",
    "PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_JOB_ID_PLACEHOLDER",
    "PIPELINE_JOB_NAME_PLACEHOLDER",
    "PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER",
    "PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER",
    "PIPELINE_ROOT_PLACEHOLDER",
    "PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER",
    "PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER",
    "PIPELINE_TASK_ID_PLACEHOLDER",
    "PIPELINE_TASK_NAME_PLACEHOLDER",
    "WORKSPACE_PATH_PLACEHOLDER",
    "Artifact",
    "BaseComponent",
    "ClassificationMetrics",
    "Collected",
    "CompileError",
    "ConcatPlaceholder",
    "Condition",
    "ContainerSpec",
    "Dataset",
    "Elif",
    "Else",
    "ExitHandler",
    "GraphComponent",
    "If",
    "IfPresentPlaceholder",
    "Input",
    "InputPath",
    "Markdown",
    "Metrics",
    "Model",
    "OneOf",
    "Output",
    "OutputPath",
    "ParallelFor",
    "PipelineChannel",
    "PipelineTask",
    "PipelineTaskFinalStatus",
    "SlicedClassificationMetrics",
    "component",
    "container_component",
    "importer",
    "pipeline",
]
