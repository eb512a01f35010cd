import type { MouseEvent, ReactNode } from "react";
import { navigate } from "../core/router";

export type PipelineTab = "runs" | "catalog" | "experiments" | "recurring";

const TABS: { id: PipelineTab; label: string; path: string }[] = [
  { id: "runs", label: "Runs", path: "/pipelines" },
  { id: "catalog", label: "Pipelines", path: "/pipelines/catalog" },
  { id: "experiments", label: "Experiments (KFP)", path: "/pipelines/experiments" },
  { id: "recurring", label: "Recurring runs", path: "/pipelines/recurring" },
];

/** The current query string with only the namespace kept, plus `extra`. */
export function queryWith(extra: Record<string, string | null> = {}): URLSearchParams {
  const current = new URLSearchParams(window.location.search);
  const q = new URLSearchParams();
  const ns = current.get("namespace");
  if (ns) q.set("namespace", ns);
  for (const [k, v] of Object.entries(extra)) if (v !== null && v !== "") q.set(k, v);
  return q;
}

/** Go to `path` keeping only the namespace from the current query, plus `extra`. */
export function go(path: string, extra: Record<string, string | null> = {}) {
  navigate(path, { query: queryWith(extra) });
}

/**
 * In-app link that drops page-specific query parameters (filters, the selected
 * task) and keeps the namespace; a real href, so it opens in a new tab too.
 */
export function PageLink({
  to,
  query = {},
  children,
  className,
  testId,
}: {
  to: string;
  query?: Record<string, string | null>;
  children: ReactNode;
  className?: string;
  testId?: string;
}) {
  const qs = queryWith(query).toString();
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    e.stopPropagation();
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go(to, query);
  };
  return (
    <a className={className} href={qs ? `${to}?${qs}` : to} onClick={onClick} data-testid={testId}>
      {children}
    </a>
  );
}

/** The Pipelines section's tabs. */
export function PipelineTabs({ active }: { active: PipelineTab | null }) {
  return (
    <nav className="tabs" aria-label="Pipelines sections">
      {TABS.map((t) => (
        <PageLink key={t.id} to={t.path} className={`tab${t.id === active ? " on" : ""}`} testId={`tab-${t.id}`}>
          {t.label}
        </PageLink>
      ))}
    </nav>
  );
}
