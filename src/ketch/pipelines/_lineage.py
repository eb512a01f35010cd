"""A run's lineage and cache, on core lineage (the ML Metadata model), as KFP keeps them.

Each run is a ``system.PipelineRun`` context inside its pipeline's ``system.Pipeline``
context. Each finished step is an execution (``system.ContainerExecution``) with INPUT
and OUTPUT events per slot; its output artifacts are created there and their lineage
ids are written into the task's status, so the steps that consume them record the
same artifacts as inputs. A step that succeeded records the cache key; a later step
with the same key reuses its outputs and is recorded as ``CACHED``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ketch.core.lineage import Artifact, LineageStore, NewArtifact
from ketch.core.store import ResourceStore
from ketch.pipelines._ir import ComponentSpec

__all__ = ["RunLineage"]

EXECUTION_TYPE = "system.ContainerExecution"


def _artifact_dict(art: Artifact, name: str) -> dict[str, Any]:
    return {"name": art.name or name, "uri": art.uri, "type": art.type,
            "metadata": dict(art.custom_properties), "id": art.id}


class RunLineage:
    """Lineage of one run. ``contexts`` caches the run's context ids between steps (the
    engine keeps it in ``status.engine``); thread-safe as the store is."""

    def __init__(self, store: ResourceStore, *, namespace: str, pipeline: str, run: str,
                 contexts: dict[str, Any]) -> None:
        self.lineage = LineageStore(store)
        self.namespace = namespace
        self.pipeline = pipeline
        self.run = run
        self.contexts = contexts

    def _context_ids(self) -> list[int]:
        if "run" not in self.contexts:
            pipe = self.lineage.put_context("system.Pipeline", self.pipeline,
                                            namespace=self.namespace)
            run = self.lineage.put_context("system.PipelineRun", self.run,
                                           namespace=self.namespace, parent_id=pipe.id)
            self.contexts.update(pipeline=pipe.id, run=run.id)
        return [int(self.contexts["pipeline"]), int(self.contexts["run"])]

    def lookup(self, cache_key: str, component: ComponentSpec) -> dict[str, Any] | None:
        """The outputs of the latest successful execution with this key, or None."""
        hit = self.lineage.find_cached_execution(cache_key, namespace=self.namespace)
        if hit is None:
            return None
        artifacts: dict[str, Any] = {}
        for slot, spec in component.output_artifacts.items():
            arts = [_artifact_dict(a, slot) for a in hit.output_artifacts.get(slot, [])]
            if not arts:
                return None  # the original lost an output: not a usable hit
            artifacts[slot] = arts if spec.get("isArtifactList") else arts[0]
        props = hit.execution.custom_properties
        return {"outputs": {"parameters": dict(hit.output_parameters), "artifacts": artifacts},
                "origin": {"executionId": hit.execution.id, "run": props.get("run"),
                           "task": props.get("task")}}

    def _inputs(self, st: Mapping[str, Any]) -> dict[str, list[int]]:
        """Input artifacts' lineage ids. A step may have taken its inputs before the
        producer was recorded (records come after the next step starts): then the
        artifact is found by its URI."""
        arts = (st.get("inputs") or {}).get("artifacts") or {}
        found: dict[str, list[int]] = {}
        for slot, items in arts.items():
            ids = []
            for art in items:
                if art.get("id") is not None:
                    ids.append(int(art["id"]))
                    continue
                match = self.lineage.list_artifacts(uri=art.get("uri"),
                                                    namespace=self.namespace, limit=1000)
                if match:
                    ids.append(match[-1].id)
            found[slot] = ids
        return found

    def completed(self, path: str, st: dict[str, Any], cache_key: str | None) -> None:
        """Record a successful step; give its output artifacts their lineage ids."""
        outputs = st.get("outputs") or {}
        new: dict[str, list[Any]] = {}
        for slot, value in (outputs.get("artifacts") or {}).items():
            items = value if isinstance(value, list) else [value]
            new[slot] = [NewArtifact(type=a.get("type") or "system.Artifact", uri=a["uri"],
                                     name=a.get("name") or slot,
                                     custom_properties=a.get("metadata") or {})
                         for a in items]
        recorded = self.lineage.record_execution(
            EXECUTION_TYPE, name=path, namespace=self.namespace, state="COMPLETE",
            cache_key=cache_key, contexts=self._context_ids(), inputs=self._inputs(st),
            outputs=new, input_parameters=(st.get("inputs") or {}).get("parameters") or {},
            output_parameters=outputs.get("parameters") or {},
            custom_properties={"run": f"{self.namespace}/{self.run}", "task": path})
        st["executionId"] = recorded.execution.id
        for slot, value in (outputs.get("artifacts") or {}).items():
            made = [_artifact_dict(a, slot) for a in recorded.outputs.get(slot, [])]
            if made:
                outputs["artifacts"][slot] = made if isinstance(value, list) else made[0]

    def cached(self, path: str, st: dict[str, Any]) -> None:
        """Record a step that reused an earlier execution's outputs."""
        outputs = st.get("outputs") or {}
        reused = {slot: [int(a["id"]) for a in (v if isinstance(v, list) else [v])
                         if a.get("id") is not None]
                  for slot, v in (outputs.get("artifacts") or {}).items()}
        recorded = self.lineage.record_execution(
            EXECUTION_TYPE, name=path, namespace=self.namespace, state="CACHED",
            contexts=self._context_ids(), inputs=self._inputs(st), outputs=reused,
            input_parameters=(st.get("inputs") or {}).get("parameters") or {},
            output_parameters=outputs.get("parameters") or {},
            custom_properties={"run": f"{self.namespace}/{self.run}", "task": path,
                               "cachedExecutionId": (st.get("cachedFrom") or {}).get(
                                   "executionId")})
        st["executionId"] = recorded.execution.id

    def failed(self, path: str, st: dict[str, Any], state: str = "FAILED") -> None:
        recorded = self.lineage.record_execution(
            EXECUTION_TYPE, name=path, namespace=self.namespace, state=state,
            contexts=self._context_ids(), inputs=self._inputs(st),
            input_parameters=(st.get("inputs") or {}).get("parameters") or {},
            custom_properties={"run": f"{self.namespace}/{self.run}", "task": path,
                               "message": str(st.get("message") or "")[:2000]})
        st["executionId"] = recorded.execution.id
