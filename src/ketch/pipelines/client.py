"""The pipeline calls of ``ketch.Client``, shaped as ``kfp.Client``'s.

``client.pipelines`` is this facade (the component declares it); ``ketch.Client`` also
answers each call itself, delegating here, so code written for ``kfp.Client`` keeps working:
``create_run_from_pipeline_func``, ``create_run_from_pipeline_package``, ``get_run``,
``list_runs``, ``wait_for_run_completion``, ``upload_pipeline``,
``upload_pipeline_version``, ``create_experiment``, ``create_recurring_run`` and the rest.
A run's id is its name (unique in its namespace); ``get_run`` returns the
``PipelineRun`` resource, whose ``status`` is the run's whole record.

Nothing heavy is imported at module level: ``import ketch`` stays fast.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from ketch.core.errors import (
    AlreadyExistsError,
    FieldError,
    InvalidError,
    KetchError,
    NotFoundError,
)
from ketch.pipelines._kfp_pages import (
    ListExperimentsResponse,
    ListPipelinesResponse,
    ListPipelineVersionsResponse,
    ListRecurringRunsResponse,
    ListRunsResponse,
    page,
)
from ketch.pipelines._kfp_run import KfpRun, as_kfp_run

# KFP's experiments by their whole name: a bare "experiment" is Katib's (kubeflow.org).
_EXPERIMENT = "experiments.pipelines.ketch.dev"

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ketch.core.resources import Resource

    class _ResourceAPI(Protocol):
        """The calls of ``ketch.Client`` this facade builds on."""

        def create(self, obj: dict[str, Any], *, namespace: str | None = None) -> Resource: ...

        def get(self, kind: str, name: str, *, namespace: str | None = None) -> Resource: ...

        def list(self, kind: str, *, namespace: str | None = None,
                 label_selector: str | None = None) -> Any: ...

        def patch(self, kind: str, name: str, patch: dict[str, Any], *,
                  namespace: str | None = None) -> Resource: ...

        def delete(self, kind: str, name: str, *, namespace: str | None = None) -> Resource: ...

        def watch(self, kind: str, *, namespace: str | None = None, name: str | None = None,
                  resource_version: str | None = None, timeout: float | None = None,
                  without_spec: bool = False) -> Iterator[Any]: ...

__all__ = ["PipelinesClient", "RunPipelineResult", "run_name_for"]

GROUP = "pipelines.ketch.dev/v1"
RUN_KIND = "pipelinerun"
EXPERIMENT_LABEL = "pipelines.ketch.dev/experiment"
TERMINAL = ("Succeeded", "Failed", "Cancelled")


def run_name_for(pipeline_name: str) -> str:
    """``<pipeline>-<UTC time>-<4 hex>``: sortable, unique, a valid resource name."""
    slug = re.sub(r"[^a-z0-9-]+", "-", pipeline_name.lower()).strip("-")[:36] or "run"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{slug}-{stamp}-{secrets.token_hex(2)}"


@dataclass
class RunPipelineResult:
    """What ``create_run_from_*`` return, as ``kfp``'s: the run id and a waiter."""

    client: PipelinesClient
    run_id: str
    namespace: str | None = None
    # The run as created (kfp's ``run_info``; a ``PipelineRun`` resource here).
    run_info: Resource | None = None

    def wait_for_run_completion(self, timeout: float | None = None) -> KfpRun:
        return self.client.wait_for_run_completion(self.run_id, timeout=timeout or 3600.0,
                                                   namespace=self.namespace)

    def __repr__(self) -> str:
        return f"RunPipelineResult(run_id={self.run_id!r})"


class PipelinesClient:
    """``client.pipelines``: the kfp.Client-shaped calls over a ``ketch.Client``'s
    resource calls (composition: the client is passed in, not inherited)."""

    def __init__(self, client: Any) -> None:
        self._api = cast("_ResourceAPI", client)

    # -- runs --------------------------------------------------------------------

    def run_pipeline_spec(self, pipeline_spec: dict[str, Any], *,
                          arguments: dict[str, Any] | None = None,
                          run_name: str | None = None, experiment_name: str | None = None,
                          namespace: str | None = None, pipeline_root: str | None = None,
                          enable_caching: bool | None = None,
                          install_packages: bool = False) -> Resource:
        """Submit IR as a new ``PipelineRun``; returns the created resource.

        ``install_packages`` runs each step with its ``packages_to_install`` in a cached
        virtualenv; by default steps run in ketch's environment (as kfp.local's
        ``use_venv=False``)."""
        name = run_name or run_name_for(str(pipeline_spec.get("pipelineInfo", {}).get(
            "name", "run")))
        spec: dict[str, Any] = {"pipelineSpec": pipeline_spec, "arguments": arguments or {}}
        labels = {}
        if experiment_name:
            self._ensure_experiment(experiment_name, namespace)
            spec["experiment"] = experiment_name
            labels[EXPERIMENT_LABEL] = experiment_name
        if pipeline_root:
            spec["pipelineRoot"] = pipeline_root
        if enable_caching is not None:
            spec["caching"] = enable_caching
            spec["pipelineSpec"] = _override_caching(pipeline_spec, enable_caching)
        if install_packages:
            spec["installPackages"] = True
        return self._api.create({"apiVersion": GROUP, "kind": "PipelineRun",
                            "metadata": {"name": name, "labels": labels}, "spec": spec},
                           namespace=namespace)

    def create_run_from_pipeline_func(
            self, pipeline_func: Any, arguments: dict[str, Any] | None = None,
            run_name: str | None = None, experiment_name: str | None = None,
            namespace: str | None = None, pipeline_root: str | None = None,
            enable_caching: bool | None = None, cache_key: str | None = None,
            service_account: str | None = None,
            experiment_id: str | None = None) -> RunPipelineResult:
        """Compile a ``@dsl.pipeline`` function and run it (``kfp.Client``'s call).
        ``experiment_id`` is the experiment's name (a ketch id is its name)."""
        from ketch.pipelines.compiler import compile_pipeline

        _unsupported(cache_key=cache_key, service_account=service_account)
        created = self.run_pipeline_spec(
            compile_pipeline(pipeline_func), arguments=arguments, run_name=run_name,
            experiment_name=experiment_name or experiment_id, namespace=namespace,
            pipeline_root=pipeline_root, enable_caching=enable_caching)
        return RunPipelineResult(self, created.name, created.namespace, created)

    def create_run_from_pipeline_package(
            self, pipeline_file: str | Path, arguments: dict[str, Any] | None = None,
            run_name: str | None = None, experiment_name: str | None = None,
            namespace: str | None = None, pipeline_root: str | None = None,
            enable_caching: bool | None = None, cache_key: str | None = None,
            service_account: str | None = None,
            experiment_id: str | None = None) -> RunPipelineResult:
        """Run a compiled IR file (or a ``.py`` holding one pipeline)."""
        from ketch.pipelines.compiler import load_pipeline_file

        _unsupported(cache_key=cache_key, service_account=service_account)
        created = self.run_pipeline_spec(
            load_pipeline_file(pipeline_file), arguments=arguments, run_name=run_name,
            experiment_name=experiment_name or experiment_id, namespace=namespace,
            pipeline_root=pipeline_root, enable_caching=enable_caching)
        return RunPipelineResult(self, created.name, created.namespace, created)

    def get_run(self, run_id: str, namespace: str | None = None) -> KfpRun:
        """The run, with kfp's ``V2beta1Run`` attributes (``state``, ``run_id``, ...)."""
        return as_kfp_run(self._api.get(RUN_KIND, run_id, namespace=namespace))

    def list_runs(self, page_token: str = "", page_size: int = 10, sort_by: str = "",
                  experiment_id: str | None = None, namespace: str | None = None,
                  filter: str | None = None, *,
                  experiment_name: str | None = None) -> ListRunsResponse:
        """One page of runs, newest first, as kfp's ``V2beta1ListRunsResponse``:
        ``.runs``, ``.total_size``, ``.next_page_token`` (pass it as ``page_token``).
        ``experiment_id`` (or ``experiment_name``: the same here) picks one experiment's."""
        experiment = experiment_id or experiment_name
        selector = f"{EXPERIMENT_LABEL}={experiment}" if experiment else None
        result = self._api.list(RUN_KIND, namespace=namespace, label_selector=selector)
        return page(ListRunsResponse, [as_kfp_run(r) for r in _items(result)],
                    page_token=page_token,
                    page_size=page_size, sort_by=sort_by, filter=filter)

    def terminate_run(self, run_id: str, namespace: str | None = None) -> Resource:
        return self._api.patch(RUN_KIND, run_id, {"spec": {"cancel": True}}, namespace=namespace)

    def delete_run(self, run_id: str, namespace: str | None = None) -> Resource:
        return self._api.delete(RUN_KIND, run_id, namespace=namespace)

    def wait_for_run_completion(self, run_id: str, timeout: float = 3600.0,
                                sleep_duration: float | None = None, *,
                                namespace: str | None = None,
                                on_change: Callable[[Resource], None] | None = None
                                ) -> KfpRun:
        """Block until the run ends (any terminal phase) and return it.

        ``sleep_duration`` is kfp's polling interval; this call watches the run instead
        of polling, so it needs none.

        ``on_change`` sees every new state of the run (for progress displays), without
        its spec after the first: the watch leaves the IR out, since decoding it on every
        status write cost more per step than the step's own bookkeeping on the server (a
        kfp-compiled IR holds a component and an executor per task). The run returned
        is whole. Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        run = self._api.get(RUN_KIND, run_id, namespace=namespace)
        while True:
            if on_change is not None:
                on_change(run)
            if run.status.get("phase") in TERMINAL:
                return as_kfp_run(run)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"run {run_id} did not finish in {timeout:g}s")
            try:
                for event in self._api.watch(RUN_KIND, namespace=namespace, name=run_id,
                                             resource_version=run.metadata.resource_version,
                                             timeout=min(left, 30.0), without_spec=True):
                    if event.type == "DELETED":
                        raise KetchError(f"run {run_id} was deleted while waiting")
                    run = cast("Resource", event.object)
                    if on_change is not None:
                        on_change(run)
                    if run.status.get("phase") in TERMINAL:
                        return as_kfp_run(self._whole(run, namespace))
            except KetchError as err:
                if "deleted" in err.message:
                    raise
                time.sleep(0.2)  # a restarting server: keep waiting
            run = self._api.get(RUN_KIND, run_id, namespace=namespace)

    def _whole(self, run: Resource, namespace: str | None) -> Resource:
        """The ended run, spec and all (its event came without); the event's own where
        the run is already gone (deleted the moment it ended)."""
        try:
            return self._api.get(RUN_KIND, run.name, namespace=namespace)
        except NotFoundError:
            return run

    # -- experiments -------------------------------------------------------------

    def _ensure_experiment(self, name: str, namespace: str | None) -> None:
        try:
            self._api.get(_EXPERIMENT, name, namespace=namespace)
        except NotFoundError:
            self.create_experiment(name, namespace=namespace)
        except KetchError:
            pass  # no Experiment kind on this server: the label still groups runs

    def create_experiment(self, name: str, description: str | None = None,
                          namespace: str | None = None) -> Resource:
        """The experiment ``name``, created if it does not exist; an existing one is
        returned as it is (kfp 2.16.1's behaviour, so that calling it again is safe)."""
        try:
            return self._api.get(_EXPERIMENT, name, namespace=namespace)
        except NotFoundError:
            pass
        try:
            return self._api.create({"apiVersion": GROUP, "kind": "Experiment",
                                     "metadata": {"name": name},
                                     "spec": {"description": description or ""}},
                                    namespace=namespace)
        except AlreadyExistsError:  # created by someone else since the look
            return self._api.get(_EXPERIMENT, name, namespace=namespace)

    def get_experiment(self, experiment_id: str | None = None,
                       experiment_name: str | None = None,
                       namespace: str | None = None) -> Resource:
        """By ``experiment_id`` or ``experiment_name`` (the same here), as kfp's."""
        name = experiment_id or experiment_name
        if not name:
            raise InvalidError("missing argument", [FieldError(
                "experiment_id", "give experiment_id or experiment_name")])
        return self._api.get(_EXPERIMENT, name, namespace=namespace)

    def list_experiments(self, page_token: str = "", page_size: int = 10, sort_by: str = "",
                         namespace: str | None = None,
                         filter: str | None = None) -> ListExperimentsResponse:
        """One page of experiments (``.experiments``), as kfp's."""
        return page(ListExperimentsResponse,
                    _items(self._api.list(_EXPERIMENT, namespace=namespace)),
                    page_token=page_token, page_size=page_size, sort_by=sort_by,
                    filter=filter)

    # -- recurring runs ----------------------------------------------------------

    def create_recurring_run(
            self, job_name: str, *, experiment_name: str | None = None,
            description: str | None = None, start_time: str | None = None,
            end_time: str | None = None, interval_second: int | None = None,
            cron_expression: str | None = None, max_concurrency: int = 1,
            no_catchup: bool | None = None, params: dict[str, Any] | None = None,
            pipeline_package_path: str | Path | None = None, pipeline_name: str | None = None,
            version_name: str | None = None, enabled: bool = True,
            enable_caching: bool | None = None, namespace: str | None = None,
            experiment_id: str | None = None, pipeline_id: str | None = None,
            version_id: str | None = None, pipeline_root: str | None = None,
            cache_key: str | None = None, service_account: str | None = None) -> Resource:
        """A ``RecurringRun`` on a cron schedule or every ``interval_second`` seconds, for a
        pipeline file (``pipeline_package_path``) or an uploaded pipeline version
        (``pipeline_id``/``version_id``, kfp's names, or ``pipeline_name``/``version_name``).
        kfp's parameters are keywords here (``job_name`` comes first)."""
        from ketch.pipelines.compiler import load_pipeline_file

        _unsupported(cache_key=cache_key, service_account=service_account)
        experiment_name = experiment_name or experiment_id
        pipeline_name = pipeline_name or pipeline_id
        version_name = version_name or version_id
        if (cron_expression is None) == (interval_second is None):
            raise KetchError("give exactly one of cron_expression or interval_second")
        template: dict[str, Any] = {"arguments": params or {}}
        if pipeline_package_path is not None:
            template["pipelineSpec"] = load_pipeline_file(pipeline_package_path)
        elif pipeline_name is not None:
            template["pipelineRef"] = {"name": pipeline_name, **(
                {"version": version_name} if version_name else {})}
        else:
            raise KetchError("give pipeline_package_path or pipeline_name")
        if experiment_name:
            self._ensure_experiment(experiment_name, namespace)
            template["experiment"] = experiment_name
        if enable_caching is not None:
            template["caching"] = enable_caching
            if "pipelineSpec" in template:
                template["pipelineSpec"] = _override_caching(template["pipelineSpec"],
                                                             enable_caching)
        if pipeline_root:
            template["pipelineRoot"] = pipeline_root
        trigger = ({"cron": cron_expression} if cron_expression is not None
                   else {"intervalSeconds": interval_second})
        spec: dict[str, Any] = {"trigger": trigger, "runTemplate": template,
                                "maxConcurrency": max_concurrency,
                                "mode": "Enable" if enabled else "Disable",
                                "description": description or ""}
        for key, value in (("startTime", start_time), ("endTime", end_time),
                           ("noCatchup", no_catchup)):
            if value is not None:
                spec[key] = value
        return self._api.create({"apiVersion": GROUP, "kind": "RecurringRun",
                                 "metadata": {"name": _resource_name(job_name)},
                                 "spec": spec}, namespace=namespace)

    def get_recurring_run(self, recurring_run_id: str, job_id: str | None = None,
                          namespace: str | None = None) -> Resource:
        return self._api.get("recurringrun", recurring_run_id or job_id or "",
                             namespace=namespace)

    def list_recurring_runs(self, page_token: str = "", page_size: int = 10,
                            sort_by: str = "", experiment_id: str | None = None,
                            namespace: str | None = None,
                            filter: str | None = None
                            ) -> ListRecurringRunsResponse:
        """One page of recurring runs (``.recurring_runs``), as kfp's."""
        items = _items(self._api.list("recurringrun", namespace=namespace))
        if experiment_id:
            items = [r for r in items
                     if (r.spec.get("runTemplate") or {}).get("experiment") == experiment_id]
        return page(ListRecurringRunsResponse, items,
                    page_token=page_token, page_size=page_size, sort_by=sort_by,
                    filter=filter)

    def enable_recurring_run(self, recurring_run_id: str,
                             namespace: str | None = None) -> Resource:
        return self._api.patch("recurringrun", recurring_run_id,
                               {"spec": {"mode": "Enable"}}, namespace=namespace)

    def disable_recurring_run(self, recurring_run_id: str,
                              namespace: str | None = None) -> Resource:
        return self._api.patch("recurringrun", recurring_run_id,
                               {"spec": {"mode": "Disable"}}, namespace=namespace)

    def delete_recurring_run(self, recurring_run_id: str,
                             namespace: str | None = None) -> Resource:
        return self._api.delete("recurringrun", recurring_run_id, namespace=namespace)

    # -- pipelines and versions --------------------------------------------------

    def list_pipelines(self, page_token: str = "", page_size: int = 10, sort_by: str = "",
                       filter: str | None = None,
                       namespace: str | None = None) -> ListPipelinesResponse:
        """One page of uploaded pipelines (``.pipelines``), as kfp's."""
        return page(ListPipelinesResponse,
                    _items(self._api.list("pipeline", namespace=namespace)),
                    page_token=page_token, page_size=page_size, sort_by=sort_by,
                    filter=filter)

    def get_pipeline(self, pipeline_id: str, namespace: str | None = None) -> Resource:
        return self._api.get("pipeline", pipeline_id, namespace=namespace)

    def list_pipeline_versions(self, pipeline_id: str, page_token: str = "",
                               page_size: int = 10, sort_by: str = "",
                               filter: str | None = None,
                               namespace: str | None = None) -> ListPipelineVersionsResponse:
        """One page of a pipeline's versions (``.pipeline_versions``), as kfp's; a
        pipeline's id is its name."""
        result = self._api.list("pipelineversion", namespace=namespace)
        items = [v for v in _items(result) if v.spec.get("pipeline") == pipeline_id]
        return page(ListPipelineVersionsResponse, items,
                    page_token=page_token, page_size=page_size, sort_by=sort_by,
                    filter=filter)

    def upload_pipeline(self, pipeline_package_path: str | Path, pipeline_name: str | None = None,
                        description: str | None = None, namespace: str | None = None
                        ) -> Resource:
        """Upload a pipeline (IR file or ``.py``) as a ``Pipeline`` with a first version."""
        from ketch.pipelines.compiler import load_pipeline_file

        ir = load_pipeline_file(pipeline_package_path)
        name = _resource_name(pipeline_name or ir["pipelineInfo"]["name"])
        pipeline = self._api.create({"apiVersion": GROUP, "kind": "Pipeline",
                                "metadata": {"name": name},
                                "spec": {"description": description or ir["pipelineInfo"].get(
                                    "description", "")}}, namespace=namespace)
        self._create_version(name, f"{name}-v1", ir, description, pipeline_package_path,
                             namespace)
        return pipeline

    def upload_pipeline_version(self, pipeline_package_path: str | Path,
                                pipeline_version_name: str, pipeline_id: str | None = None,
                                pipeline_name: str | None = None,
                                description: str | None = None,
                                namespace: str | None = None) -> Resource:
        """A new version of the pipeline ``pipeline_id`` (or ``pipeline_name``: the same)."""
        from ketch.pipelines.compiler import load_pipeline_file

        pipeline = pipeline_id or pipeline_name
        if not pipeline:
            raise InvalidError("missing argument", [FieldError(
                "pipeline_id", "give pipeline_id or pipeline_name")])
        ir = load_pipeline_file(pipeline_package_path)
        return self._create_version(_resource_name(pipeline),
                                    _resource_name(pipeline_version_name), ir, description,
                                    pipeline_package_path, namespace)

    def _create_version(self, pipeline: str, version: str, ir: dict[str, Any],
                        description: str | None, source: str | Path,
                        namespace: str | None) -> Resource:
        return self._api.create({"apiVersion": GROUP, "kind": "PipelineVersion",
                            "metadata": {"name": version},
                            "spec": {"pipeline": pipeline, "pipelineSpec": ir,
                                     "description": description or "",
                                     "sourceFile": Path(source).name}}, namespace=namespace)


def _override_caching(ir: dict[str, Any], enable_caching: bool) -> dict[str, Any]:
    """kfp.Client's ``enable_caching``: set on every task of the root DAG, overriding
    ``set_caching_options`` (kfp's ``_override_caching_options``). False also turns the
    run's caching off (``spec.caching``), so nested tasks rerun too."""
    root = ir.get("root")
    dag = root.get("dag") if isinstance(root, dict) else None
    tasks = dag.get("tasks") if isinstance(dag, dict) else None
    if not isinstance(root, dict) or not isinstance(dag, dict) or not isinstance(tasks, dict):
        return ir  # malformed: the server names what is wrong
    changed = {name: ({**task, "cachingOptions": {**(task.get("cachingOptions") or {}),
                                                  "enableCache": enable_caching}}
                      if isinstance(task, dict) else task) for name, task in tasks.items()}
    return {**ir, "root": {**root, "dag": {**dag, "tasks": changed}}}


def _unsupported(**given: str | None) -> None:
    """kfp parameters with no meaning here fail loudly rather than being dropped."""
    for name, value in given.items():
        if value:
            raise InvalidError("unsupported argument", [FieldError(
                name, "not supported by ketch (no per-run cache key or Kubernetes "
                      "service account here); leave it unset")])


def _items(listed: Any) -> list[Resource]:
    """The resources of a ``Client.list`` result."""
    return list(getattr(listed, "items", listed))


def _resource_name(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63] or "pipeline"
