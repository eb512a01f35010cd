// The Serving component's dashboard section. The server keeps /serving/... for
// the data plane, so a service's page is /serving?service=NAMESPACE/NAME (a
// reload must reach the dashboard), not a path below /serving.
import type { Section } from "../core/routes";
import { ServingDetailPage } from "./ServingDetail";
import { ServingListPage } from "./ServingList";

export const servingSection: Section = {
  id: "serving",
  label: "Serving",
  path: "/serving",
  component: "serving",
  icon: "M4 7h16v5H4zM4 12h16v5H4zM8 9.5h.01M8 14.5h.01",
  render: ({ query, namespace }) => {
    const [ns, name] = (query.get("service") ?? "").split("/", 2);
    if (ns && name) return <ServingDetailPage key={`${ns}/${name}`} namespace={ns} name={name} />;
    return <ServingListPage namespace={namespace} />;
  },
  objectPage: (r) =>
    r.kind === "InferenceService"
      ? { path: "/serving", query: { service: `${r.metadata.namespace ?? "default"}/${r.metadata.name}` } }
      : null,
};
