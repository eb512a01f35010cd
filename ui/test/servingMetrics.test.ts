import { describe, expect, it } from "vitest";
import { between, parsePrometheus, quantile, summarize } from "../src/serving/servingMetrics";

const scrape = (requests: number, errors: number, buckets: [string, number][], sum: number) =>
  [
    "# HELP ketch_serving_requests_total Requests.",
    "# TYPE ketch_serving_requests_total counter",
    `ketch_serving_requests_total{code="200",revision="r1"} ${requests - errors}`,
    `ketch_serving_requests_total{code="500",revision="r1"} ${errors}`,
    ...buckets.map(([le, c]) => `ketch_serving_request_duration_seconds_bucket{le="${le}"} ${c}`),
    `ketch_serving_request_duration_seconds_sum ${sum}`,
    `ketch_serving_request_duration_seconds_count ${buckets[buckets.length - 1]?.[1] ?? 0}`,
    "ketch_serving_in_flight 2",
    "ketch_serving_queue_depth 1",
  ].join("\n");

describe("parsePrometheus", () => {
  it("reads names, labels (escapes too) and values, skipping comments", () => {
    const samples = parsePrometheus('# c\nm_total{a="x\\"y",b="2"} 3.5\nbare 7\n\ngarbage line here\n');
    expect(samples).toEqual([
      { name: "m_total", labels: { a: 'x"y', b: "2" }, value: 3.5 },
      { name: "bare", labels: {}, value: 7 },
    ]);
  });
});

describe("summarize and between", () => {
  const a = summarize(parsePrometheus(scrape(100, 0, [["0.1", 50], ["1", 100], ["+Inf", 100]], 20)), 0);
  const b = summarize(
    parsePrometheus(scrape(300, 10, [["0.1", 100], ["1", 300], ["+Inf", 300]], 60)),
    2000,
  );
  it("sums counters and sorts buckets with +Inf last", () => {
    expect(b.requests).toBe(300);
    expect(b.errors).toBe(10);
    expect(b.byRevision).toEqual({ r1: 300 });
    expect(b.buckets.map(([le]) => le)).toEqual([0.1, 1, Infinity]);
    expect(b.inFlight).toBe(2);
  });
  it("gives rates and latency over the interval between two scrapes", () => {
    const p = between(a, b);
    expect(p.rate).toBe(100); // 200 requests in 2 s
    expect(p.errorRate).toBe(5);
    expect(p.mean).toBeCloseTo(0.2); // 40 s over 200 requests
    // 50 of the 200 new requests were under 0.1 s: the median lies in (0.1, 1].
    expect(p.p50).toBeCloseTo(0.1 + 0.9 * (50 / 150));
    expect(p.revisionRates).toEqual({ r1: 100 });
  });
  it("counts from zero after a counter reset (a restarted front)", () => {
    const restarted = summarize(parsePrometheus(scrape(20, 0, [["0.1", 20], ["+Inf", 20]], 1)), 4000);
    expect(between(b, restarted).rate).toBe(10);
  });
});

describe("quantile", () => {
  it("is null for an empty histogram and interpolates inside a bucket", () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([[1, 0], [Infinity, 0]], 0.5)).toBeNull();
    expect(quantile([[1, 10], [2, 20], [Infinity, 20]], 0.75)).toBeCloseTo(1.5);
  });
  it("answers the last finite bound when the rank falls in +Inf", () => {
    expect(quantile([[1, 1], [Infinity, 10]], 0.99)).toBe(1);
  });
});
