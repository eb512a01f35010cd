// Live request rate and latency of one InferenceService, from polling its
// Prometheus endpoint (/serving/{ns}/{name}/metrics) every two seconds.
import { useEffect, useRef, useState } from "react";
import { ApiError, fetchLog } from "../core/api";
import { useChanged } from "../core/useChanged";
import { Sparkline } from "./Sparkline";
import { type Point, type Scrape, between, parsePrometheus, summarize } from "./servingMetrics";

const POLL_MS = 2000;
const KEEP = 60;

function ms(v: number | null | undefined): string {
  if (v === null || v === undefined) return "—";
  const x = v * 1000;
  return x < 10 ? `${x.toFixed(2)} ms` : `${x.toFixed(1)} ms`;
}

export interface ServingMetrics {
  url: string;
  points: Point[];
  latest: Scrape | null;
  error: string | null;
}

/** Poll a service's metrics; `points` are the last two minutes of intervals. */
export function useServingMetrics(namespace: string, name: string): ServingMetrics {
  const [points, setPoints] = useState<Point[]>([]);
  const [latest, setLatest] = useState<Scrape | null>(null);
  const [error, setError] = useState<string | null>(null);
  const prev = useRef<Scrape | null>(null);
  const url = `/serving/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/metrics`;

  if (useChanged(url)) setPoints([]);
  useEffect(() => {
    const controller = new AbortController();
    prev.current = null;
    const poll = async () => {
      try {
        const text = await fetchLog(url, controller.signal);
        const scrape = summarize(parsePrometheus(text), Date.now());
        if (prev.current) {
          const p = between(prev.current, scrape);
          setPoints((ps) => [...ps.slice(-(KEEP - 1)), p]);
        }
        prev.current = scrape;
        setLatest(scrape);
        setError(null);
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e instanceof ApiError && e.code === 404 ? "This service exposes no metrics yet." : (e as Error).message);
      }
    };
    void poll();
    const id = window.setInterval(() => void poll(), POLL_MS);
    return () => {
      controller.abort();
      window.clearInterval(id);
    };
  }, [url]);
  return { url, points, latest, error };
}

/** Share of requests each revision answered over the last `window` intervals (percent). */
export function observedSplit(points: Point[], window = 15): Record<string, number> {
  const totals: Record<string, number> = {};
  let all = 0;
  for (const p of points.slice(-window)) {
    for (const [rev, rate] of Object.entries(p.revisionRates)) {
      totals[rev] = (totals[rev] ?? 0) + rate;
      all += rate;
    }
  }
  const out: Record<string, number> = {};
  if (all > 0) for (const [rev, v] of Object.entries(totals)) out[rev] = (100 * v) / all;
  return out;
}

export function ServingMetricsPanel({ metrics }: { metrics: ServingMetrics }) {
  const { url, points, latest, error } = metrics;
  const last = points[points.length - 1];
  const cards: [string, string, string][] = [
    ["Requests/s", last ? last.rate.toFixed(last.rate < 10 ? 2 : 0) : "—", "rate"],
    ["p50 latency", ms(last?.p50), "p50"],
    ["p99 latency", ms(last?.p99), "p99"],
    ["In flight", last ? String(last.inFlight) : "—", "inflight"],
    ["Queue", last ? String(last.queueDepth) : "—", "queue"],
    ["Requests", latest ? String(latest.requests) : "—", "total"],
    ["Errors", latest ? String(latest.errors + latest.rejected) : "—", "errors"],
  ];
  return (
    <section className="panel serving-metrics" data-testid="serving-metrics">
      <div className="panel-head">
        <h2>Traffic</h2>
        <span className="muted small">every {POLL_MS / 1000}s from {url}</span>
      </div>
      {error && <p className="muted small inset-text">{error}</p>}
      <div className="metric-cards">
        {cards.map(([label, value, id]) => (
          <div key={id} className="metric-card" data-metric-card={id}>
            <div className="card-label">{label}</div>
            <div className="metric-value">{value}</div>
          </div>
        ))}
      </div>
      <div className="sparks">
        <figure>
          <Sparkline label="requests per second" values={points.map((p) => p.rate)} format={(v) => `${v.toFixed(1)}/s`} />
          <figcaption className="muted small">requests/s, last {Math.round((KEEP * POLL_MS) / 60000)} min</figcaption>
        </figure>
        <figure>
          <Sparkline label="p99 latency" values={points.map((p) => p.p99)} format={ms} />
          <figcaption className="muted small">p99 latency</figcaption>
        </figure>
        <figure>
          <Sparkline label="p50 latency" values={points.map((p) => p.p50)} format={ms} />
          <figcaption className="muted small">p50 latency</figcaption>
        </figure>
      </div>
    </section>
  );
}
