// The side panel of the run page for the selected task: what it got and made,
// attempts and timings, where a cached result came from, why it failed, its log.
import { type ReactNode, useState } from "react";
import { LogViewer } from "../core/LogViewer";
import { ArtifactPreview } from "./ArtifactPreview";
import type { GraphNode } from "./dagModel";
import { formatNumber } from "./MetricsViews";
import { type IOValues, artifactList, runPath } from "./pipelineTypes";
import { PageLink as Link } from "./PipelineTabs";
import { Facts } from "../core/Widgets";
import { StatusBadge } from "../core/StatusBadge";
import { duration, timestamp } from "../core/format";
import { type Failure, parseFailure } from "../core/messages";
import { useNow } from "../core/useNow";

function value(v: unknown): ReactNode {
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatNumber(v);
  return <span className="mono">{JSON.stringify(v)}</span>;
}

export function ParamTable({ params, testId }: { params: Record<string, unknown> | undefined; testId?: string }) {
  const rows = Object.entries(params ?? {});
  if (rows.length === 0) return <p className="muted small">None.</p>;
  return (
    <div className="table-scroll bordered">
      <table className="table compact" data-testid={testId}>
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k} data-param={k}>
              <td className="param-name">{k.replace(/^pipelinechannel--/, "")}</td>
              <td className="wrap">{value(v)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function InputArtifacts({ io }: { io: IOValues | undefined }) {
  const entries = Object.entries(io?.artifacts ?? {});
  if (entries.length === 0) return null;
  return (
    <div className="table-scroll bordered">
      <table className="table compact">
        <tbody>
          {entries.flatMap(([slot, v]) =>
            artifactList(v).map((a, i) => (
              <tr key={`${slot}.${i}`}>
                <td className="param-name">{slot}</td>
                <td className="mono wrap">{a.uri ?? "—"}</td>
              </tr>
            )),
          )}
        </tbody>
      </table>
    </div>
  );
}

export function TaskPanel({
  node,
  namespace,
  runUrl,
  onClose,
  onSelect,
}: {
  node: GraphNode;
  namespace: string;
  runUrl: string;
  onClose: () => void;
  /** Select another task by path (a loop lists every iteration's tasks). */
  onSelect: (path: string) => void;
}) {
  const now = useNow(1000);
  const st = node.status;
  const isTask = node.type === "task";
  const failed = node.phase === "Failed";
  const from = st?.cachedFrom;
  // The engine records the original run as "namespace/name".
  const [fromNs, fromName] = from?.run?.includes("/")
    ? (from.run.split("/", 2) as [string, string])
    : [from?.namespace ?? namespace, from?.run ?? ""];
  const outArtifacts = Object.entries(st?.outputs?.artifacts ?? {});
  const logUrl = `${runUrl}/log?task=${encodeURIComponent(node.path)}`;
  const failure = failed && st?.message ? parseFailure(st.message) : null;

  return (
    <aside className="panel detail task-panel" data-testid="task-panel" data-task={node.path} aria-label={`Task ${node.label}`}>
      <div className="panel-head">
        <h2>
          {node.label} {node.phase && <StatusBadge phase={node.phase} />}
          {node.cached && <span className="chip cached-chip">cached</span>}
        </h2>
        <button className="icon-button" title="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <Facts
        rows={[
          ["Task", <span className="mono">{node.path}</span>],
          ["Kind", node.type === "task" ? "step" : node.type],
          ...(node.note ? ([["Trigger", <span className="mono wrap">{node.note}</span>]] as [string, ReactNode][]) : []),
          ["Attempts", st?.attempts ?? ""],
          ["Started", st?.startTime ? timestamp(st.startTime) : ""],
          ["Completed", st?.completionTime ? timestamp(st.completionTime) : ""],
          ["Duration", st?.startTime ? duration(st.startTime, st.completionTime, now) : ""],
          ["Execution", st?.executionId !== undefined ? `#${st.executionId}` : ""],
          [
            "Cached from",
            from?.run ? (
              <Link to={runPath(fromNs, fromName)} query={from.task ? { task: from.task } : {}} testId="cached-from">
                {fromName}
                {from.task ? ` / ${from.task}` : ""}
              </Link>
            ) : from?.executionId !== undefined ? (
              `execution #${from.executionId}`
            ) : (
              ""
            ),
          ],
          ["Reason", st?.reason ?? ""],
        ]}
      />
      {st?.message &&
        (failure ? (
          <FailureView key={node.path} failure={failure} message={st.message} />
        ) : (
          <>
            <h3>Message</h3>
            <pre className="code task-message" data-testid="task-message">
              {st.message}
            </pre>
          </>
        ))}
      {node.loop && (
        <>
          <h3>Iterations</h3>
          {node.loop.iterations.length === 0 ? (
            <p className="muted small">Not started{node.loop.count !== null ? ` (${node.loop.count} items)` : ""}.</p>
          ) : (
            <div className="table-scroll bordered iterations">
              <table className="table compact" data-testid="loop-iterations">
                <thead>
                  <tr>
                    <th>#</th>
                    <th>Item</th>
                    <th>Phase</th>
                    <th>Tasks</th>
                  </tr>
                </thead>
                <tbody>
                  {node.loop.iterations.map((it) => (
                    <tr key={it.index} data-iteration={it.index}>
                      <td className="num">{it.index}</td>
                      <td className="mono wrap">{st?.items ? JSON.stringify(st.items[it.index]) : ""}</td>
                      <td>
                        <StatusBadge phase={it.phase} />
                      </td>
                      <td>
                        <span className="chips">
                          {it.graph.nodes.map((n) => (
                            <button key={n.path} className="chip" onClick={() => onSelect(n.path)} data-select={n.path}>
                              {n.label}
                            </button>
                          ))}
                        </span>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
      {isTask && (
        <>
          <h3>Inputs</h3>
          <ParamTable params={st?.inputs?.parameters} testId="task-inputs" />
          <InputArtifacts io={st?.inputs} />
        </>
      )}
      <h3>Outputs</h3>
      <ParamTable params={st?.outputs?.parameters} testId="task-outputs" />
      {outArtifacts.length > 0 && (
        <div className="artifact-previews" data-testid="task-artifacts">
          {outArtifacts.flatMap(([slot, v]) =>
            artifactList(v).map((a, i) => <ArtifactPreview key={`${slot}.${i}`} slot={slot} artifact={a} />),
          )}
        </div>
      )}
      {isTask && !node.cached && !["Skipped", "NotRun", "Pending", ""].includes(node.phase) && (
        <>
          <h3>Log</h3>
          <div data-testid="task-log">
            <LogViewer
              key={node.path}
              url={logUrl}
              follow={node.phase === "Running"}
              fold={failure?.traceback ? { text: failure.traceback.raw, label: "the traceback, shown under Failure" } : undefined}
            />
          </div>
        </>
      )}
    </aside>
  );
}

/**
 * A failed step's message: its headline, then the traceback from the user's
 * first frame (the worker and executor frames every step starts in are
 * hidden behind a toggle); a message without a traceback is shown whole.
 */
function FailureView({ failure, message }: { failure: Failure; message: string }) {
  const [all, setAll] = useState(false);
  const tb = failure.traceback;
  return (
    <>
      <h3>Failure</h3>
      {tb ? (
        <>
          <p className="failure-headline small" data-testid="failure-headline">
            {failure.headline}
            {tb.hidden > 0 && (
              <button type="button" className="link-button muted" onClick={() => setAll((v) => !v)} data-testid="toggle-ketch-frames">
                {all ? "hide ketch's frames" : `show ${tb.hidden} frame${tb.hidden === 1 ? "" : "s"} inside ketch`}
              </button>
            )}
          </p>
          <pre className="code task-message failure" data-testid="task-message">
            {all ? tb.raw : tb.text}
          </pre>
        </>
      ) : (
        <pre className="code task-message failure" data-testid="task-message">
          {message}
        </pre>
      )}
    </>
  );
}
