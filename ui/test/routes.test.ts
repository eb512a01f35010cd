import { describe, expect, it } from "vitest";
import type { Resource } from "../src/core/api";
import { type Section, checkSections, matchRoute, objectPageOf, pathSegments } from "../src/core/routes";
import { SECTIONS } from "../src/sections";

const section = (id: string, path: string, extra: Partial<Section> = {}): Section => ({
  id,
  label: id,
  path,
  component: id === "home" ? null : id,
  icon: "",
  render: () => null,
  ...extra,
});

const table = [section("home", "/"), section("jobs", "/jobs"), section("models", "/models")];

describe("matchRoute", () => {
  it("finds the section by the first path segment and hands it the rest, decoded", () => {
    const m = matchRoute(table, "/jobs/my%20ns/train");
    expect(m?.section.id).toBe("jobs");
    expect(m?.segments).toEqual(["my ns", "train"]);
  });
  it("gives Home the root and nothing else", () => {
    expect(matchRoute(table, "/")?.section.id).toBe("home");
    expect(matchRoute(table, "/nope/a")).toBeNull();
  });
  it("keeps a malformed escape as written instead of throwing", () => {
    expect(pathSegments("/models/%E0%A4%A")).toEqual(["models", "%E0%A4%A"]);
  });
});

describe("objectPageOf", () => {
  const job: Resource = { apiVersion: "ketch.dev/v1", kind: "Job", metadata: { name: "a b", namespace: "ns" } };
  it("asks each section in turn; the real table opens Jobs, runs and services", () => {
    expect(objectPageOf(table, job)).toBeNull();
    expect(objectPageOf(SECTIONS, job)).toEqual({ path: "/jobs/ns/a%20b" });
    const run = { ...job, kind: "PipelineRun" };
    expect(objectPageOf(SECTIONS, run)?.path).toBe("/pipelines/runs/ns/a%20b");
    const isvc = { ...job, kind: "InferenceService" };
    expect(objectPageOf(SECTIONS, isvc)).toEqual({ path: "/serving", query: { service: "ns/a b" } });
    expect(objectPageOf(SECTIONS, { ...job, kind: "Experiment" })).toBeNull();
  });
});

describe("checkSections", () => {
  it("accepts the dashboard's table", () => {
    expect(checkSections(SECTIONS)).toEqual([]);
    expect(SECTIONS[0]?.id).toBe("home");
  });
  it("names duplicate ids, paths, components and bad paths", () => {
    const bad = [...table, section("jobs", "/jobs2", { component: "jobs2" }), section("x", "/models", { component: "jobs" }), section("y", "/a/b")];
    expect(checkSections(bad)).toEqual([
      'duplicate section id "jobs"',
      'duplicate section path "/models"',
      'duplicate component "jobs"',
      'section y: path "/a/b" is not "/" or "/name"',
    ]);
  });
});
