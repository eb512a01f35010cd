// The run page: the pipeline's DAG with live task states, the run's arguments
// and outputs, a Cancel button while it runs, and the selected task's panel.
import { useEffect, useMemo, useRef, useState } from "react";
import { objectUrl, patchMerge } from "../core/api";
import { ArtifactPreview } from "./ArtifactPreview";
import { DagGraph } from "./DagGraph";
import { type GraphNode, findNode, phaseCounts, runGraph } from "./dagModel";
import { Crumbs } from "../core/PagePieces";
import { PageLink as Link } from "./PipelineTabs";
import { StatusBadge } from "../core/StatusBadge";
import { RunAgainForm } from "./RunAgainForm";
import { ParamTable, TaskPanel } from "./TaskPanel";
import {
  type PipelineIR,
  RUN_KIND,
  TERMINAL_RUN_PHASES,
  artifactList,
  failedStep,
  pipelineOf,
  runSpec,
  runStatus,
} from "./pipelineTypes";
import { usePipelineIR } from "./usePipelineIR";
import { useResource } from "../core/useResource";
import { duration, timestamp } from "../core/format";
import { lastLine } from "../core/messages";
import { setQueryParam } from "../core/router";
import { useNow } from "../core/useNow";

/** The run's arguments over the pipeline's defaults (what the steps received). */
function effectiveArguments(ir: PipelineIR | null, given: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(ir?.root?.inputDefinitions?.parameters ?? {})) {
    if (d.defaultValue !== undefined) out[k] = d.defaultValue;
  }
  return { ...out, ...(given ?? {}) };
}

const COUNT_ORDER = ["Running", "Pending", "Succeeded", "Cached", "Failed", "Skipped", "Cancelled", "NotRun"];

export function RunDetailPage({ namespace, name, task }: { namespace: string; name: string; task: string | null }) {
  const { object: run, error, loading, missing } = useResource(RUN_KIND, namespace, name);
  const { ir, error: irError } = usePipelineIR(run);
  const now = useNow(1000);
  const [cancelling, setCancelling] = useState(false);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const [again, setAgain] = useState(false);
  const url = objectUrl(RUN_KIND, namespace, name);

  const st = run ? runStatus(run) : null;
  const spec = run ? runSpec(run) : null;
  const phase = st?.phase ?? "Pending";
  const graph = useMemo(() => (ir ? runGraph(ir, st?.tasks, phase) : null), [ir, st?.tasks, phase]);
  const selected = graph && task ? findNode(graph, task) : null;
  const counts = graph ? phaseCounts(graph) : {};
  const terminal = TERMINAL_RUN_PHASES.has(phase);
  const failedTask = phase === "Failed" ? failedStep(st) : null;

  // A failed run opens on the step that failed it: its panel holds the
  // traceback (once). Only on arrival: a closed panel stays closed.
  const opened = useRef(false);
  useEffect(() => {
    if (opened.current || !failedTask || !graph) return;
    opened.current = true;
    if (task === null && findNode(graph, failedTask)) setQueryParam("task", failedTask);
  }, [failedTask, graph, task]);

  const cancel = () => {
    setCancelling(true);
    setCancelError(null);
    patchMerge(url, { spec: { cancel: true } })
      .catch((e: Error) => setCancelError(e.message))
      .finally(() => setCancelling(false));
  };

  const subtitle = (n: GraphNode) => {
    const s = n.status;
    if (!s?.startTime) return n.phase === "NotRun" ? "not run" : n.phase;
    return `${n.phase} · ${duration(s.startTime, s.completionTime, now)}`;
  };

  if (missing) {
    return (
      <div className="empty-page">
        <h1>{name}</h1>
        <p className="muted">No pipeline run “{name}” in namespace {namespace}.</p>
        <Link to="/pipelines">All runs</Link>
      </div>
    );
  }

  const outputs = st?.outputs;
  const outArtifacts = Object.entries(outputs?.artifacts ?? {});
  return (
    <div className="page run-page">
      <Crumbs namespace={namespace}>
        <Link to="/pipelines">Runs</Link>
      </Crumbs>
      <div className="page-head">
        <h1 data-testid="run-name">{name}</h1>
        {run && <StatusBadge phase={phase} />}
        {spec?.cancel && !terminal && <span className="muted small">cancelling…</span>}
        <div className="topbar-spacer" />
        {run && ir && (
          <button className="button" onClick={() => setAgain((v) => !v)} data-testid="run-again">
            Run again
          </button>
        )}
        {run && !terminal && (
          <button className="button danger" onClick={cancel} disabled={cancelling || spec?.cancel === true} data-testid="cancel-run">
            {cancelling ? "Cancelling…" : "Cancel run"}
          </button>
        )}
      </div>
      {error && !run && <div className="banner banner-error">{error}</div>}
      {cancelError && <div className="banner banner-error">Cancel failed: {cancelError}</div>}
      {irError && <div className="banner banner-error">Cannot show the graph: {irError}</div>}
      {loading && !run && <div className="loading">Loading…</div>}
      {again && run && ir && <RunAgainForm run={run} ir={ir} onClose={() => setAgain(false)} />}
      {run && st && (
        <>
          {st.message && phase !== "Succeeded" && (
            <RunMessage
              message={st.message}
              failedTask={failedTask}
              shown={selected?.path === failedTask}
              onShow={(path) => setQueryParam("task", path)}
            />
          )}
          <div className="run-summary panel">
            <dl className="facts inline-facts">
              <dt>Pipeline</dt>
              <dd>{pipelineOf(run) || "—"}</dd>
              <dt>Experiment</dt>
              <dd>{spec?.experiment || "—"}</dd>
              <dt>Started</dt>
              <dd>{timestamp(st.startTime)}</dd>
              <dt>Duration</dt>
              <dd>{duration(st.startTime, st.completionTime, now)}</dd>
              <dt>Caching</dt>
              <dd>{spec?.caching === false ? "off" : "on"}</dd>
            </dl>
            <div className="task-counts" data-testid="task-counts">
              {COUNT_ORDER.filter((k) => counts[k]).map((k) => (
                <span key={k} className={`count-chip phase-${k}`} data-count={k}>
                  {counts[k]} {k === "NotRun" ? "not run" : k.toLowerCase()}
                </span>
              ))}
            </div>
          </div>
          <div className={`split${selected ? " with-detail" : ""}`}>
            <section className="panel graph-panel">
              {graph ? (
                <DagGraph graph={graph} selected={selected?.path ?? null} subtitle={subtitle} onSelect={(n) => setQueryParam("task", n.path)} />
              ) : (
                <div className="empty-state">{irError ? "No graph." : "Loading the pipeline…"}</div>
              )}
              <div className="run-io">
                <div>
                  <h3>Arguments</h3>
                  <ParamTable params={effectiveArguments(ir, spec?.arguments)} testId="run-arguments" />
                </div>
                <div>
                  <h3>Pipeline outputs</h3>
                  <ParamTable params={outputs?.parameters} testId="run-outputs" />
                  {outArtifacts.length > 0 && (
                    <div className="artifact-previews" data-testid="run-artifacts">
                      {outArtifacts.flatMap(([slot, v]) =>
                        artifactList(v).map((a, i) => <ArtifactPreview key={`${slot}.${i}`} slot={slot} artifact={a} />),
                      )}
                    </div>
                  )}
                </div>
              </div>
              {ir && (
                <details className="ir-details">
                  <summary>Pipeline spec (IR)</summary>
                  <pre className="code" data-testid="run-ir">
                    {JSON.stringify(ir, null, 2)}
                  </pre>
                </details>
              )}
            </section>
            {selected && (
              <TaskPanel
                node={selected}
                namespace={namespace}
                runUrl={url}
                onClose={() => setQueryParam("task", null)}
                onSelect={(path) => setQueryParam("task", path)}
              />
            )}
          </div>
        </>
      )}
    </div>
  );
}

/**
 * The run's message. A step's failure is one line here (the step and its
 * exception); the step's panel shows the traceback. Any other message (the
 * run could not start, it was cancelled) is shown whole.
 */
function RunMessage({
  message,
  failedTask,
  shown,
  onShow,
}: {
  message: string;
  failedTask: string | null;
  shown: boolean;
  onShow: (path: string) => void;
}) {
  if (!failedTask) {
    return (
      <pre className="banner banner-error run-message" data-testid="run-message">
        {message}
      </pre>
    );
  }
  return (
    <div className="banner banner-error run-message one-line-banner" data-testid="run-message" title={message}>
      <span className="one-line">
        <strong>{failedTask}</strong> failed: {lastLine(message)}
      </span>
      {!shown && (
        <button type="button" className="link-button" onClick={() => onShow(failedTask)} data-testid="show-failure">
          Show the traceback
        </button>
      )}
    </div>
  );
}
