// Prometheus text from a service's /serving/{ns}/{name}/metrics, reduced to what
// the Serving page plots: request rate, latency quantiles over the last interval
// (from histogram bucket deltas, interpolated within a bucket as Prometheus's
// histogram_quantile does), in-flight requests, queue depth and errors.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const body = m[3] ?? "";
    const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    let lm: RegExpExecArray | null;
    while ((lm = re.exec(body)) !== null) labels[lm[1] ?? ""] = (lm[2] ?? "").replace(/\\(.)/g, "$1");
    const value = Number(m[4]);
    if (!Number.isNaN(value)) out.push({ name: m[1] ?? "", labels, value });
  }
  return out;
}

/** Cumulative counters and gauges of one scrape, summed over revisions. */
export interface Scrape {
  at: number;
  requests: number;
  errors: number;
  byRevision: Record<string, number>;
  buckets: [number, number][];
  latencySum: number;
  latencyCount: number;
  inFlight: number;
  queueDepth: number;
  replicasReady: number;
  rejected: number;
}

export function summarize(samples: Sample[], at: number): Scrape {
  const s: Scrape = {
    at,
    requests: 0,
    errors: 0,
    byRevision: {},
    buckets: [],
    latencySum: 0,
    latencyCount: 0,
    inFlight: 0,
    queueDepth: 0,
    replicasReady: 0,
    rejected: 0,
  };
  const buckets = new Map<number, number>();
  for (const x of samples) {
    switch (x.name) {
      case "ketch_serving_requests_total": {
        s.requests += x.value;
        if (!/^2/.test(x.labels.code ?? "2")) s.errors += x.value;
        const rev = x.labels.revision ?? "";
        s.byRevision[rev] = (s.byRevision[rev] ?? 0) + x.value;
        break;
      }
      case "ketch_serving_request_duration_seconds_bucket": {
        const le = x.labels.le === "+Inf" ? Infinity : Number(x.labels.le);
        buckets.set(le, (buckets.get(le) ?? 0) + x.value);
        break;
      }
      case "ketch_serving_request_duration_seconds_sum":
        s.latencySum += x.value;
        break;
      case "ketch_serving_request_duration_seconds_count":
        s.latencyCount += x.value;
        break;
      case "ketch_serving_in_flight":
        s.inFlight += x.value;
        break;
      case "ketch_serving_queue_depth":
        s.queueDepth += x.value;
        break;
      case "ketch_serving_replicas_ready":
        s.replicasReady += x.value;
        break;
      case "ketch_serving_rejected_total":
        s.rejected += x.value;
        break;
    }
  }
  s.buckets = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  return s;
}

/** The q-quantile (0..1) in seconds of a cumulative histogram, or null when empty. */
export function quantile(buckets: [number, number][], q: number): number | null {
  const total = buckets.length ? (buckets[buckets.length - 1] as [number, number])[1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket : le;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** One point of the live charts: what happened between two scrapes. */
export interface Point {
  at: number;
  rate: number;
  errorRate: number;
  p50: number | null;
  p99: number | null;
  mean: number | null;
  inFlight: number;
  queueDepth: number;
  revisionRates: Record<string, number>;
}

export function between(a: Scrape, b: Scrape): Point {
  const dt = Math.max(1e-3, (b.at - a.at) / 1000);
  // A counter that went down means the front restarted: count from zero.
  const d = (x: number, y: number) => (y >= x ? y - x : y);
  const before = new Map(a.buckets);
  const delta: [number, number][] = b.buckets.map(([le, c]) => [le, d(before.get(le) ?? 0, c)]);
  const count = d(a.latencyCount, b.latencyCount);
  const revisionRates: Record<string, number> = {};
  for (const [rev, c] of Object.entries(b.byRevision)) revisionRates[rev] = d(a.byRevision[rev] ?? 0, c) / dt;
  return {
    at: b.at,
    rate: d(a.requests, b.requests) / dt,
    errorRate: d(a.errors, b.errors) / dt,
    p50: quantile(delta, 0.5),
    p99: quantile(delta, 0.99),
    mean: count > 0 ? d(a.latencySum, b.latencySum) / count : null,
    inFlight: b.inFlight,
    queueDepth: b.queueDepth,
    revisionRates,
  };
}
