// Serving: every InferenceService, live: URL, readiness, traffic per revision.
import { ALL_NAMESPACES, type Condition, type KindInfo, type Resource, keyOf } from "../core/api";
import { AgoCell, ErrorBanner, ListTable, LivePill, PageHead } from "../core/PagePieces";
import { go } from "../pipelines/PipelineTabs";
import { StatusBadge } from "../core/StatusBadge";
import { created } from "../core/format";
import { useNow } from "../core/useNow";
import { useWatch } from "../core/useWatch";

export const ISVC_KIND: KindInfo = {
  group: "serving.kserve.io",
  version: "v1beta1",
  kind: "InferenceService",
  plural: "inferenceservices",
  namespaced: true,
  hasLogs: true,
};
const KINDS = [ISVC_KIND];

export interface Traffic {
  revisionName?: string;
  percent?: number;
  latestRevision?: boolean;
  tag?: string;
}

export interface IsvcStatus {
  url?: string;
  conditions?: Condition[];
  components?: { predictor?: { traffic?: Traffic[]; latestReadyRevision?: string; latestCreatedRevision?: string } };
  readyReplicas?: number;
  revisions?: {
    name: string;
    state?: string;
    replicas?: { ready?: boolean }[];
    desiredReplicas?: number;
    format?: string;
    uri?: string;
    failures?: number;
    restarts?: number;
    message?: string;
  }[];
  modelStatus?: { states?: { activeModelState?: string; targetModelState?: string }; transitionStatus?: string; lastFailureInfo?: { message?: string; reason?: string } };
}

export function isvcStatus(r: Resource): IsvcStatus {
  return (r.status ?? {});
}

/** "Ready", or the Ready condition's reason (Loading, ModelLoadFailed...), or "Pending". */
export function readiness(r: Resource): { phase: string; message: string } {
  const ready = isvcStatus(r).conditions?.find((c) => c.type === "Ready");
  if (!ready) return { phase: "Pending", message: "" };
  if (ready.status === "True") return { phase: "Ready", message: "" };
  return { phase: ready.reason || "NotReady", message: ready.message ?? "" };
}

/** Query of a service's page (/serving?service=NS/NAME: /serving/... is the data plane). */
export function serviceQuery(r: Resource): Record<string, string> {
  return { service: `${r.metadata.namespace ?? "default"}/${r.metadata.name}` };
}

export function TrafficBar({ traffic }: { traffic: Traffic[] | undefined }) {
  const parts = (traffic ?? []).filter((t) => (t.percent ?? 0) > 0);
  if (parts.length === 0) return <span className="muted">—</span>;
  return (
    <div className="traffic" data-testid="traffic">
      <div className="traffic-bar">
        {parts.map((t, i) => (
          <span
            key={t.revisionName ?? i}
            className={`traffic-seg seg-${i % 4}`}
            style={{ width: `${t.percent}%` }}
            title={`${t.revisionName}: ${t.percent}%`}
          />
        ))}
      </div>
      <div className="traffic-legend">
        {parts.map((t, i) => (
          <span key={t.revisionName ?? i} className="small" data-revision={t.revisionName}>
            <span className={`legend-dot seg-${i % 4}`} /> {t.revisionName} {t.percent}%{t.latestRevision ? " (latest)" : ""}
          </span>
        ))}
      </div>
    </div>
  );
}

export function ServingListPage({ namespace }: { namespace: string }) {
  const { items, loading, errors, live } = useWatch(KINDS, namespace);
  const now = useNow(5000);
  const rows = [...items].sort((a, b) => created(b) - created(a));
  const allNs = namespace === ALL_NAMESPACES;
  return (
    <div className="page">
      <PageHead title="Serving">
        <LivePill live={live} />
      </PageHead>
      <ErrorBanner errors={errors} />
      <ListTable
        testId="services-table"
        rows={rows.length}
        loading={loading}
        empty={<>No inference services — try <code>ketch serve MODEL_URI --name NAME</code></>}
        columns={
          <>
            <th>Name</th>
            {allNs && <th>Namespace</th>}
            <th>Ready</th>
            <th>URL</th>
            <th>Traffic</th>
            <th className="num">Replicas</th>
            <th>Age</th>
          </>
        }
      >
        {rows.map((r) => {
          const st = isvcStatus(r);
          const ready = readiness(r);
          return (
            <tr key={keyOf(r)} className="clickable" data-name={r.metadata.name} onClick={() => go("/serving", serviceQuery(r))}>
              <td className="name-cell">{r.metadata.name}</td>
              {allNs && <td>{r.metadata.namespace}</td>}
              <td title={ready.message}>
                <StatusBadge phase={ready.phase} />
              </td>
              <td className="mono">{st.url ?? "—"}</td>
              <td>
                <TrafficBar traffic={st.components?.predictor?.traffic} />
              </td>
              <td className="num">{st.readyReplicas ?? 0}</td>
              <AgoCell ts={r.metadata.creationTimestamp} now={now} ago={false} />
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}
