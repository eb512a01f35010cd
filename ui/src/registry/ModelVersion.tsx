import { type ReactNode, useEffect, useMemo, useState } from "react";
import {
  ApiError,
  type Artifact,
  type ModelVersion,
  type Resource,
  getJSON,
  getModelVersion,
  getRegisteredModel,
  objectUrl,
} from "../core/api";
import { PageLink } from "../pipelines/PipelineTabs";
import { RUN_KIND, producerOf, runPath, runStatus } from "../pipelines/pipelineTypes";
import { LabelChips, PropertiesTable, RegistryStateBadge, labelsOf, modelPath, propertiesOf, usePagedList } from "./Registry";
import { CopyButton, Facts, Link } from "../core/Widgets";
import { fromEpoch, timestamp } from "../core/format";
import { Breadcrumbs, useRegistryObject } from "./ModelDetail";

const ARTIFACT_PARAMS = { pageSize: 100, orderBy: "ID", sortOrder: "ASC" } as const;
/** modelSourceKind values whose modelSourceName is a ketch Job. */
const JOB_SOURCE_KINDS = new Set(["job"]);
/**
 * modelSourceKind of a model registered from a pipeline step. KFP (and ketch's
 * registry client inside a step) record kind "kfp", class "pipelinerun", the
 * run's namespace as group, its name and its uid as id.
 */
const PIPELINE_SOURCE_KINDS = new Set(["kfp"]);

const YAML_RESERVED = /^(true|false|yes|no|on|off|y|n|null|~)$/i;

function yamlStr(s: string): string {
  return /^[A-Za-z][A-Za-z0-9_./:@-]*$/.test(s) && !YAML_RESERVED.test(s) ? s : JSON.stringify(s);
}

function shellArg(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A Kubernetes object name (DNS-1035 label) derived from a model name. */
export function resourceName(name: string): string {
  let n = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (!/^[a-z]/.test(n)) n = `m-${n}`;
  return n.slice(0, 63).replace(/-+$/, "") || "model";
}

export function deployCommand(model: string, version: string): string {
  return `ketch serve ${shellArg(`model-registry://${model}/${version}`)} --name ${shellArg(resourceName(model))}`;
}

export function inferenceServiceYaml(
  model: string,
  version: string,
  format: string | undefined,
  formatVersion: string | undefined,
): string {
  const lines = [
    "apiVersion: serving.kserve.io/v1beta1",
    "kind: InferenceService",
    "metadata:",
    `  name: ${resourceName(model)}`,
    "spec:",
    "  predictor:",
    "    model:",
    "      modelFormat:",
    format ? `        name: ${yamlStr(format)}` : `        name: ""  # set the model format, e.g. sklearn`,
  ];
  if (formatVersion) lines.push(`        version: ${yamlStr(formatVersion)}`);
  lines.push(`      storageUri: ${yamlStr(`model-registry://${model}/${version}`)}`);
  return `${lines.join("\n")}\n`;
}

export function jobPathForSource(a: Artifact): string | null {
  if (!a.modelSourceKind || !a.modelSourceName) return null;
  if (!JOB_SOURCE_KINDS.has(a.modelSourceKind.toLowerCase())) return null;
  const ns = a.modelSourceGroup || "default";
  return `/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(a.modelSourceName)}`;
}

/** The run a pipeline-registered artifact came from: namespace and name, or null. */
export function runForSource(a: Artifact): { namespace: string; name: string } | null {
  if (!a.modelSourceKind || !a.modelSourceName) return null;
  if (!PIPELINE_SOURCE_KINDS.has(a.modelSourceKind.toLowerCase())) return null;
  return { namespace: a.modelSourceGroup || "default", name: a.modelSourceName };
}

type RunLookup =
  | { state: "loading" }
  | { state: "found"; task: string | null }
  | { state: "gone" }
  | { state: "error"; message: string };

/**
 * Look the source run up once: is it still there (the same run: its uid is
 * the artifact's modelSourceId), and which of its steps wrote the model's URI.
 */
function useSourceRun(a: Artifact): RunLookup {
  const run = runForSource(a);
  const [lookup, setLookup] = useState<RunLookup>({ state: "loading" });
  const ns = run?.namespace ?? "";
  const name = run?.name ?? "";
  useEffect(() => {
    if (!name) return;
    const controller = new AbortController();
    getJSON<Resource>(objectUrl(RUN_KIND, ns, name), controller.signal)
      .then((r) => {
        if (a.modelSourceId && r.metadata.uid && r.metadata.uid !== a.modelSourceId) {
          setLookup({ state: "gone" });
          return;
        }
        setLookup({ state: "found", task: a.uri ? producerOf(runStatus(r), a.uri) : null });
      })
      .catch((e: Error) => {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError && e.code === 404) setLookup({ state: "gone" });
        else setLookup({ state: "error", message: e.message });
      });
    return () => controller.abort();
  }, [ns, name, a.modelSourceId, a.uri]);
  return lookup;
}

function PipelineSource({ artifact: a }: { artifact: Artifact }) {
  const run = runForSource(a);
  const lookup = useSourceRun(a);
  if (!run) return null;
  const label = `${run.namespace}/${run.name}`;
  if (lookup.state === "gone") {
    return (
      <span data-testid="source-run-gone">
        {label} <span className="muted">(the run no longer exists)</span>
      </span>
    );
  }
  const task = lookup.state === "found" ? lookup.task : null;
  return (
    <>
      <PageLink to={runPath(run.namespace, run.name)} query={task ? { task } : {}} testId="source-run-link">
        {label}
        {task ? ` · ${task}` : ""}
      </PageLink>
      {lookup.state === "error" && <span className="muted small"> ({lookup.message})</span>}
    </>
  );
}

const ARTIFACT_FIELDS: [keyof Artifact, string][] = [
  ["uri", "URI"],
  ["state", "State"],
  ["modelFormatName", "Format"],
  ["modelFormatVersion", "Format version"],
  ["storageKey", "Storage key"],
  ["storagePath", "Storage path"],
  ["serviceAccountName", "Service account"],
  ["modelSourceKind", "Source kind"],
  ["modelSourceClass", "Source class"],
  ["modelSourceGroup", "Source group"],
  ["modelSourceId", "Source ID"],
  ["modelSourceName", "Source name"],
  ["digest", "Digest"],
  ["sourceType", "Source type"],
  ["source", "Source"],
  ["value", "Value"],
  ["parameterType", "Parameter type"],
  ["step", "Step"],
];

export function ModelVersionPage({ modelId, versionId }: { modelId: string; versionId: string }) {
  const { obj: model } = useRegistryObject(modelId, getRegisteredModel);
  const { obj: version, error, missing } = useRegistryObject(versionId, getModelVersion);
  const artifacts = usePagedList<Artifact>(
    `/model_versions/${encodeURIComponent(versionId)}/artifacts`,
    ARTIFACT_PARAMS,
  );
  const modelName = model?.name ?? "";

  const crumbs = [
    { label: "Models", to: "/models" },
    { label: model?.name ?? modelId, to: modelPath(modelId) },
    { label: version?.name ?? versionId },
  ];

  if (missing) {
    return (
      <div className="empty-page">
        <Breadcrumbs items={crumbs.slice(0, 2)} />
        <h1>Version not found</h1>
        <p className="muted">There is no model version with id {versionId}.</p>
      </div>
    );
  }

  const modelArtifacts = artifacts.items.filter(
    (a) => (a.artifactType ?? "model-artifact") === "model-artifact",
  );
  const primary = modelArtifacts[0];

  return (
    <div className="page" data-testid="version-detail">
      <Breadcrumbs items={crumbs} />
      {error && <div className="banner banner-error">Could not load the version: {error}</div>}
      {!version ? (
        !error && <div className="loading">Loading…</div>
      ) : (
        <>
          <div className="page-head">
            <h1>
              {modelName && <span className="muted">{modelName} / </span>}
              {version.name}
            </h1>
            <RegistryStateBadge state={version.state} />
          </div>
          {version.registeredModelId && version.registeredModelId !== modelId && (
            <div className="banner banner-error">
              This version belongs to{" "}
              <Link to={modelPath(version.registeredModelId)}>model {version.registeredModelId}</Link>.
            </div>
          )}
          <VersionSummary version={version} />
        </>
      )}

      <section className="panel" data-testid="artifacts">
        <div className="panel-head">
          <h2>Artifacts</h2>
          <span className="muted small">{artifacts.items.length}</span>
        </div>
        {artifacts.error && (
          <div className="banner banner-error inset">Could not load artifacts: {artifacts.error}</div>
        )}
        {artifacts.items.length === 0 ? (
          <div className="empty-state">
            {artifacts.loading ? "Loading…" : "No artifacts registered for this version."}
          </div>
        ) : (
          <div className="artifact-list">
            {artifacts.items.map((a) => (
              <ArtifactCard key={a.id} artifact={a} />
            ))}
          </div>
        )}
        {artifacts.hasMore && (
          <div className="panel-foot">
            <button type="button" className="button" onClick={artifacts.loadMore} disabled={artifacts.loading}>
              Load more
            </button>
          </div>
        )}
      </section>

      <div className="detail-grid">
        <SourceBox artifacts={modelArtifacts} loading={artifacts.loading} />
        {version && model && (
          <DeployBox
            model={model.name}
            version={version.name}
            format={primary?.modelFormatName}
            formatVersion={primary?.modelFormatVersion}
          />
        )}
      </div>
    </div>
  );
}

function VersionSummary({ version }: { version: ModelVersion }) {
  return (
    <div className="detail-grid">
      <section className="panel detail">
        <div className="panel-head">
          <h2>Details</h2>
        </div>
        {version.description ? (
          <p className="description">{version.description}</p>
        ) : (
          <p className="description muted">No description.</p>
        )}
        <Facts
          rows={[
            ["ID", version.id],
            ["Author", version.author],
            ["State", <RegistryStateBadge key="s" state={version.state} />],
            ["Labels", <LabelChips key="l" labels={labelsOf(version.customProperties)} />],
            ["External ID", version.externalId],
            ["Created", timestamp(fromEpoch(version.createTimeSinceEpoch))],
            ["Last modified", timestamp(fromEpoch(version.lastUpdateTimeSinceEpoch))],
          ]}
        />
      </section>
      <section className="panel detail">
        <div className="panel-head">
          <h2>Properties</h2>
        </div>
        <div className="detail-body">
          <PropertiesTable props={version.customProperties} testId="version-properties" />
        </div>
      </section>
    </div>
  );
}

function ArtifactCard({ artifact: a }: { artifact: Artifact }) {
  const rows: [string, ReactNode][] = [["Type", a.artifactType ?? "model-artifact"]];
  for (const [field, label] of ARTIFACT_FIELDS) {
    const v = a[field];
    if (v === undefined || v === null || v === "") continue;
    rows.push([label, <span key={field} className="mono wrap" data-field={field}>{typeof v === "string" ? v : JSON.stringify(v)}</span>]);
  }
  const props = propertiesOf(a.customProperties);
  return (
    <div className="artifact" data-testid="artifact" data-artifact-type={a.artifactType ?? ""}>
      <div className="artifact-head">
        <span className="name-cell">{a.name || `artifact ${a.id}`}</span>
        <span className="tag">{a.artifactType ?? "model-artifact"}</span>
      </div>
      {a.description && <p className="description">{a.description}</p>}
      <Facts rows={rows} />
      {props.length > 0 && (
        <>
          <h3>Properties</h3>
          <PropertiesTable props={a.customProperties} />
        </>
      )}
    </div>
  );
}

function SourceBox({ artifacts, loading }: { artifacts: Artifact[]; loading: boolean }) {
  const sourced = artifacts.filter((a) => a.modelSourceKind || a.modelSourceName);
  return (
    <section className="panel detail" data-testid="model-source">
      <div className="panel-head">
        <h2>Source</h2>
      </div>
      {sourced.length === 0 ? (
        <p className="description muted">
          {loading ? "Loading…" : "No source recorded (set modelSourceKind / modelSourceName on the model artifact)."}
        </p>
      ) : (
        sourced.map((a) => {
          const job = jobPathForSource(a);
          return (
            <div key={a.id}>
              <Facts
                rows={[
                  ["Kind", a.modelSourceKind],
                  ["Name", a.modelSourceName],
                  ["Group", a.modelSourceGroup],
                  ["Class", a.modelSourceClass],
                  ["ID", a.modelSourceId],
                  ["Pipeline run", runForSource(a) ? <PipelineSource key="r" artifact={a} /> : null],
                  [
                    "Job",
                    job ? (
                      <Link key="j" to={job} testId="source-job-link">
                        {a.modelSourceGroup || "default"}/{a.modelSourceName}
                      </Link>
                    ) : null,
                  ],
                ]}
              />
            </div>
          );
        })
      )}
    </section>
  );
}

function DeployBox({
  model,
  version,
  format,
  formatVersion,
}: {
  model: string;
  version: string;
  format: string | undefined;
  formatVersion: string | undefined;
}) {
  const cmd = deployCommand(model, version);
  const yaml = useMemo(
    () => inferenceServiceYaml(model, version, format, formatVersion),
    [model, version, format, formatVersion],
  );
  return (
    <section className="panel detail" data-testid="deploy">
      <div className="panel-head">
        <h2>Deploy</h2>
      </div>
      <div className="snippet-head">
        <h3>With the ketch CLI</h3>
        <CopyButton text={cmd} />
      </div>
      <pre className="code" data-testid="deploy-command">{cmd}</pre>
      <div className="snippet-head">
        <h3>As a KServe InferenceService</h3>
        <CopyButton text={yaml} />
      </div>
      <pre className="code" data-testid="deploy-yaml">{yaml}</pre>
    </section>
  );
}
