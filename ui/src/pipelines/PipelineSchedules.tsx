// Experiments (groups of runs, with their runs counted by phase) and recurring
// runs (schedules: trigger, mode with enable/disable, last and next run).
import { useState } from "react";
import { ALL_NAMESPACES, type Resource, keyOf, objectUrl, patchMerge } from "../core/api";
import type { components } from "../core/openapi";
import { AgoCell, ErrorBanner, ListTable, PageHead } from "../core/PagePieces";
import { PageLink, PipelineTabs, go } from "./PipelineTabs";
import { StatusBadge } from "../core/StatusBadge";
import { EXPERIMENT_KIND, RECURRING_KIND, RUN_KIND, runPath, runSpec } from "./pipelineTypes";
import { created, formatDuration, phaseOf, timestamp } from "../core/format";
import { useNow } from "../core/useNow";
import { useWatch } from "../core/useWatch";

const EXPERIMENT_KINDS = [EXPERIMENT_KIND, RUN_KIND];
const RECURRING_KINDS = [RECURRING_KIND];

export function PipelineExperimentsPage({ namespace }: { namespace: string }) {
  const { items, loading, errors } = useWatch(EXPERIMENT_KINDS, namespace);
  const now = useNow(5000);
  const [showArchived, setShowArchived] = useState(false);
  const runs = items.filter((r) => r.kind === "PipelineRun");
  const experiments = items
    .filter((r) => r.kind === "Experiment")
    .filter((r) => showArchived || !(r.spec as { archived?: boolean } | undefined)?.archived)
    .sort((a, b) => created(b) - created(a));
  const allNs = namespace === ALL_NAMESPACES;
  return (
    <div className="page">
      <PageHead title="Pipeline experiments" />
      <PipelineTabs active="experiments" />
      <div className="toolbar">
        <label className="filter">
          <input type="checkbox" checked={showArchived} onChange={(e) => setShowArchived(e.target.checked)} /> Show archived
        </label>
      </div>
      <ErrorBanner errors={errors} />
      <ListTable
        testId="experiments-table"
        rows={experiments.length}
        loading={loading}
        empty={<>No experiments — <code>ketch run FILE --experiment NAME</code> makes one.</>}
        columns={
          <>
            <th>Name</th>
            {allNs && <th>Namespace</th>}
            <th>Description</th>
            <th className="num">Runs</th>
            <th>Latest runs</th>
            <th>Created</th>
          </>
        }
      >
        {experiments.map((e) => {
          const spec = (e.spec ?? {}) as { description?: string; displayName?: string | null; archived?: boolean };
          const own = runs
            .filter((r) => runSpec(r).experiment === e.metadata.name && r.metadata.namespace === e.metadata.namespace)
            .sort((a, b) => created(b) - created(a));
          return (
            <tr
              key={keyOf(e)}
              className="clickable"
              data-name={e.metadata.name}
              onClick={() => go("/pipelines", { experiment: e.metadata.name })}
            >
              <td className="name-cell">
                {spec.displayName || e.metadata.name}
                {spec.archived && <span className="chip">archived</span>}
              </td>
              {allNs && <td>{e.metadata.namespace}</td>}
              <td className="wrap">{spec.description || <span className="muted">—</span>}</td>
              <td className="num">{own.length}</td>
              <td>
                <span className="phase-strip">
                  {own.slice(0, 8).map((r) => (
                    <span key={r.metadata.name} className={`phase-dot phase-${phaseOf(r)}`} title={`${r.metadata.name}: ${phaseOf(r)}`} />
                  ))}
                </span>
              </td>
              <AgoCell ts={e.metadata.creationTimestamp} now={now} />
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}

// Read from open spec/status maps, so every field may be missing.
type RecurringSpec = Partial<components["schemas"]["RecurringRunSpec"]>;

type RecurringStatus = components["schemas"]["RecurringRunStatus"];

function triggerText(t: RecurringSpec["trigger"]): string {
  if (t?.cron) return `cron ${t.cron}`;
  if (t?.intervalSeconds) return `every ${t.intervalSeconds}s`;
  return "—";
}

function ModeToggle({ r }: { r: Resource }) {
  const spec = (r.spec ?? {}) as RecurringSpec;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const enabled = spec.mode !== "Disable";
  const flip = () => {
    setBusy(true);
    setError(null);
    const url = objectUrl(RECURRING_KIND, r.metadata.namespace ?? "default", r.metadata.name);
    patchMerge(url, { spec: { mode: enabled ? "Disable" : "Enable" } })
      .catch((e: Error) => setError(e.message))
      .finally(() => setBusy(false));
  };
  return (
    <span onClick={(e) => e.stopPropagation()}>
      <StatusBadge phase={enabled ? "Enabled" : "Disabled"} />{" "}
      <button className="button small" disabled={busy} onClick={flip} data-testid={`toggle-${r.metadata.name}`}>
        {enabled ? "Disable" : "Enable"}
      </button>
      {error && <div className="small preview-error">{error}</div>}
    </span>
  );
}

export function PipelineRecurringPage({ namespace }: { namespace: string }) {
  const { items, loading, errors } = useWatch(RECURRING_KINDS, namespace);
  const now = useNow(1000);
  const rows = [...items].sort((a, b) => created(b) - created(a));
  const allNs = namespace === ALL_NAMESPACES;
  const untilNext = (ts: string | null | undefined) => {
    if (!ts) return "—";
    const t = Date.parse(ts);
    return t > now ? `in ${formatDuration(t - now)}` : "due";
  };
  return (
    <div className="page">
      <PageHead title="Recurring runs" />
      <PipelineTabs active="recurring" />
      <ErrorBanner errors={errors} />
      <ListTable
        testId="recurring-table"
        rows={rows.length}
        loading={loading}
        empty={<>No recurring runs — <code>ketch.Client().create_recurring_run(...)</code></>}
        columns={
          <>
            <th>Name</th>
            {allNs && <th>Namespace</th>}
            <th>Pipeline</th>
            <th>Trigger</th>
            <th>Mode</th>
            <th className="num">Active</th>
            <th>Last run</th>
            <th>Next</th>
          </>
        }
      >
        {rows.map((r) => {
          const spec = (r.spec ?? {}) as RecurringSpec;
          const st = (r.status ?? {}) as RecurringStatus;
          const ns = r.metadata.namespace ?? "default";
          return (
            <tr key={keyOf(r)} data-name={r.metadata.name}>
              <td className="name-cell">
                {r.metadata.name}
                {spec.description && <div className="sub">{spec.description}</div>}
              </td>
              {allNs && <td>{ns}</td>}
              <td>{spec.runTemplate?.pipelineRef?.name ?? "inline IR"}</td>
              <td className="mono">
                {triggerText(spec.trigger)}
                <div className="sub">
                  at most {spec.maxConcurrency ?? 10} at once{spec.noCatchup ? ", no catch-up" : ""}
                </div>
              </td>
              <td>
                <ModeToggle r={r} />
              </td>
              <td className="num">{st.active ?? 0}</td>
              <td>
                {st.lastRunName ? <PageLink to={runPath(ns, st.lastRunName)}>{st.lastRunName}</PageLink> : "—"}
                {st.lastScheduledTime && <div className="sub">{timestamp(st.lastScheduledTime)}</div>}
              </td>
              <td className="nowrap" title={timestamp(st.nextScheduledTime)}>
                {spec.mode === "Disable" ? "—" : untilNext(st.nextScheduledTime)}
              </td>
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}
