import type { MouseEvent } from "react";
import { hrefFor, navigate } from "../router";

export interface NavEntry {
  id: string;
  label: string;
  path: string;
  /** Component name reported by /api/ketch/components (null: always on). */
  component: string | null;
  icon: string;
}

export const NAV: NavEntry[] = [
  { id: "home", label: "Home", path: "/", component: null, icon: "M3 11l9-7 9 7v9a1 1 0 0 1-1 1h-5v-6h-6v6H4a1 1 0 0 1-1-1z" },
  { id: "jobs", label: "Jobs", path: "/jobs", component: "jobs", icon: "M4 6h16M4 12h16M4 18h10" },
  { id: "pipelines", label: "Pipelines", path: "/pipelines", component: "pipelines", icon: "M5 5h4v4H5zM15 15h4v4h-4zM9 7h4a2 2 0 0 1 2 2v6" },
  { id: "experiments", label: "Experiments", path: "/experiments", component: "tuning", icon: "M9 3v6l-5 9a2 2 0 0 0 2 3h12a2 2 0 0 0 2-3l-5-9V3M8 3h8" },
  { id: "training", label: "Training", path: "/training", component: "training", icon: "M4 19l5-6 4 3 7-9M16 7h4v4" },
  { id: "models", label: "Models", path: "/models", component: "registry", icon: "M12 3l8 4.5v9L12 21l-8-4.5v-9zM12 12l8-4.5M12 12v9M12 12L4 7.5" },
  { id: "serving", label: "Serving", path: "/serving", component: "serving", icon: "M4 7h16v5H4zM4 12h16v5H4zM8 9.5h.01M8 14.5h.01" },
  { id: "notebooks", label: "Notebooks", path: "/notebooks", component: "notebooks", icon: "M6 3h11a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H6zM6 3v18M10 8h5M10 12h5" },
  { id: "features", label: "Features", path: "/features", component: "features", icon: "M4 5h7v6H4zM13 5h7v6h-7zM4 13h7v6H4zM13 13h7v6h-7z" },
];

export const NOT_INSTALLED = "not installed in this ketch yet";

function Icon({ d }: { d: string }) {
  return (
    <svg className="nav-icon" viewBox="0 0 24 24" aria-hidden="true">
      <path d={d} />
    </svg>
  );
}

export function Nav({
  installed,
  activeId,
}: {
  installed: Set<string> | null;
  activeId: string;
}) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>, path: string) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(path);
  };
  return (
    <nav className="sidenav" aria-label="Components">
      <ul>
        {NAV.map((entry) => {
          const enabled = entry.component === null || (installed?.has(entry.component) ?? false);
          const active = entry.id === activeId;
          if (!enabled) {
            return (
              <li key={entry.id}>
                <span
                  className="nav-item disabled"
                  aria-disabled="true"
                  title={NOT_INSTALLED}
                  data-nav={entry.id}
                >
                  <Icon d={entry.icon} />
                  <span className="nav-label">{entry.label}</span>
                </span>
              </li>
            );
          }
          return (
            <li key={entry.id}>
              <a
                className={`nav-item${active ? " active" : ""}`}
                href={hrefFor(entry.path)}
                aria-current={active ? "page" : undefined}
                onClick={(e) => onClick(e, entry.path)}
                data-nav={entry.id}
              >
                <Icon d={entry.icon} />
                <span className="nav-label">{entry.label}</span>
              </a>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
