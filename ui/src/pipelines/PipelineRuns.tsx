// Runs list: live (watch), filtered by phase, pipeline and experiment (kept in
// the URL), with a selection to compare runs side by side.
import { useMemo, useState } from "react";
import { ALL_NAMESPACES, type Resource, keyOf } from "../core/api";
import { AgoCell, ErrorBanner, ListTable, LivePill, PageHead } from "../core/PagePieces";
import { PipelineTabs, go } from "./PipelineTabs";
import { StatusBadge } from "../core/StatusBadge";
import { RUN_KIND, pipelineOf, runPath, runSpec, runStatus } from "./pipelineTypes";
import { created, duration, phaseOf } from "../core/format";
import { setQueryParam } from "../core/router";
import { useNow } from "../core/useNow";
import { useWatch } from "../core/useWatch";

const PHASES = ["Pending", "Running", "Succeeded", "Failed", "Cancelled"];
// Rows drawn at first: a namespace may hold thousands of runs.
const PAGE = 100;
const KINDS = [RUN_KIND];

function runId(r: Resource): string {
  return `${r.metadata.namespace ?? "default"}/${r.metadata.name}`;
}

function FilterSelect({
  label,
  param,
  value,
  options,
}: {
  label: string;
  param: string;
  value: string;
  options: string[];
}) {
  return (
    <label className="filter">
      <span>{label}</span>
      <select value={value} onChange={(e) => setQueryParam(param, e.target.value || null)} data-testid={`filter-${param}`}>
        <option value="">All</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}

export function PipelineRunsPage({ namespace, query }: { namespace: string; query: URLSearchParams }) {
  const { items, loading, errors, live } = useWatch(KINDS, namespace);
  const now = useNow(1000);
  const [picked, setPicked] = useState<Set<string>>(() => new Set());
  const [shown, setShown] = useState(PAGE);
  const phase = query.get("phase") ?? "";
  const pipeline = query.get("pipeline") ?? "";
  const experiment = query.get("experiment") ?? "";
  const allNs = namespace === ALL_NAMESPACES;

  const pipelines = useMemo(() => [...new Set(items.map(pipelineOf).filter(Boolean))].sort(), [items]);
  const experiments = useMemo(
    () => [...new Set(items.map((r) => runSpec(r).experiment ?? "").filter(Boolean))].sort(),
    [items],
  );
  const rows = items
    .filter(
      (r) =>
        (!phase || phaseOf(r) === phase) &&
        (!pipeline || pipelineOf(r) === pipeline) &&
        (!experiment || runSpec(r).experiment === experiment),
    )
    .sort((a, b) => created(b) - created(a));
  const chosen = [...picked].filter((id) => items.some((r) => runId(r) === id));

  const toggle = (id: string) =>
    setPicked((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <div className="page">
      <PageHead title="Pipelines">
        <LivePill live={live} />
      </PageHead>
      <PipelineTabs active="runs" />
      <div className="toolbar">
        <FilterSelect label="Phase" param="phase" value={phase} options={PHASES} />
        <FilterSelect label="Pipeline" param="pipeline" value={pipeline} options={pipelines} />
        <FilterSelect label="Experiment" param="experiment" value={experiment} options={experiments} />
        <div className="topbar-spacer" />
        <span className="muted small">
          {rows.length} of {items.length} runs
        </span>
        <button
          className="button primary"
          disabled={chosen.length < 2}
          data-testid="compare-runs"
          title={chosen.length < 2 ? "Select two or more runs" : undefined}
          onClick={() => go("/pipelines/compare", { runs: chosen.join(",") })}
        >
          Compare{chosen.length ? ` (${chosen.length})` : ""}
        </button>
      </div>
      <ErrorBanner errors={errors} />
      <ListTable
        testId="runs-table"
        rows={rows.length}
        loading={loading}
        empty={items.length ? "No runs match the filters." : <>No runs yet — try <code>ketch run pipeline.py</code></>}
        columns={
          <>
            <th aria-label="Select" />
            <th>Name</th>
            {allNs && <th>Namespace</th>}
            <th>Pipeline</th>
            <th>Experiment</th>
            <th>Phase</th>
            <th>Started</th>
            <th>Duration</th>
          </>
        }
        footer={
          rows.length > shown && (
            <div className="panel-foot">
              <button className="button" onClick={() => setShown((n) => n + PAGE)} data-testid="more-runs">
                Show {Math.min(PAGE, rows.length - shown)} more of {rows.length - shown}
              </button>
            </div>
          )
        }
      >
        {rows.slice(0, shown).map((r) => {
          const st = runStatus(r);
          const id = runId(r);
          return (
            <tr
              key={keyOf(r)}
              className="clickable"
              data-name={r.metadata.name}
              data-phase={phaseOf(r)}
              onClick={() => go(runPath(r.metadata.namespace ?? "default", r.metadata.name))}
            >
              <td onClick={(e) => e.stopPropagation()}>
                <input
                  type="checkbox"
                  aria-label={`Select ${r.metadata.name}`}
                  checked={picked.has(id)}
                  onChange={() => toggle(id)}
                />
              </td>
              <td className="name-cell">{r.metadata.name}</td>
              {allNs && <td>{r.metadata.namespace}</td>}
              <td>{pipelineOf(r) || "—"}</td>
              <td>{runSpec(r).experiment || "—"}</td>
              <td>
                <StatusBadge phase={phaseOf(r)} />
              </td>
              <AgoCell ts={st.startTime} now={now} />
              <td className="nowrap">{duration(st.startTime, st.completionTime, now)}</td>
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}
