// The Jobs component's dashboard section: /jobs (list) and /jobs/{ns}/{name}.
import type { Section } from "../core/routes";
import { JobsPage } from "./JobsPage";

export function jobPath(namespace: string, name: string): string {
  return `/jobs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

export const jobsSection: Section = {
  id: "jobs",
  label: "Jobs",
  path: "/jobs",
  component: "jobs",
  icon: "M4 6h16M4 12h16M4 18h10",
  render: ({ components, namespace, segments }) => {
    const jobKind = components.find((c) => c.name === "jobs")?.kinds.find((k) => k.kind === "Job") ?? null;
    const [ns, name] = segments;
    return (
      <JobsPage kind={jobKind} namespace={namespace} selected={ns && name ? { namespace: ns, name } : null} />
    );
  },
  objectPage: (r) => (r.kind === "Job" ? { path: jobPath(r.metadata.namespace ?? "default", r.metadata.name) } : null),
};
