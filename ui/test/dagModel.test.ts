import { describe, expect, it } from "vitest";
import { NODE_H, findNode, layoutGraph, phaseCounts, runGraph } from "../src/pipelines/dagModel";
import type { PipelineIR } from "../src/pipelines/pipelineTypes";

// A kfp-shaped IR: prep -> train (an output parameter) -> a loop over three
// items whose body is one task, and a condition group after train.
const ir: PipelineIR = {
  root: {
    dag: {
      tasks: {
        prep: { componentRef: { name: "comp-prep" }, taskInfo: { name: "prep" } },
        train: {
          componentRef: { name: "comp-train" },
          inputs: { parameters: { data: { taskOutputParameter: { producerTask: "prep", outputParameterKey: "o" } } } },
        },
        "for-loop-1": {
          componentRef: { name: "comp-for-loop-1" },
          dependentTasks: ["train"],
          parameterIterator: { itemInput: "item", items: { raw: "[1, 2, 3]" } },
          iteratorPolicy: { parallelismLimit: 2 },
        },
        "condition-1": {
          componentRef: { name: "comp-condition-1" },
          dependentTasks: ["train"],
          triggerPolicy: { condition: "inputs.parameter_values['x'] > 1" },
        },
      },
    },
  },
  components: {
    "comp-prep": { executorLabel: "exec-prep" },
    "comp-train": { executorLabel: "exec-train" },
    "comp-eval": { executorLabel: "exec-eval" },
    "comp-for-loop-1": { dag: { tasks: { score: { componentRef: { name: "comp-eval" } } } } },
    "comp-condition-1": { dag: { tasks: { deploy: { componentRef: { name: "comp-eval" } } } } },
  },
};

describe("runGraph", () => {
  it("draws the IR without a run: edges from inputs and dependencies, group types, no phases", () => {
    const g = runGraph(ir, undefined, null);
    expect(g.nodes.map((n) => [n.name, n.type])).toEqual([
      ["prep", "task"],
      ["train", "task"],
      ["for-loop-1", "loop"],
      ["condition-1", "condition"],
    ]);
    expect(g.edges).toEqual([
      { from: "prep", to: "train" },
      { from: "train", to: "for-loop-1" },
      { from: "train", to: "condition-1" },
    ]);
    const loop = findNode(g, "for-loop-1");
    expect(loop?.loop).toEqual({ count: 3, iterations: [], parallelism: 2 });
    // With no iterations yet the loop's body is shown once, as iteration 0.
    expect(loop?.children?.nodes[0]?.path).toBe("for-loop-1/0/score");
    expect(findNode(g, "condition-1")?.note).toBe("inputs.parameter_values['x'] > 1");
    expect(g.nodes.every((n) => n.phase === "")).toBe(true);
  });

  it("takes phases, cache hits and iterations from the run's status", () => {
    const g = runGraph(
      ir,
      {
        prep: { phase: "Succeeded", cached: true },
        train: { phase: "Succeeded", displayName: "Train model" },
        "for-loop-1": {
          phase: "Running",
          items: [1, 2, 3],
          iterations: [
            { index: 0, phase: "Succeeded", tasks: { score: { phase: "Succeeded" } } },
            { index: 1, phase: "Running", tasks: { score: { phase: "Running" } } },
          ],
        },
      },
      "Running",
    );
    expect(findNode(g, "train")?.label).toBe("Train model");
    expect(findNode(g, "for-loop-1/1/score")?.phase).toBe("Running");
    expect(findNode(g, "for-loop-1/1")).toBeNull();
    // Tasks without status in a running run are Pending; the condition's body too.
    expect(findNode(g, "condition-1/deploy")?.phase).toBe("Pending");
    expect(phaseCounts(g)).toEqual({ Cached: 1, Succeeded: 2, Running: 1, Pending: 1 });
  });

  it("marks what never ran once the run is over", () => {
    const g = runGraph(ir, { prep: { phase: "Failed" } }, "Failed");
    expect(findNode(g, "train")?.phase).toBe("NotRun");
  });
});

describe("layoutGraph", () => {
  it("puts each task below its producers and routes every edge downwards", () => {
    const g = runGraph(ir, undefined, null);
    const layout = layoutGraph(g, new Set(), new Set(["condition-1"]));
    const y = Object.fromEntries(layout.boxes.map((b) => [b.node.name, b.y]));
    expect(y.prep).toBe(0);
    expect(y.train).toBeGreaterThan(y.prep ?? 0);
    expect(y["for-loop-1"]).toBe(y["condition-1"]);
    expect(y["for-loop-1"]).toBeGreaterThan(y.train ?? 0);
    expect(layout.edges).toHaveLength(3);
    expect(layout.h).toBeGreaterThanOrEqual(3 * NODE_H);
    // The loop is closed unless expanded; the collapsed condition too.
    expect(layout.boxes.every((b) => !b.expanded)).toBe(true);
    const opened = layoutGraph(g, new Set(["for-loop-1"]), new Set());
    expect(opened.boxes.filter((b) => b.expanded).map((b) => b.node.name).sort()).toEqual(["condition-1", "for-loop-1"]);
  });
});
