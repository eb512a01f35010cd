// What a mixed list (Home, a component's kinds) shows in its state column for
// any kind. Not every kind has status.phase: an InferenceService reports
// conditions, as KServe's does (kubectl shows its Ready condition), and
// Pipelines, Experiments and RecurringRuns have no state of their own. Each
// gets something true instead of "Unknown".
import type { Resource } from "./api";

export interface ResourceState {
  /** A phase-like state drawn as a badge (Running, Failed, Ready, NotReady…). */
  phase?: string;
  /** Plain text for kinds with no state ("2 versions", "3 runs", "—"). */
  text?: string;
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? "" : "s"}`;
}

/** `all` is the rest of the list: an Experiment counts its runs among it. */
export function stateOf(r: Resource, all: readonly Resource[] = []): ResourceState {
  const st = r.status ?? {};
  if (st.phase) return { phase: st.phase };
  const conditions = st.conditions ?? [];
  const ready = conditions.find((c) => c.type === "Ready");
  if (ready) return { phase: ready.status === "True" ? "Ready" : "NotReady" };
  if (r.apiVersion?.startsWith("kubeflow.org/")) {
    // Katib's kinds: the state is the newest condition that holds (Created, Running,
    // Succeeded, Failed, EarlyStopped ...), as Katib appends them.
    const holds = [...conditions].reverse().find((c) => c.status === "True");
    return { phase: holds?.type ?? "Pending" };
  }
  switch (r.kind) {
    case "InferenceService":
      // Created, not yet reconciled: no conditions written so far.
      return { phase: "Pending" };
    case "Pipeline": {
      const versions = Number(st.versions ?? 0);
      return { text: plural(Number.isFinite(versions) ? versions : 0, "version") };
    }
    case "Experiment": {
      const ns = r.metadata.namespace;
      const runs = all.filter(
        (x) =>
          x.kind === "PipelineRun" &&
          x.metadata.namespace === ns &&
          (x.spec as { experiment?: string | null } | undefined)?.experiment === r.metadata.name,
      ).length;
      const archived = (r.spec as { archived?: boolean } | undefined)?.archived === true;
      return { text: `${plural(runs, "run")}${archived ? " · archived" : ""}` };
    }
    case "RecurringRun":
      // The schedule's mode, as the Recurring runs page shows it (KFP's Enable/Disable).
      return { phase: (r.spec as { mode?: string } | undefined)?.mode === "Disable" ? "Disabled" : "Enabled" };
    default:
      return { text: "—" };
  }
}
