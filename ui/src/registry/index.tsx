// The Model Registry's dashboard section:
//   /models                          registered models
//   /models/{id}                     a model and its versions
//   /models/{id}/versions/{vid}      a version (artifacts, lineage, deploy)
import type { Section } from "../core/routes";
import { ModelDetailPage } from "./ModelDetail";
import { ModelVersionPage } from "./ModelVersion";
import { ModelsPage } from "./ModelsPage";

export const registrySection: Section = {
  id: "models",
  label: "Models",
  path: "/models",
  component: "registry",
  icon: "M12 3l8 4.5v9L12 21l-8-4.5v-9zM12 12l8-4.5M12 12v9M12 12L4 7.5",
  render: ({ segments }) => {
    const [modelId, sub, versionId] = segments;
    if (!modelId) return <ModelsPage />;
    if (sub === "versions" && versionId) {
      return <ModelVersionPage key={`${modelId}/${versionId}`} modelId={modelId} versionId={versionId} />;
    }
    return <ModelDetailPage key={modelId} modelId={modelId} />;
  },
};
