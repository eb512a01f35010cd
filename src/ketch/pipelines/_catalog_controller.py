"""Controllers of the pipeline catalog.

* ``PipelineController`` keeps a ``Pipeline``'s ``status.latestVersion`` and
  ``status.versions`` current, and on delete removes its versions before the
  pipeline itself goes (its finalizer), as KFP's cascading delete does.
* ``PipelineVersionController`` reports whether a version's pipeline exists
  (condition ``Ready``) and refreshes the pipelines of its namespace when
  versions come or go (a deleted version no longer says whose it was).
"""

from __future__ import annotations

import contextlib
import logging

from ketch.core.controller import Controller, ObjectKey, Result
from ketch.core.errors import ConflictError, NotFoundError
from ketch.core.resources import Resource, set_condition
from ketch.core.runtime import Runtime
from ketch.pipelines._catalog import PIPELINE, PIPELINE_VERSION, versions_of

__all__ = ["FINALIZER", "PipelineController", "PipelineVersionController"]

log = logging.getLogger("ketch.pipelines.catalog")

FINALIZER = PIPELINE.finalizers[0]


def _mark_ready(runtime: Runtime, version: Resource) -> None:
    status = dict(version.status or {})
    set_condition(status, "Ready", True, "PipelineFound")
    if status != version.status:
        runtime.store.update_status(PIPELINE_VERSION, version.model_copy(update={"status": status}))


def _refresh(runtime: Runtime, pipeline: Resource) -> None:
    """Write a pipeline's version summary if it changed; its versions are Ready (a
    pipeline created after its versions makes them so at once)."""
    versions = versions_of(runtime.store, pipeline.namespace, pipeline.name)
    for version in versions:
        _mark_ready(runtime, version)
    status = dict(pipeline.status or {})
    status["versions"] = len(versions)
    if versions:
        status["latestVersion"] = versions[-1].name
    else:
        status.pop("latestVersion", None)
    if status != pipeline.status:
        runtime.store.update_status(PIPELINE, pipeline.model_copy(update={"status": status}))


class PipelineController(Controller):
    """Version summary and cascading delete of ``Pipeline`` objects."""

    kind = PIPELINE
    workers = 1

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime

    def reconcile(self, key: ObjectKey) -> Result | None:
        try:
            pipeline = self.rt.store.get(PIPELINE, key.namespace, key.name)
        except NotFoundError:
            return None
        if pipeline.metadata.deletion_timestamp:
            self._delete(pipeline)
            return None
        _refresh(self.rt, pipeline)
        return None

    def _delete(self, pipeline: Resource) -> None:
        for version in versions_of(self.rt.store, pipeline.namespace, pipeline.name):
            with contextlib.suppress(NotFoundError):
                self.rt.store.delete(PIPELINE_VERSION, version.namespace, version.name)
        if FINALIZER in pipeline.metadata.finalizers:
            meta = pipeline.metadata.model_copy(update={"finalizers": [
                f for f in pipeline.metadata.finalizers if f != FINALIZER]})
            self.rt.store.update(PIPELINE, pipeline.model_copy(update={"metadata": meta}))
            log.info("deleted pipeline %s/%s and its versions", pipeline.namespace,
                     pipeline.name)


class PipelineVersionController(Controller):
    """Marks versions whose pipeline is missing; keeps pipelines' summaries current."""

    kind = PIPELINE_VERSION
    workers = 1

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.rt = runtime

    def reconcile(self, key: ObjectKey) -> Result | None:
        store = self.rt.store
        pipeline_name: str | None = None
        try:
            version = store.get(PIPELINE_VERSION, key.namespace, key.name)
        except NotFoundError:
            version = None
        if version is not None:
            pipeline_name = str(version.spec.get("pipeline"))
            try:
                store.get(PIPELINE, key.namespace, pipeline_name)
                _mark_ready(self.rt, version)
            except NotFoundError:
                status = dict(version.status or {})
                set_condition(status, "Ready", False, "PipelineNotFound",
                              f'pipeline "{pipeline_name}" does not exist in namespace '
                              f'"{key.namespace}"')
                if status != version.status:
                    store.update_status(PIPELINE_VERSION,
                                        version.model_copy(update={"status": status}))
        # The pipeline that owns (or owned) this version: by name when known, else all
        # pipelines of the namespace.
        if pipeline_name is not None:
            targets = []
            with contextlib.suppress(NotFoundError):
                targets = [store.get(PIPELINE, key.namespace, pipeline_name)]
        else:
            targets = store.list(PIPELINE, key.namespace).items
        for pipeline in targets:
            if pipeline.metadata.deletion_timestamp:
                continue
            try:
                _refresh(self.rt, pipeline)
            except ConflictError:
                return Result(requeue_after=0.1)
        return None
