import type { MouseEvent } from "react";
import { hrefFor, navigate } from "./router";
import type { Section } from "./routes";

export const NOT_INSTALLED = "not installed in this ketch yet";

function Icon({ d }: { d: string }) {
  return (
    <svg className="nav-icon" viewBox="0 0 24 24" aria-hidden="true">
      <path d={d} />
    </svg>
  );
}

export function Nav({
  sections,
  installed,
  activeId,
}: {
  sections: readonly Section[];
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
        {sections.map((entry) => {
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
