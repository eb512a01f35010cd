// Routes of the Pipelines section:
//   /pipelines                          runs list (?phase= &pipeline= &experiment=)
//   /pipelines/runs/{ns}/{name}         run page (?task= the selected task's path)
//   /pipelines/compare?runs=ns/a,ns/b   compare runs
//   /pipelines/catalog[/{ns}/{name}]    pipelines, a pipeline's versions (?version=)
//   /pipelines/experiments              experiments
//   /pipelines/recurring                recurring runs
import { PipelineCatalogPage, PipelineDetailPage } from "./PipelineCatalog";
import { PipelineExperimentsPage, PipelineRecurringPage } from "./PipelineSchedules";
import { PipelineRunsPage } from "./PipelineRuns";
import { RunComparePage } from "./RunCompare";
import { RunDetailPage } from "./RunDetail";

export function PipelineSection({
  segments,
  query,
  namespace,
}: {
  /** Path segments after /pipelines. */
  segments: string[];
  query: URLSearchParams;
  namespace: string;
}) {
  const [section, a, b] = segments;
  if (section === "runs" && a && b) {
    return <RunDetailPage key={`${a}/${b}`} namespace={a} name={b} task={query.get("task")} />;
  }
  if (section === "compare") {
    const ids = (query.get("runs") ?? "").split(",").filter(Boolean);
    return <RunComparePage ids={ids} />;
  }
  if (section === "catalog") {
    if (a && b) return <PipelineDetailPage key={`${a}/${b}`} namespace={a} name={b} version={query.get("version")} />;
    return <PipelineCatalogPage namespace={namespace} />;
  }
  if (section === "experiments") return <PipelineExperimentsPage namespace={namespace} />;
  if (section === "recurring") return <PipelineRecurringPage namespace={namespace} />;
  return <PipelineRunsPage namespace={namespace} query={query} />;
}
