// The Pipelines component's dashboard section (its routes: PipelineSection.tsx).
import type { Section } from "../core/routes";
import { PipelineSection } from "./PipelineSection";
import { runPath } from "./pipelineTypes";

export const pipelinesSection: Section = {
  id: "pipelines",
  label: "Pipelines",
  path: "/pipelines",
  component: "pipelines",
  icon: "M5 5h4v4H5zM15 15h4v4h-4zM9 7h4a2 2 0 0 1 2 2v6",
  render: ({ segments, query, namespace }) => (
    <PipelineSection segments={segments} query={query} namespace={namespace} />
  ),
  objectPage: (r) =>
    r.kind === "PipelineRun" ? { path: runPath(r.metadata.namespace ?? "default", r.metadata.name) } : null,
};
