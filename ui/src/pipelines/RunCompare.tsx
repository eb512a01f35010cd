// Compare runs side by side: overview, arguments, pipeline outputs, every task
// output parameter and every scalar metric, with differing rows marked.
import { type ReactNode, useEffect, useState } from "react";
import { type Resource, getJSON, objectUrl } from "../core/api";
import { formatNumber } from "./MetricsViews";
import { PageLink, PipelineTabs } from "./PipelineTabs";
import { StatusBadge } from "../core/StatusBadge";
import {
  RUN_KIND,
  TERMINAL_RUN_PHASES,
  type TaskStatus,
  artifactList,
  pipelineOf,
  runPath,
  runSpec,
  runStatus,
} from "./pipelineTypes";
import { duration, timestamp } from "../core/format";
import { useNow } from "../core/useNow";

type Row = [string, unknown[]];

/** Every task's status with its path, iterations included. */
function walk(tasks: Record<string, TaskStatus> | undefined, prefix: string, out: [string, TaskStatus][]) {
  for (const [name, st] of Object.entries(tasks ?? {})) {
    const path = prefix ? `${prefix}/${name}` : name;
    out.push([path, st]);
    walk(st.tasks, path, out);
    for (const it of st.iterations ?? []) walk(it.tasks, `${path}/${it.index}`, out);
  }
  return out;
}

function taskOutputs(run: Resource): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [path, st] of walk(runStatus(run).tasks, "", [])) {
    if (st.tasks || st.iterations) continue;
    for (const [k, v] of Object.entries(st.outputs?.parameters ?? {})) out.set(`${path} · ${k}`, v);
  }
  return out;
}

function metrics(run: Resource): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [path, st] of walk(runStatus(run).tasks, "", [])) {
    for (const [slot, v] of Object.entries(st.outputs?.artifacts ?? {})) {
      for (const a of artifactList(v)) {
        if (a.type !== "system.Metrics") continue;
        for (const [k, mv] of Object.entries(a.metadata ?? {})) {
          if (k !== "display_name") out.set(`${path} · ${slot} · ${k}`, mv);
        }
      }
    }
  }
  return out;
}

function rowsOf(maps: Map<string, unknown>[]): Row[] {
  const keys = [...new Set(maps.flatMap((m) => [...m.keys()]))].sort();
  return keys.map((k) => [k, maps.map((m) => m.get(k))]);
}

function show(v: unknown): ReactNode {
  if (v === undefined) return <span className="muted">—</span>;
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatNumber(v);
  return <span className="mono">{JSON.stringify(v)}</span>;
}

function differs(values: unknown[]): boolean {
  const seen = new Set(values.map((v) => JSON.stringify(v ?? null)));
  return seen.size > 1;
}

function Section({ title, rows, runs, testId }: { title: string; rows: Row[]; runs: Resource[]; testId: string }) {
  return (
    <section className="panel compare-section">
      <div className="panel-head">
        <h2>{title}</h2>
        <span className="muted small">{rows.filter(([, v]) => differs(v)).length} differ</span>
      </div>
      {rows.length === 0 ? (
        <p className="muted small inset-text">None.</p>
      ) : (
        <div className="table-scroll">
          <table className="table compact compare-table" data-testid={testId}>
            <thead>
              <tr>
                <th />
                {runs.map((r) => (
                  <th key={r.metadata.name}>{r.metadata.name}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map(([k, values]) => (
                <tr key={k} className={differs(values) ? "differs" : undefined} data-row={k}>
                  <td className="param-name">{k}</td>
                  {values.map((v, i) => (
                    <td key={i} className="wrap">
                      {show(v)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function RunComparePage({ ids }: { ids: string[] }) {
  const [runs, setRuns] = useState<(Resource | null)[]>([]);
  const [errors, setErrors] = useState<string[]>([]);
  const key = ids.join(",");

  useEffect(() => {
    const controller = new AbortController();
    let timer = 0;
    const load = async () => {
      const found = await Promise.all(
        ids.map(async (id) => {
          const [ns, name] = id.includes("/") ? (id.split("/", 2) as [string, string]) : ["default", id];
          try {
            return { run: await getJSON<Resource>(objectUrl(RUN_KIND, ns, name), controller.signal), error: null };
          } catch (e) {
            return { run: null, error: `${id}: ${(e as Error).message}` };
          }
        }),
      );
      if (controller.signal.aborted) return;
      setRuns(found.map((f) => f.run));
      setErrors(found.flatMap((f) => (f.error ? [f.error] : [])));
      // Runs still going are re-read so the comparison fills in as they finish.
      if (found.some((f) => f.run && !TERMINAL_RUN_PHASES.has(runStatus(f.run).phase ?? ""))) {
        timer = window.setTimeout(() => void load(), 3000);
      }
    };
    void load();
    return () => {
      controller.abort();
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  const shown = runs.filter((r): r is Resource => r !== null);
  const now = useNow(1000);
  const overview: Row[] = [
    ["Pipeline", shown.map(pipelineOf)],
    ["Experiment", shown.map((r) => runSpec(r).experiment ?? undefined)],
    ["Started", shown.map((r) => timestamp(runStatus(r).startTime))],
    ["Duration", shown.map((r) => duration(runStatus(r).startTime, runStatus(r).completionTime, now))],
  ];

  return (
    <div className="page">
      <div className="page-head">
        <h1>Compare runs</h1>
      </div>
      <PipelineTabs active={null} />
      {ids.length < 2 && <div className="banner banner-error">Select two or more runs on the Runs tab to compare them.</div>}
      {errors.length > 0 && <div className="banner banner-error">{errors.join("; ")}</div>}
      {shown.length > 0 && (
        <>
          <section className="panel compare-section">
            <div className="table-scroll">
              <table className="table compact compare-table" data-testid="compare-overview">
                <thead>
                  <tr>
                    <th />
                    {shown.map((r) => (
                      <th key={r.metadata.name} data-run={r.metadata.name}>
                        <PageLink to={runPath(r.metadata.namespace ?? "default", r.metadata.name)}>{r.metadata.name}</PageLink>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  <tr>
                    <td className="param-name">Phase</td>
                    {shown.map((r) => (
                      <td key={r.metadata.name}>
                        <StatusBadge phase={runStatus(r).phase ?? "Pending"} />
                      </td>
                    ))}
                  </tr>
                  {overview.map(([k, values]) => (
                    <tr key={k}>
                      <td className="param-name">{k}</td>
                      {values.map((v, i) => (
                        <td key={i}>{show(v)}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
          <Section
            title="Arguments"
            testId="compare-arguments"
            runs={shown}
            rows={rowsOf(shown.map((r) => new Map(Object.entries(runSpec(r).arguments ?? {}))))}
          />
          <Section title="Metrics" testId="compare-metrics" runs={shown} rows={rowsOf(shown.map(metrics))} />
          <Section
            title="Pipeline outputs"
            testId="compare-outputs"
            runs={shown}
            rows={rowsOf(shown.map((r) => new Map(Object.entries(runStatus(r).outputs?.parameters ?? {}))))}
          />
          <Section title="Task outputs" testId="compare-task-outputs" runs={shown} rows={rowsOf(shown.map(taskOutputs))} />
        </>
      )}
    </div>
  );
}
