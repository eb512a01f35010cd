// The dashboard's route table, in nav order. A component's pages live in its own
// folder (src/<component>/index.tsx exports its Section); adding one is that
// folder and one line here. Components not built yet get the generic kind page.
import { homeSection, kindSection } from "./core/sections";
import type { Section } from "./core/routes";
import { jobsSection } from "./jobs";
import { pipelinesSection } from "./pipelines";
import { registrySection } from "./registry";
import { servingSection } from "./serving";

export const SECTIONS: readonly Section[] = [
  homeSection,
  jobsSection,
  pipelinesSection,
  kindSection({ id: "experiments", label: "Tuning (Katib)", component: "tuning", icon: "M9 3v6l-5 9a2 2 0 0 0 2 3h12a2 2 0 0 0 2-3l-5-9V3M8 3h8" }),
  kindSection({ id: "training", label: "Training", component: "training", icon: "M4 19l5-6 4 3 7-9M16 7h4v4" }),
  registrySection,
  servingSection,
  kindSection({ id: "notebooks", label: "Notebooks", component: "notebooks", icon: "M6 3h11a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H6zM6 3v18M10 8h5M10 12h5" }),
  kindSection({ id: "features", label: "Features", component: "features", icon: "M4 5h7v6H4zM13 5h7v6h-7zM4 13h7v6H4zM13 13h7v6h-7z" }),
];
