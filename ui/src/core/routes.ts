// The dashboard's route table: every component contributes one Section (its
// nav entry, the pages under its path, and the page of each of its objects)
// from its own folder; src/sections.ts lists them, and App and Nav read only
// that list. Pure: matching a URL to a section needs no DOM, so it is unit-tested.
import type { ReactNode } from "react";
import type { ComponentInfo, KindInfo, Resource } from "./api";

/** What a section's page is rendered from. */
export interface RouteContext {
  /** Decoded path segments after the section's own path ("/jobs/ns/a" -> ["ns", "a"]). */
  segments: string[];
  query: URLSearchParams;
  namespace: string;
  /** The installed components, as /api/ketch/components reports them. */
  components: ComponentInfo[];
  /** Every kind the server knows (null while loading). */
  kinds: KindInfo[] | null;
  /** The page of any object, from whichever section knows its kind. */
  pageOf: (r: Resource) => PageRef | null;
}

/** Where an object's own page is: a path and query parameters to set. */
export interface PageRef {
  path: string;
  query?: Record<string, string>;
}

export interface Section {
  /** Stable id (the nav item's data-nav). */
  id: string;
  label: string;
  /** The section's root path: "/" or "/name" (one segment). */
  path: string;
  /** Component name reported by /api/ketch/components; null: always on. */
  component: string | null;
  /** SVG path data of the nav icon (24x24 viewBox). */
  icon: string;
  /** The page for a URL under `path` (see kindSection for the generic one). */
  render: (ctx: RouteContext) => ReactNode;
  /** The page of one of this component's objects (Home's rows link there), or null. */
  objectPage?: (r: Resource) => PageRef | null;
}

export interface RouteMatch {
  section: Section;
  /** Decoded segments after the section's path. */
  segments: string[];
}

/** Split a path into decoded segments; a malformed %-escape is kept as written. */
export function pathSegments(path: string): string[] {
  return path
    .split("/")
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

/** The section a path belongs to (by its first segment), or null: no page there. */
export function matchRoute(sections: readonly Section[], path: string): RouteMatch | null {
  const segments = pathSegments(path);
  const root = `/${segments[0] ?? ""}`;
  const section = sections.find((s) => s.path === root);
  if (!section) return null;
  return { section, segments: section.path === "/" ? segments : segments.slice(1) };
}

/** The first section that knows a page for `r`. */
export function objectPageOf(sections: readonly Section[], r: Resource): PageRef | null {
  for (const s of sections) {
    const ref = s.objectPage?.(r);
    if (ref) return ref;
  }
  return null;
}

/**
 * Problems with a route table, as messages (empty: fine): duplicate ids or
 * paths, a path that is not "/" or one segment, two sections of one component.
 */
export function checkSections(sections: readonly Section[]): string[] {
  const problems: string[] = [];
  const seen = (key: (s: Section) => string | null, what: string) => {
    const found = new Set<string>();
    for (const s of sections) {
      const k = key(s);
      if (k === null) continue;
      if (found.has(k)) problems.push(`duplicate ${what} ${JSON.stringify(k)}`);
      found.add(k);
    }
  };
  seen((s) => s.id, "section id");
  seen((s) => s.path, "section path");
  seen((s) => s.component, "component");
  for (const s of sections) {
    if (!/^\/([a-z0-9-]+)?$/.test(s.path)) {
      problems.push(`section ${s.id}: path ${JSON.stringify(s.path)} is not "/" or "/name"`);
    }
  }
  return problems;
}
