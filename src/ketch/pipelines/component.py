"""The pipelines component's slice (entry point ``ketch.components``).

References, not imports: the CLI and ``ketch.Client`` read this declaration without
loading the engine, the controllers or pydantic.
"""

from __future__ import annotations

from typing import Any

from ketch.core.component import CliVerb, Component, DashboardRoute, Facade

__all__ = ["component"]


def _kfp_api(runtime: Any) -> Any:
    """The KFP REST API (``/apis/v2beta1``), imported only by the server."""
    from ketch.pipelines._kfp_api import kfp_router

    return kfp_router(runtime)


component = Component(
    name="pipelines",
    description="Pipelines: KFP v2 pipelines run as PipelineRuns, with caching and lineage",
    kinds=("ketch.pipelines._kind:PIPELINE_RUN", "ketch.pipelines._catalog:PIPELINE",
           "ketch.pipelines._catalog:PIPELINE_VERSION", "ketch.pipelines._catalog:EXPERIMENT",
           "ketch.pipelines._recurring:RECURRING_RUN"),
    controllers=("ketch.pipelines._controller:PipelineRunController",
                 "ketch.pipelines._catalog_controller:PipelineController",
                 "ketch.pipelines._catalog_controller:PipelineVersionController",
                 "ketch.pipelines._recurring:RecurringRunController"),
    routers=(_kfp_api,),
    log_readers={"pipelineruns.pipelines.ketch.dev": "ketch.pipelines._logs:read_run_log"},
    pods={"pipelineruns.pipelines.ketch.dev": "ketch.pipelines._pods:run_pods"},
    cli=(CliVerb("run", "ketch.pipelines.run_cli:run",
                 "Run a pipeline: a .py with @dsl.pipeline functions or a compiled IR file."),
         CliVerb("compile", "ketch.pipelines.cli:compile_command",
                 "Compile a pipeline to KFP's IR YAML (runs on ketch and on a KFP cluster).")),
    sdk=Facade("pipelines", "ketch.pipelines.client:PipelinesClient"),
    dashboard=(DashboardRoute("/pipelines", "Pipelines",
                              ("pipelineruns", "pipelines", "pipelineversions", "experiments",
                               "recurringruns")),),
    describe={"PipelineRun.pipelines.ketch.dev": "ketch.pipelines._describe:RUN_VIEW"},
)
