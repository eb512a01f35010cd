// Uploaded pipelines and their versions; a version's IR summarised (inputs,
// outputs, steps and images) and drawn as a graph.
import { useMemo, useState } from "react";
import { ALL_NAMESPACES, type Resource, keyOf } from "../core/api";
import type { components } from "../core/openapi";
import { DagGraph } from "./DagGraph";
import { runGraph } from "./dagModel";
import { PageLink, PipelineTabs, go } from "./PipelineTabs";
import { AgoCell, Crumbs, ErrorBanner, ListTable, PageHead } from "../core/PagePieces";
import { Facts } from "../core/Widgets";
import { PIPELINE_KIND, type PipelineIR, VERSION_KIND } from "./pipelineTypes";
import { created } from "../core/format";
import { setQueryParam } from "../core/router";
import { useNow } from "../core/useNow";
import { useWatch } from "../core/useWatch";

const CATALOG_KINDS = [PIPELINE_KIND, VERSION_KIND];

// Read from an open spec map, so every field may be missing; the IR typed as far as read.
type VersionSpec = Partial<Omit<components["schemas"]["PipelineVersionSpec"], "pipelineSpec">> & {
  pipelineSpec?: PipelineIR;
};

function versionSpec(v: Resource): VersionSpec {
  return (v.spec ?? {});
}

function catalogPath(r: Resource): string {
  return `/pipelines/catalog/${encodeURIComponent(r.metadata.namespace ?? "default")}/${encodeURIComponent(r.metadata.name)}`;
}

export function PipelineCatalogPage({ namespace }: { namespace: string }) {
  const { items, loading, errors } = useWatch(CATALOG_KINDS, namespace);
  const now = useNow(5000);
  const pipelines = items.filter((r) => r.kind === "Pipeline").sort((a, b) => created(b) - created(a));
  const versions = items.filter((r) => r.kind === "PipelineVersion");
  const allNs = namespace === ALL_NAMESPACES;
  return (
    <div className="page">
      <PageHead title="Pipelines" />
      <PipelineTabs active="catalog" />
      <ErrorBanner errors={errors} />
      <ListTable
        testId="pipelines-table"
        rows={pipelines.length}
        loading={loading}
        empty={<>No pipelines uploaded — try <code>ketch.Client().upload_pipeline(...)</code></>}
        columns={
          <>
            <th>Name</th>
            {allNs && <th>Namespace</th>}
            <th>Description</th>
            <th className="num">Versions</th>
            <th>Latest version</th>
            <th>Created</th>
          </>
        }
      >
        {pipelines.map((p) => {
          const spec = (p.spec ?? {}) as { description?: string; displayName?: string | null };
          const st = (p.status ?? {}) as { latestVersion?: string; versions?: number };
          const own = versions.filter(
            (v) => versionSpec(v).pipeline === p.metadata.name && v.metadata.namespace === p.metadata.namespace,
          );
          return (
            <tr key={keyOf(p)} className="clickable" data-name={p.metadata.name} onClick={() => go(catalogPath(p))}>
              <td className="name-cell">{spec.displayName || p.metadata.name}</td>
              {allNs && <td>{p.metadata.namespace}</td>}
              <td className="wrap">{spec.description || <span className="muted">—</span>}</td>
              <td className="num">{st.versions ?? own.length}</td>
              <td className="mono">{st.latestVersion ?? "—"}</td>
              <AgoCell ts={p.metadata.creationTimestamp} now={now} />
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}

function IRSummary({ ir }: { ir: PipelineIR }) {
  const [selected, setSelected] = useState<string | null>(null);
  const graph = useMemo(() => runGraph(ir, undefined, null), [ir]);
  const inputs = Object.entries(ir.root?.inputDefinitions?.parameters ?? {});
  const inputArts = Object.entries(ir.root?.inputDefinitions?.artifacts ?? {});
  const outputs = [
    ...Object.entries(ir.root?.outputDefinitions?.parameters ?? {}).map(([k, d]) => [k, d.parameterType ?? ""] as const),
    ...Object.entries(ir.root?.outputDefinitions?.artifacts ?? {}).map(
      ([k, d]) => [k, d.artifactType?.schemaTitle ?? "artifact"] as const,
    ),
  ];
  const executors = Object.entries(ir.deploymentSpec?.executors ?? {});
  const images = [...new Set(executors.map(([, e]) => e.container?.image).filter(Boolean))];
  return (
    <div className="ir-summary" data-testid="ir-summary">
      <Facts
        rows={[
          ["Name", ir.pipelineInfo?.name ?? ""],
          ["Description", ir.pipelineInfo?.description ?? ""],
          ["Steps", String(executors.length)],
          ["Components", String(Object.keys(ir.components ?? {}).length)],
          ["Images", images.join(", ")],
          ["Compiled by", ir.sdkVersion ?? ""],
          ["Schema", ir.schemaVersion ?? ""],
        ]}
      />
      <h3>Parameters</h3>
      {inputs.length + inputArts.length === 0 ? (
        <p className="muted small">None.</p>
      ) : (
        <div className="table-scroll bordered">
          <table className="table compact" data-testid="ir-inputs">
            <thead>
              <tr>
                <th>Name</th>
                <th>Type</th>
                <th>Default</th>
              </tr>
            </thead>
            <tbody>
              {inputs.map(([k, d]) => (
                <tr key={k}>
                  <td className="param-name">{k}</td>
                  <td className="mono">{d.parameterType}</td>
                  <td className="mono">{d.defaultValue === undefined ? (d.isOptional ? "null" : "required") : JSON.stringify(d.defaultValue)}</td>
                </tr>
              ))}
              {inputArts.map(([k, d]) => (
                <tr key={k}>
                  <td className="param-name">{k}</td>
                  <td className="mono">{d.artifactType?.schemaTitle ?? "artifact"}</td>
                  <td />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h3>Outputs</h3>
      {outputs.length === 0 ? (
        <p className="muted small">None.</p>
      ) : (
        <p className="small">
          {outputs.map(([k, t]) => (
            <span key={k} className="chip">
              {k}: {t}
            </span>
          ))}
        </p>
      )}
      <h3>Graph</h3>
      <DagGraph graph={graph} selected={selected} onSelect={(n) => setSelected(n.path)} subtitle={() => "step"} />
    </div>
  );
}

export function PipelineDetailPage({ namespace, name, version }: { namespace: string; name: string; version: string | null }) {
  const { items, loading, errors } = useWatch(CATALOG_KINDS, namespace);
  const now = useNow(5000);
  const pipeline = items.find((r) => r.kind === "Pipeline" && r.metadata.name === name);
  const versions = items
    .filter((r) => r.kind === "PipelineVersion" && versionSpec(r).pipeline === name)
    .sort((a, b) => created(b) - created(a) || Number(b.metadata.resourceVersion) - Number(a.metadata.resourceVersion));
  const latest = (pipeline?.status as { latestVersion?: string } | undefined)?.latestVersion;
  const current =
    versions.find((v) => v.metadata.name === version) ??
    versions.find((v) => v.metadata.name === latest) ??
    versions[0];
  const ir = current ? versionSpec(current).pipelineSpec : undefined;
  const spec = (pipeline?.spec ?? {}) as { description?: string; displayName?: string | null };

  return (
    <div className="page">
      <Crumbs namespace={namespace}>
        <PageLink to="/pipelines/catalog">Pipelines</PageLink>
      </Crumbs>
      <PageHead title={spec.displayName || name}>
        <PageLink to="/pipelines" query={{ pipeline: name }} className="button small" testId="pipeline-runs-link">
          Runs of this pipeline
        </PageLink>
      </PageHead>
      <ErrorBanner errors={errors} />
      {!pipeline && !loading && <div className="banner banner-error">No pipeline “{name}” in namespace {namespace}.</div>}
      {spec.description && <p className="description">{spec.description}</p>}
      <div className="detail-grid catalog-grid">
        <section className="panel">
          <div className="panel-head">
            <h2>Versions</h2>
            <span className="muted small">{versions.length}</span>
          </div>
          <div className="table-scroll">
            <table className="table compact" data-testid="versions-table">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>Source</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {versions.map((v) => (
                  <tr
                    key={keyOf(v)}
                    className={`clickable${v === current ? " selected" : ""}`}
                    data-name={v.metadata.name}
                    onClick={() => setQueryParam("version", v.metadata.name)}
                  >
                    <td className="name-cell">
                      {v.metadata.name}
                      {v.metadata.name === latest && <span className="chip">latest</span>}
                      {versionSpec(v).description && <div className="sub">{versionSpec(v).description}</div>}
                    </td>
                    <td className="mono">{versionSpec(v).sourceFile ?? "—"}</td>
                    <AgoCell ts={v.metadata.creationTimestamp} now={now} />
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
        <section className="panel detail">
          <div className="panel-head">
            <h2>{current ? current.metadata.name : "No version"}</h2>
          </div>
          {ir ? <IRSummary ir={ir} /> : <p className="muted small">Upload a version to see its pipeline.</p>}
        </section>
      </div>
    </div>
  );
}
