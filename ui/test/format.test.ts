import { describe, expect, it } from "vitest";
import type { Resource } from "../src/core/api";
import { age, duration, formatDuration, fromEpoch, lastCondition } from "../src/core/format";

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [45_000, "45s"],
    [60_000, "1m"],
    [192_000, "3m12s"],
    [7_500_000, "2h5m"],
    [7_200_000, "2h"],
    [(4 * 24 + 3) * 3_600_000, "4d3h"],
    [-5_000, "0s"],
  ])("%d ms is %s, as kubectl writes it", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe("age and duration", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  it("counts from a timestamp to now", () => {
    expect(age("2026-01-01T11:58:30Z", now)).toBe("1m30s");
  });
  it("shows a dash for a missing or unparsable time", () => {
    expect(age(undefined, now)).toBe("—");
    expect(age("not a time", now)).toBe("—");
    expect(duration(null, null, now)).toBe("—");
  });
  it("runs to now while there is no end", () => {
    expect(duration("2026-01-01T11:00:00Z", null, now)).toBe("1h");
    expect(duration("2026-01-01T11:00:00Z", "2026-01-01T11:00:09Z", now)).toBe("9s");
  });
});

describe("lastCondition", () => {
  const job = (conditions: { type: string; status: string; lastTransitionTime?: string }[]): Resource => ({
    apiVersion: "ketch.dev/v1",
    kind: "Job",
    metadata: { name: "a" },
    status: { conditions },
  });
  it("is the condition that changed last", () => {
    const r = job([
      { type: "Complete", status: "True", lastTransitionTime: "2026-01-01T12:00:05Z" },
      { type: "Started", status: "True", lastTransitionTime: "2026-01-01T12:00:00Z" },
    ]);
    expect(lastCondition(r)?.type).toBe("Complete");
  });
  it("is null without conditions", () => {
    expect(lastCondition(job([]))).toBeNull();
  });
});

describe("fromEpoch", () => {
  it("turns registry epoch milliseconds (strings) into ISO time", () => {
    expect(fromEpoch("1767268800000")).toBe("2026-01-01T12:00:00.000Z");
    expect(fromEpoch(null)).toBeNull();
  });
});
