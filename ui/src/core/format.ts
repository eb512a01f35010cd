import type { Condition, Resource } from "./api";

function parse(ts: string | null | undefined): number | null {
  if (!ts) return null;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? null : t;
}

/** Compact duration like kubectl: 45s, 3m12s, 2h5m, 4d3h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
}

export function age(ts: string | null | undefined, now: number): string {
  const t = parse(ts);
  return t === null ? "—" : formatDuration(now - t);
}

export function duration(
  start: string | null | undefined,
  end: string | null | undefined,
  now: number,
): string {
  const s = parse(start);
  if (s === null) return "—";
  const e = parse(end) ?? now;
  return formatDuration(e - s);
}

export function timestamp(ts: string | null | undefined): string {
  const t = parse(ts);
  if (t === null) return "—";
  return new Date(t).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function created(r: Resource): number {
  return parse(r.metadata.creationTimestamp) ?? 0;
}

/** The most recently transitioned condition (last in list on ties). */
export function lastCondition(r: Resource): Condition | null {
  const conds = r.status?.conditions ?? [];
  let best: Condition | null = null;
  let bestT = -Infinity;
  for (const c of conds) {
    const t = parse(c.lastTransitionTime) ?? -1;
    if (t >= bestT) {
      best = c;
      bestT = t;
    }
  }
  return best;
}

export function phaseOf(r: Resource): string {
  return r.status?.phase || "Unknown";
}

export const ACTIVE_PHASES = new Set(["Running", "Pending", "Starting", "Creating"]);

/** ISO timestamp of a registry `*TimeSinceEpoch` (milliseconds, as a string). */
export function fromEpoch(ms: string | number | null | undefined): string | null {
  if (ms === null || ms === undefined || ms === "") return null;
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0) return null;
  return new Date(n).toISOString();
}
