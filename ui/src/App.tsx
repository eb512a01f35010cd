import { type ReactNode, useCallback, useEffect, useMemo, useState } from "react";
import {
  ALL_NAMESPACES,
  type ComponentInfo,
  type KindInfo,
  type Resource,
  fetchComponents,
  fetchKinds,
  fetchNamespaces,
} from "./core/api";
import { NOT_INSTALLED, Nav } from "./core/Nav";
import { navigate, setQueryParam, useLocation } from "./core/router";
import { matchRoute, objectPageOf } from "./core/routes";
import { SECTIONS } from "./sections";

const NS_STORAGE_KEY = "ketch.namespace";

function storedNamespace(): string | null {
  try {
    return window.localStorage.getItem(NS_STORAGE_KEY);
  } catch {
    return null;
  }
}

function useNamespace(query: URLSearchParams): [string, (ns: string) => void] {
  const fromUrl = query.get("namespace");
  const namespace = fromUrl || storedNamespace() || "default";
  useEffect(() => {
    try {
      window.localStorage.setItem(NS_STORAGE_KEY, namespace);
    } catch {
      /* storage may be unavailable */
    }
    if (!fromUrl) setQueryParam("namespace", namespace);
  }, [namespace, fromUrl]);
  return [namespace, (ns: string) => setQueryParam("namespace", ns)];
}

export function App() {
  const { path, query } = useLocation();
  const [namespace, setNamespace] = useNamespace(query);
  const [components, setComponents] = useState<ComponentInfo[] | null>(null);
  const [kinds, setKinds] = useState<KindInfo[] | null>(null);
  const [namespaces, setNamespaces] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    fetchComponents()
      .then((c) => !cancelled && setComponents(c))
      .catch((e: Error) => {
        if (cancelled) return;
        setComponents([]);
        setError(`Could not load components: ${e.message}`);
      });
    // Home shows the platform's own workloads; the core group's kinds (Pods, Events,
    // Secrets, ...) are Kubernetes plumbing that kubectl reaches, not dashboard rows.
    fetchKinds()
      .then((k) => !cancelled && setKinds(k.filter((kind) => kind.group !== "")))
      .catch(() => !cancelled && setKinds(null));
    return () => {
      cancelled = true;
    };
  }, []);

  useEffect(() => {
    let cancelled = false;
    const load = () =>
      fetchNamespaces()
        .then((n) => !cancelled && setNamespaces(n))
        .catch(() => undefined);
    void load();
    const id = window.setInterval(load, 30000);
    return () => {
      cancelled = true;
      window.clearInterval(id);
    };
  }, []);

  const installed = useMemo(
    () => (components ? new Set(components.map((c) => c.name)) : null),
    [components],
  );
  // Every kind the server knows: /api/ketch/kinds, else the components' kinds.
  const allKinds = useMemo<KindInfo[] | null>(() => {
    if (kinds && kinds.length) return kinds;
    if (!components) return null;
    return components.flatMap((c) => c.kinds ?? []);
  }, [kinds, components]);
  const pageOf = useCallback((r: Resource) => objectPageOf(SECTIONS, r), []);

  const match = matchRoute(SECTIONS, path);
  const section = match?.section ?? null;
  const activeId = section?.id ?? "";

  let page: ReactNode;
  if (!match || !section) {
    page = (
      <div className="empty-page">
        <h1>Not found</h1>
        <p className="muted">There is no page at {path}.</p>
      </div>
    );
  } else if (section.component !== null && components === null) {
    page = <div className="loading">Loading…</div>;
  } else if (section.component !== null && !installed?.has(section.component)) {
    page = (
      <div className="empty-page">
        <h1>{section.label}</h1>
        <p className="muted">This component is {NOT_INSTALLED}.</p>
      </div>
    );
  } else {
    page = section.render({
      segments: match.segments,
      query,
      namespace,
      components: components ?? [],
      kinds: allKinds,
      pageOf,
    });
  }

  const nsOptions = Array.from(new Set([...namespaces, ...(namespace === ALL_NAMESPACES ? [] : [namespace])])).sort();

  return (
    <div className="shell">
      <header className="topbar">
        <a
          className="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate("/");
          }}
        >
          <span className="brand-mark" aria-hidden="true">k</span>
          <span className="brand-name">ketch</span>
        </a>
        <div className="topbar-spacer" />
        <label className="ns-select">
          <span>Namespace</span>
          <select
            value={namespace}
            onChange={(e) => setNamespace(e.target.value)}
            aria-label="Namespace"
            data-testid="namespace-select"
          >
            <option value={ALL_NAMESPACES}>All namespaces</option>
            {nsOptions.map((ns) => (
              <option key={ns} value={ns}>
                {ns}
              </option>
            ))}
          </select>
        </label>
      </header>
      <Nav sections={SECTIONS} installed={installed} activeId={activeId} />
      <main className="content">
        {error && <div className="banner banner-error">{error}</div>}
        {page}
      </main>
    </div>
  );
}
