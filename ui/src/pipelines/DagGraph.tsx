// Draws a run graph (see dagModel.ts) as SVG: nodes coloured by live phase,
// cached nodes marked, skipped nodes dimmed, sub-DAGs as boxes that fold, and
// ParallelFor loops that open into their iterations.
import { type KeyboardEvent, useMemo, useState } from "react";
import {
  type Box,
  type Graph,
  type GraphNode,
  HEADER,
  type Layout,
  NODE_H,
  NODE_W,
  layoutGraph,
} from "./dagModel";

const TYPE_LABEL: Record<string, string> = {
  pipeline: "pipeline",
  condition: "condition",
  branches: "if / elif / else",
  exit: "exit handler",
  loop: "ParallelFor",
};

const PHASE_ICON: Record<string, string> = {
  Succeeded: "✓",
  Failed: "✕",
  Running: "●",
  Pending: "○",
  Skipped: "⤼",
  Cancelled: "⊘",
  NotRun: "–",
};

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A loop item as a short label: strings bare, other values as JSON. */
function itemText(item: unknown): string {
  return typeof item === "string" ? item : JSON.stringify(item);
}

function phaseClass(phase: string, cached: boolean): string {
  return `phase-${phase || "none"}${cached ? " is-cached" : ""}`;
}

function activate(e: KeyboardEvent, fn: () => void) {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    fn();
  }
}

interface Props {
  graph: Graph;
  selected: string | null;
  onSelect: (node: GraphNode) => void;
  /** Durations etc. shown under a task's name. */
  subtitle?: (node: GraphNode) => string;
}

export function DagGraph({ graph, selected, onSelect, subtitle }: Props) {
  // Loops closed by default (they may have hundreds of iterations), sub-DAGs open.
  const [expanded, setExpanded] = useState<Set<string>>(() => new Set());
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());
  const layout = useMemo(() => layoutGraph(graph, expanded, collapsed), [graph, expanded, collapsed]);

  const toggle = (node: GraphNode) => {
    const flip = (s: Set<string>) => {
      const next = new Set(s);
      if (next.has(node.path)) next.delete(node.path);
      else next.add(node.path);
      return next;
    };
    if (node.type === "loop") setExpanded(flip);
    else setCollapsed(flip);
  };

  const ctx: Ctx = { selected, onSelect, toggle, subtitle };
  const margin = 12;
  return (
    <div className="dag-scroll" data-testid="run-graph">
      <svg
        className="dag"
        width={layout.w + 2 * margin}
        height={layout.h + 2 * margin}
        viewBox={`${-margin} ${-margin} ${layout.w + 2 * margin} ${layout.h + 2 * margin}`}
        role="group"
        aria-label="Pipeline graph"
      >
        <defs>
          <marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" className="dag-arrowhead" />
          </marker>
        </defs>
        <LayoutView layout={layout} ctx={ctx} />
      </svg>
    </div>
  );
}

interface Ctx {
  selected: string | null;
  onSelect: (node: GraphNode) => void;
  toggle: (node: GraphNode) => void;
  subtitle: ((node: GraphNode) => string) | undefined;
}

function LayoutView({ layout, ctx }: { layout: Layout; ctx: Ctx }) {
  return (
    <g>
      {layout.edges.map((e) => (
        <path key={`${e.from}->${e.to}`} className="dag-edge" d={e.d} markerEnd="url(#dag-arrow)" data-edge={`${e.from}->${e.to}`} />
      ))}
      {layout.boxes.map((b) => (
        <g key={b.node.path} transform={`translate(${b.x},${b.y})`}>
          {b.expanded && (b.inner || b.iterations) ? <GroupView box={b} ctx={ctx} /> : <NodeView box={b} ctx={ctx} />}
        </g>
      ))}
    </g>
  );
}

function NodeView({ box, ctx }: { box: Box; ctx: Ctx }) {
  const n = box.node;
  const sel = ctx.selected === n.path;
  const group = n.type !== "task";
  const sub =
    n.type === "loop"
      ? `${n.loop?.count ?? "?"} iterations${n.loop?.parallelism ? ` · ${n.loop.parallelism} at a time` : ""}`
      : group
        ? TYPE_LABEL[n.type] ?? n.type
        : (ctx.subtitle?.(n) ?? n.phase);
  return (
    <g
      className={`dag-node ${phaseClass(n.phase, n.cached)}${sel ? " selected" : ""}${group ? " is-group" : ""}`}
      data-task={n.path}
      data-phase={n.phase}
      data-cached={n.cached ? "true" : "false"}
      data-type={n.type}
      role="button"
      tabIndex={0}
      aria-label={`${n.label}: ${n.phase || "not run"}${n.cached ? " (cached)" : ""}`}
      aria-pressed={sel}
      onClick={() => ctx.onSelect(n)}
      onKeyDown={(e) => activate(e, () => ctx.onSelect(n))}
    >
      <title>{`${n.label} (${n.name})${n.note ? `\n${n.note}` : ""}`}</title>
      {n.type === "loop" && <rect className="dag-stack" x={6} y={-6} width={NODE_W} height={NODE_H} rx={9} />}
      <rect className="dag-box" width={NODE_W} height={NODE_H} rx={9} />
      <rect className="dag-stripe" width={5} height={NODE_H} rx={2} />
      <text className="dag-icon" x={16} y={20}>
        {PHASE_ICON[n.phase] ?? "○"}
      </text>
      <text className="dag-label" x={32} y={20}>
        {clip(n.label, 21)}
      </text>
      <text className="dag-sub" x={32} y={37}>
        {clip(sub, 26)}
      </text>
      {n.cached && (
        <g className="dag-cached-mark">
          <rect x={NODE_W - 58} y={6} width={50} height={16} rx={8} />
          <text x={NODE_W - 33} y={17.5} textAnchor="middle">
            cached
          </text>
        </g>
      )}
      {group && (
        <g
          className="dag-toggle"
          data-toggle={n.path}
          onClick={(e) => {
            e.stopPropagation();
            ctx.toggle(n);
          }}
        >
          <title>{n.type === "loop" ? "Show iterations" : "Open"}</title>
          <rect x={NODE_W - 26} y={NODE_H - 24} width={18} height={18} rx={4} />
          <text x={NODE_W - 17} y={NODE_H - 10.5} textAnchor="middle">
            +
          </text>
        </g>
      )}
    </g>
  );
}

function GroupView({ box, ctx }: { box: Box; ctx: Ctx }) {
  const n = box.node;
  const sel = ctx.selected === n.path;
  const kind = TYPE_LABEL[n.type] ?? n.type;
  const head = n.type === "loop" ? `${kind} · ${n.loop?.count ?? "?"} iterations` : kind;
  // Characters that fit between the icon and the fold button (about 7px each).
  const room = Math.max(8, Math.floor((box.w - 64) / 7));
  return (
    <g
      className={`dag-group ${phaseClass(n.phase, n.cached)}${sel ? " selected" : ""}`}
      data-task={n.path}
      data-phase={n.phase}
      data-type={n.type}
      data-expanded="true"
    >
      <rect className="dag-group-box" width={box.w} height={box.h} rx={11} />
      <g
        className="dag-group-head"
        role="button"
        tabIndex={0}
        aria-label={`${n.label}: ${n.phase || "not run"}`}
        onClick={() => ctx.onSelect(n)}
        onKeyDown={(e) => activate(e, () => ctx.onSelect(n))}
      >
        <title>{`${n.label} (${n.name})${n.note ? `\n${n.note}` : ""}`}</title>
        <rect className="dag-group-hit" width={box.w} height={HEADER - 4} rx={11} />
        <text className="dag-icon" x={12} y={19}>
          {PHASE_ICON[n.phase] ?? "○"}
        </text>
        <text className="dag-group-label" x={28} y={19}>
          {clip(n.label, room)}
          {room - n.label.length >= head.length + 2 && (
            <tspan className="dag-group-kind" dx={8}>
              {head}
            </tspan>
          )}
        </text>
      </g>
      <g
        className="dag-toggle"
        data-toggle={n.path}
        onClick={() => ctx.toggle(n)}
      >
        <title>Fold</title>
        <rect x={box.w - 26} y={6} width={18} height={18} rx={4} />
        <text x={box.w - 17} y={19.5} textAnchor="middle">
          −
        </text>
      </g>
      {box.inner && (
        <g transform={`translate(${(box.w - box.inner.w) / 2},${HEADER})`}>
          <LayoutView layout={box.inner} ctx={ctx} />
        </g>
      )}
      {box.iterations?.map((it) => (
        <g
          key={it.index}
          transform={`translate(${it.x},${it.y})`}
          className={`dag-iteration phase-${it.phase || "none"}`}
          data-iteration={`${n.path}/${it.index}`}
          data-phase={it.phase}
        >
          <rect className="dag-iteration-box" width={it.w} height={it.h} rx={9} />
          <text className="dag-iteration-label" x={10} y={18}>
            {clip(`#${it.index}${it.item === undefined ? "" : ` · ${itemText(it.item)}`} · ${it.phase}`, Math.floor((it.w - 16) / 6.5))}
          </text>
          <g transform={`translate(${(it.w - it.inner.w) / 2},${HEADER - 4})`}>
            <LayoutView layout={it.inner} ctx={ctx} />
          </g>
        </g>
      ))}
      {box.hiddenIterations ? (
        <text className="dag-sub" x={14} y={box.h - 10}>
          and {box.hiddenIterations} more iterations (select the loop to list them)
        </text>
      ) : null}
    </g>
  );
}
