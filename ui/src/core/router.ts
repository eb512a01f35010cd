// A tiny history-API router: the server answers index.html for every
// non-API path, so plain paths like /jobs/default/hello work on reload.
import { useSyncExternalStore } from "react";

const EVENT = "ketch:navigate";

function subscribe(cb: () => void): () => void {
  window.addEventListener("popstate", cb);
  window.addEventListener(EVENT, cb);
  return () => {
    window.removeEventListener("popstate", cb);
    window.removeEventListener(EVENT, cb);
  };
}

function snapshot(): string {
  return window.location.pathname + window.location.search;
}

export interface Location {
  path: string;
  query: URLSearchParams;
}

export function useLocation(): Location {
  const href = useSyncExternalStore(subscribe, snapshot);
  const url = new URL(href, window.location.origin);
  return { path: url.pathname.replace(/\/+$/, "") || "/", query: url.searchParams };
}

/** Navigate to `path`, keeping the current query string unless one is given. */
export function navigate(path: string, opts: { replace?: boolean; query?: URLSearchParams } = {}) {
  const query = opts.query ?? new URLSearchParams(window.location.search);
  const qs = query.toString();
  const href = path + (qs ? `?${qs}` : "");
  if (href === snapshot()) return;
  if (opts.replace) window.history.replaceState(null, "", href);
  else window.history.pushState(null, "", href);
  window.dispatchEvent(new Event(EVENT));
}

/** Set (or clear) one query parameter without adding a history entry. */
export function setQueryParam(name: string, value: string | null) {
  const query = new URLSearchParams(window.location.search);
  if (value === null) query.delete(name);
  else query.set(name, value);
  navigate(window.location.pathname, { replace: true, query });
}

/** href for an in-app link, carrying the current query string. */
export function hrefFor(path: string): string {
  const qs = window.location.search;
  return path + qs;
}
