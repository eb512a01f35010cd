// The run graph as the dashboard draws it: built from the IR (nodes and edges of
// each DAG) and the run's status (phase, cached, loop iterations), then laid out
// in layers (longest path from the sources, barycentre ordering), recursively for
// expanded sub-DAGs and loops. Pure functions: no React here.
import type { IRTask, PipelineIR, TaskStatus } from "./pipelineTypes";

export type NodeType = "task" | "pipeline" | "condition" | "branches" | "exit" | "loop";

export interface LoopView {
  count: number | null;
  parallelism?: number;
  iterations: { index: number; phase: string; item: unknown; graph: Graph }[];
}

export interface GraphNode {
  /** The IR task name, unique within its DAG. */
  name: string;
  /** Log/task path: `train`, `condition-1/train`, `for-loop-1/0/train`. */
  path: string;
  label: string;
  type: NodeType;
  phase: string;
  cached: boolean;
  status: TaskStatus | undefined;
  /** A triggerPolicy condition, or "exit handler" for an exit task. */
  note?: string;
  children?: Graph;
  loop?: LoopView;
}

export interface Graph {
  nodes: GraphNode[];
  edges: { from: string; to: string }[];
}

function producersOf(task: IRTask): string[] {
  const out = new Set<string>(task.dependentTasks ?? []);
  for (const group of [task.inputs?.parameters, task.inputs?.artifacts]) {
    for (const input of Object.values(group ?? {})) {
      const p =
        input.taskOutputParameter?.producerTask ??
        input.taskOutputArtifact?.producerTask ??
        input.taskFinalStatus?.producerTask;
      if (p) out.add(p);
    }
  }
  return [...out];
}

function groupType(name: string, task: IRTask): NodeType {
  if (task.parameterIterator || task.artifactIterator) return "loop";
  if (name.startsWith("condition-branches-")) return "branches";
  if (name.startsWith("condition-")) return "condition";
  if (name.startsWith("exit-handler-")) return "exit";
  return "pipeline";
}

function staticItemCount(task: IRTask): number | null {
  const raw = task.parameterIterator?.items?.raw;
  if (!raw) return null;
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.length : null;
  } catch {
    return null;
  }
}

/** Phase to show for a task with no status entry yet. */
function defaultPhase(runPhase: string | null): string {
  if (runPhase === null) return "";
  if (runPhase === "Failed" || runPhase === "Cancelled" || runPhase === "Succeeded") return "NotRun";
  return "Pending";
}

/**
 * The graph of one DAG: `tasks` are the DAG's IR tasks, `status` the status
 * entries of the same level, `prefix` the path of the enclosing group.
 * `runPhase` is null for a pipeline that has no run (the IR view).
 */
export function buildGraph(
  ir: PipelineIR,
  tasks: Record<string, IRTask> | undefined,
  status: Record<string, TaskStatus> | undefined,
  prefix: string,
  runPhase: string | null,
): Graph {
  const nodes: GraphNode[] = [];
  const edges: { from: string; to: string }[] = [];
  const names = Object.keys(tasks ?? {});
  const known = new Set(names);
  for (const name of names) {
    const task = (tasks ?? {})[name] as IRTask;
    const st = status?.[name];
    const path = prefix ? `${prefix}/${name}` : name;
    const comp = ir.components?.[task.componentRef?.name ?? ""];
    const inner = comp?.dag?.tasks;
    const type: NodeType = inner ? groupType(name, task) : "task";
    const label = st?.displayName || task.taskInfo?.name || name;
    const node: GraphNode = {
      name,
      path,
      label,
      type,
      phase: st?.phase || defaultPhase(runPhase),
      cached: Boolean(st?.cached),
      status: st,
    };
    if (task.triggerPolicy?.condition) node.note = task.triggerPolicy.condition;
    else if (task.triggerPolicy?.strategy === "ALL_UPSTREAM_TASKS_COMPLETED") node.note = "exit handler";
    if (type === "loop") {
      const iterations = (st?.iterations ?? []).map((it) => ({
        index: it.index,
        phase: it.phase || defaultPhase(runPhase),
        item: st?.items?.[it.index],
        graph: buildGraph(ir, inner, it.tasks, `${path}/${it.index}`, runPhase),
      }));
      node.loop = {
        count: st?.items?.length ?? (iterations.length || staticItemCount(task)),
        iterations,
      };
      const limit = task.iteratorPolicy?.parallelismLimit;
      if (limit) node.loop.parallelism = limit;
      // Without iterations yet, show the body once so the loop's shape is visible.
      if (iterations.length === 0) node.children = buildGraph(ir, inner, undefined, `${path}/0`, runPhase);
    } else if (inner) {
      node.children = buildGraph(ir, inner, st?.tasks, path, runPhase);
    }
    nodes.push(node);
    for (const p of producersOf(task)) if (known.has(p)) edges.push({ from: p, to: name });
  }
  return { nodes, edges };
}

/** The whole run graph: the root DAG of `ir` with `tasks` status. */
export function runGraph(ir: PipelineIR, tasks: Record<string, TaskStatus> | undefined, runPhase: string | null): Graph {
  return buildGraph(ir, ir.root?.dag?.tasks, tasks, "", runPhase);
}

/** Find a node by its path anywhere in the graph (iterations included). */
export function findNode(graph: Graph, path: string): GraphNode | null {
  for (const n of graph.nodes) {
    if (n.path === path) return n;
    if (path.startsWith(`${n.path}/`)) {
      if (n.children) {
        const hit = findNode(n.children, path);
        if (hit) return hit;
      }
      for (const it of n.loop?.iterations ?? []) {
        const hit = findNode(it.graph, path);
        if (hit) return hit;
      }
    }
  }
  return null;
}

/** Counts of leaf tasks by phase (a cached task counts as "Cached"). */
export function phaseCounts(graph: Graph, into: Record<string, number> = {}): Record<string, number> {
  for (const n of graph.nodes) {
    if (n.type === "task") {
      const k = n.cached ? "Cached" : n.phase || "Pending";
      into[k] = (into[k] ?? 0) + 1;
    }
    if (n.children && !n.loop?.iterations.length) phaseCounts(n.children, into);
    for (const it of n.loop?.iterations ?? []) phaseCounts(it.graph, into);
  }
  return into;
}

// ---- layout ---------------------------------------------------------------

export const NODE_W = 196;
export const NODE_H = 48;
const GAP_X = 26;
const GAP_Y = 46;
const PAD = 14;
export const HEADER = 30;
/** Iterations drawn when a loop is expanded; the rest are listed as a count. */
export const MAX_ITERATIONS_SHOWN = 12;
const ITER_COLUMNS = 4;

export interface IterationBox {
  index: number;
  phase: string;
  item: unknown;
  x: number;
  y: number;
  w: number;
  h: number;
  inner: Layout;
}

export interface Box {
  node: GraphNode;
  x: number;
  y: number;
  w: number;
  h: number;
  expanded: boolean;
  inner?: Layout;
  iterations?: IterationBox[];
  hiddenIterations?: number;
}

export interface EdgeLine {
  from: string;
  to: string;
  d: string;
}

export interface Layout {
  w: number;
  h: number;
  boxes: Box[];
  edges: EdgeLine[];
}

function isGroup(n: GraphNode): boolean {
  return n.type !== "task";
}

function sizeBox(node: GraphNode, expanded: Set<string>, collapsed: Set<string>): Box {
  // Sub-DAGs are open unless the user closed them; loops are closed unless opened.
  const open =
    isGroup(node) && (node.type === "loop" ? expanded.has(node.path) : !collapsed.has(node.path));
  const box: Box = { node, x: 0, y: 0, w: NODE_W, h: NODE_H, expanded: open };
  if (!open) return box;
  if (node.type === "loop" && node.loop && node.loop.iterations.length > 0) {
    const shown = node.loop.iterations.slice(0, MAX_ITERATIONS_SHOWN);
    const iters: IterationBox[] = shown.map((it) => {
      const inner = layoutGraph(it.graph, expanded, collapsed);
      return { index: it.index, phase: it.phase, item: it.item, x: 0, y: 0, w: inner.w + 2 * PAD, h: inner.h + HEADER + PAD, inner };
    });
    let y = HEADER;
    let maxW = 0;
    for (let row = 0; row * ITER_COLUMNS < iters.length; row++) {
      const line = iters.slice(row * ITER_COLUMNS, (row + 1) * ITER_COLUMNS);
      let x = PAD;
      let rowH = 0;
      for (const it of line) {
        it.x = x;
        it.y = y;
        x += it.w + GAP_X / 2;
        rowH = Math.max(rowH, it.h);
      }
      maxW = Math.max(maxW, x - GAP_X / 2 + PAD);
      y += rowH + GAP_X / 2;
    }
    box.iterations = iters;
    box.hiddenIterations = node.loop.iterations.length - shown.length;
    box.w = Math.max(NODE_W + 2 * PAD, maxW);
    box.h = y + (box.hiddenIterations > 0 ? 18 : 0) + PAD / 2;
    return box;
  }
  if (node.children && node.children.nodes.length > 0) {
    const inner = layoutGraph(node.children, expanded, collapsed);
    box.inner = inner;
    box.w = Math.max(NODE_W, inner.w + 2 * PAD);
    box.h = inner.h + HEADER + PAD;
  }
  return box;
}

/** Layer of each node: the longest path from a source (edges point down). */
function layers(graph: Graph): Map<string, number> {
  const preds = new Map<string, string[]>();
  for (const n of graph.nodes) preds.set(n.name, []);
  for (const e of graph.edges) preds.get(e.to)?.push(e.from);
  const layer = new Map<string, number>();
  const visiting = new Set<string>();
  const visit = (name: string): number => {
    const known = layer.get(name);
    if (known !== undefined) return known;
    if (visiting.has(name)) return 0; // a cycle cannot compile; never loop on one
    visiting.add(name);
    let l = 0;
    for (const p of preds.get(name) ?? []) l = Math.max(l, visit(p) + 1);
    visiting.delete(name);
    layer.set(name, l);
    return l;
  };
  for (const n of graph.nodes) visit(n.name);
  return layer;
}

/** Lay out `graph` top to bottom; coordinates are relative to its top-left corner. */
export function layoutGraph(graph: Graph, expanded: Set<string>, collapsed: Set<string>): Layout {
  const layerOf = layers(graph);
  const rows: Box[][] = [];
  for (const n of graph.nodes) {
    const l = layerOf.get(n.name) ?? 0;
    (rows[l] ??= []).push(sizeBox(n, expanded, collapsed));
  }
  const filled = rows.filter((r): r is Box[] => Array.isArray(r));
  const preds = new Map<string, string[]>();
  const succs = new Map<string, string[]>();
  for (const e of graph.edges) {
    (preds.get(e.to) ?? preds.set(e.to, []).get(e.to))?.push(e.from);
    (succs.get(e.from) ?? succs.set(e.from, []).get(e.from))?.push(e.to);
  }
  // Barycentre ordering: a few sweeps down and up reduce crossings.
  const order = new Map<string, number>();
  const renumber = () => filled.forEach((row) => row.forEach((b, i) => order.set(b.node.name, i)));
  renumber();
  const sweep = (row: Box[], links: Map<string, string[]>) => {
    const key = (b: Box) => {
      const ns = (links.get(b.node.name) ?? []).map((n) => order.get(n)).filter((v): v is number => v !== undefined);
      return ns.length ? ns.reduce((a, v) => a + v, 0) / ns.length : (order.get(b.node.name) ?? 0);
    };
    row.sort((a, b) => key(a) - key(b));
  };
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 1; i < filled.length; i++) {
      sweep(filled[i] as Box[], preds);
      renumber();
    }
    for (let i = filled.length - 2; i >= 0; i--) {
      sweep(filled[i] as Box[], succs);
      renumber();
    }
  }
  const rowWidth = (row: Box[]) => row.reduce((a, b) => a + b.w, 0) + GAP_X * (row.length - 1);
  const width = Math.max(NODE_W, ...filled.map(rowWidth));
  let y = 0;
  const byName = new Map<string, Box>();
  for (const row of filled) {
    let x = (width - rowWidth(row)) / 2;
    const rowH = Math.max(...row.map((b) => b.h));
    for (const b of row) {
      b.x = x;
      b.y = y;
      x += b.w + GAP_X;
      byName.set(b.node.name, b);
    }
    y += rowH + GAP_Y;
  }
  const height = Math.max(NODE_H, y - GAP_Y);
  const edges: EdgeLine[] = [];
  for (const e of graph.edges) {
    const a = byName.get(e.from);
    const b = byName.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + a.w / 2;
    const y1 = a.y + a.h;
    const x2 = b.x + b.w / 2;
    const y2 = b.y;
    const dy = Math.max(16, (y2 - y1) / 2);
    edges.push({ from: e.from, to: e.to, d: `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2 - 2}` });
  }
  return { w: width, h: height, boxes: filled.flat(), edges };
}
