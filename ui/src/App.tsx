import { type ReactNode, useEffect, useMemo, useState } from "react";
import {
  ALL_NAMESPACES,
  type ComponentInfo,
  type KindInfo,
  fetchComponents,
  fetchKinds,
  fetchNamespaces,
} from "./api";
import { NAV, NOT_INSTALLED, Nav } from "./components/Nav";
import { HomePage } from "./pages/Home";
import { JobsPage } from "./pages/Jobs";
import { KindPage } from "./pages/KindPage";
import { ModelDetailPage } from "./pages/ModelDetail";
import { ModelsPage } from "./pages/Models";
import { ModelVersionPage } from "./pages/ModelVersion";
import { PipelineSection } from "./pages/PipelineSection";
import { ServingDetailPage } from "./pages/ServingDetail";
import { ServingListPage } from "./pages/ServingList";
import { navigate, setQueryParam, useLocation } from "./router";

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
    fetchKinds()
      .then((k) => !cancelled && setKinds(k))
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

  const segments = path.split("/").filter(Boolean).map(decodeURIComponent);
  const entry = NAV.find((n) => n.path === `/${segments[0] ?? ""}`) ?? null;
  const activeId = entry?.id ?? "";

  let page: ReactNode;
  if (!entry) {
    page = (
      <div className="empty-page">
        <h1>Not found</h1>
        <p className="muted">There is no page at {path}.</p>
      </div>
    );
  } else if (entry.id === "home") {
    page = <HomePage kinds={allKinds} namespace={namespace} />;
  } else if (components === null) {
    page = <div className="loading">Loading…</div>;
  } else if (entry.component && !installed?.has(entry.component)) {
    page = (
      <div className="empty-page">
        <h1>{entry.label}</h1>
        <p className="muted">This component is {NOT_INSTALLED}.</p>
      </div>
    );
  } else if (entry.id === "jobs") {
    const jobKind =
      components.find((c) => c.name === "jobs")?.kinds.find((k) => k.kind === "Job") ?? null;
    page = (
      <JobsPage
        kind={jobKind}
        namespace={namespace}
        selected={
          segments.length >= 3 ? { namespace: segments[1] ?? "", name: segments[2] ?? "" } : null
        }
      />
    );
  } else if (entry.id === "pipelines") {
    page = <PipelineSection segments={segments.slice(1)} query={query} namespace={namespace} />;
  } else if (entry.id === "serving") {
    // The server keeps /serving/... for the data plane, so a service's page is
    // /serving?service=NAMESPACE/NAME (a reload must reach the dashboard).
    const [svcNs, svcName] = (query.get("service") ?? "").split("/", 2);
    page =
      svcNs && svcName ? (
        <ServingDetailPage key={`${svcNs}/${svcName}`} namespace={svcNs} name={svcName} />
      ) : (
        <ServingListPage namespace={namespace} />
      );
  } else if (entry.id === "models") {
    const modelId = segments[1];
    const versionId = segments[2] === "versions" ? segments[3] : undefined;
    if (!modelId) page = <ModelsPage />;
    else if (versionId)
      page = <ModelVersionPage key={`${modelId}/${versionId}`} modelId={modelId} versionId={versionId} />;
    else page = <ModelDetailPage key={modelId} modelId={modelId} />;
  } else {
    const comp = components.find((c) => c.name === entry.component);
    page = <KindPage title={entry.label} component={comp ?? null} namespace={namespace} />;
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
      <Nav installed={installed} activeId={activeId} />
      <main className="content">
        {error && <div className="banner banner-error">{error}</div>}
        {page}
      </main>
    </div>
  );
}
