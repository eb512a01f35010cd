// Sections that belong to no one component: Home, and the generic page a
// component gets until it has pages of its own (kindSection).
import { HomePage } from "./HomePage";
import { KindPage } from "./KindPage";
import type { Section } from "./routes";

export const homeSection: Section = {
  id: "home",
  label: "Home",
  path: "/",
  component: null,
  icon: "M3 11l9-7 9 7v9a1 1 0 0 1-1 1h-5v-6h-6v6H4a1 1 0 0 1-1-1z",
  render: ({ kinds, namespace, pageOf }) => <HomePage kinds={kinds} namespace={namespace} pageOf={pageOf} />,
};

/** A section whose page lists the component's kinds live (no pages of its own yet). */
export function kindSection(fields: Omit<Section, "render" | "path"> & { path?: string }): Section {
  return {
    path: `/${fields.id}`,
    ...fields,
    render: ({ components, namespace }) => (
      <KindPage
        title={fields.label}
        component={components.find((c) => c.name === fields.component) ?? null}
        namespace={namespace}
      />
    ),
  };
}
