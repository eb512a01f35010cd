import { describe, expect, it } from "vitest";
import type { Resource } from "../src/core/api";
import { stateOf } from "../src/core/resourceState";

const res = (kind: string, extra: Partial<Resource> = {}, name = "x", namespace = "default"): Resource => ({
  apiVersion: "v1",
  kind,
  metadata: { name, namespace },
  ...extra,
});

describe("stateOf", () => {
  it("shows the phase where a kind has one", () => {
    expect(stateOf(res("Job", { status: { phase: "Running" } }))).toEqual({ phase: "Running" });
  });
  it("reads an InferenceService's Ready condition, as kubectl does", () => {
    const ready = res("InferenceService", { status: { conditions: [{ type: "Ready", status: "True" }] } });
    const notReady = res("InferenceService", { status: { conditions: [{ type: "Ready", status: "False" }] } });
    expect(stateOf(ready)).toEqual({ phase: "Ready" });
    expect(stateOf(notReady)).toEqual({ phase: "NotReady" });
    expect(stateOf(res("InferenceService"))).toEqual({ phase: "Pending" });
  });
  it("counts a Pipeline's versions", () => {
    expect(stateOf(res("Pipeline", { status: { versions: 1 } }))).toEqual({ text: "1 version" });
    expect(stateOf(res("Pipeline", { status: { versions: 3 } }))).toEqual({ text: "3 versions" });
  });
  it("counts an Experiment's runs in its own namespace only", () => {
    const exp = res("Experiment", { spec: { archived: true } }, "e1");
    const runs = [
      res("PipelineRun", { spec: { experiment: "e1" } }, "r1"),
      res("PipelineRun", { spec: { experiment: "e1" } }, "r2"),
      res("PipelineRun", { spec: { experiment: "e1" } }, "r3", "other"),
      res("PipelineRun", { spec: { experiment: "e2" } }, "r4"),
    ];
    expect(stateOf(exp, runs)).toEqual({ text: "2 runs · archived" });
  });
  it("shows a Katib Experiment's newest holding condition, not a KFP experiment's runs", () => {
    const katib = (conditions: { type: string; status: string }[]): Resource =>
      res("Experiment", { apiVersion: "kubeflow.org/v1beta1", status: { conditions } }, "e1");
    const done = [
      { type: "Created", status: "True" },
      { type: "Running", status: "False" },
      { type: "Succeeded", status: "True" },
    ];
    expect(stateOf(katib(done), [res("PipelineRun", { spec: { experiment: "e1" } })])).toEqual({
      phase: "Succeeded",
    });
    expect(stateOf(katib([]))).toEqual({ phase: "Pending" });
  });
  it("shows a RecurringRun's mode, and a dash for kinds without state", () => {
    expect(stateOf(res("RecurringRun", { spec: { mode: "Disable" } }))).toEqual({ phase: "Disabled" });
    expect(stateOf(res("RecurringRun", { spec: {} }))).toEqual({ phase: "Enabled" });
    expect(stateOf(res("Widget"))).toEqual({ text: "—" });
  });
});
