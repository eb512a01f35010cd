// Shapes of the PipelineRun status contract and the parts of KFP's IR the
// dashboard reads (see src/ketch/pipelines/_engine.py for the status contract).
import type { Condition, KindInfo, Resource } from "../core/api";
import type { components } from "../core/openapi";

export interface IOValues {
  parameters?: Record<string, unknown>;
  artifacts?: Record<string, RunArtifact | RunArtifact[]>;
}

/** An artifact as a run's status records it. */
export interface RunArtifact {
  name?: string;
  uri?: string;
  type?: string;
  metadata?: Record<string, unknown>;
  id?: number;
}

export interface CachedFrom {
  run?: string;
  task?: string;
  executionId?: number;
  namespace?: string;
}

export interface LoopIteration {
  index: number;
  phase?: string;
  tasks?: Record<string, TaskStatus>;
}

export interface TaskStatus {
  phase?: string;
  displayName?: string;
  attempts?: number;
  startTime?: string | null;
  completionTime?: string | null;
  cached?: boolean;
  cachedFrom?: CachedFrom | null;
  inputs?: IOValues;
  outputs?: IOValues;
  message?: string | null;
  executionId?: number;
  reason?: string;
  conditions?: Condition[];
  tasks?: Record<string, TaskStatus>;
  iterations?: LoopIteration[];
  items?: unknown[];
}

export interface IRInput {
  componentInputParameter?: string;
  componentInputArtifact?: string;
  taskOutputParameter?: { producerTask?: string; outputParameterKey?: string };
  taskOutputArtifact?: { producerTask?: string; outputArtifactKey?: string };
  taskFinalStatus?: { producerTask?: string };
  runtimeValue?: { constant?: unknown };
}

export interface IRTask {
  componentRef?: { name?: string };
  taskInfo?: { name?: string };
  dependentTasks?: string[];
  inputs?: { parameters?: Record<string, IRInput>; artifacts?: Record<string, IRInput> };
  triggerPolicy?: { condition?: string; strategy?: string };
  parameterIterator?: { itemInput?: string; items?: { raw?: string; inputParameter?: string } };
  artifactIterator?: { itemInput?: string; items?: { inputArtifact?: string } };
  iteratorPolicy?: { parallelismLimit?: number };
  cachingOptions?: { enableCache?: boolean };
  retryPolicy?: { maxRetryCount?: number };
}

export interface IRDag {
  tasks?: Record<string, IRTask>;
  outputs?: unknown;
}

export interface IRDefinition {
  parameterType?: string;
  defaultValue?: unknown;
  isOptional?: boolean;
  description?: string;
  artifactType?: { schemaTitle?: string };
}

export interface IRComponent {
  dag?: IRDag;
  executorLabel?: string;
  inputDefinitions?: {
    parameters?: Record<string, IRDefinition>;
    artifacts?: Record<string, IRDefinition>;
  };
  outputDefinitions?: {
    parameters?: Record<string, IRDefinition>;
    artifacts?: Record<string, IRDefinition>;
  };
}

export interface PipelineIR {
  pipelineInfo?: { name?: string; description?: string; displayName?: string };
  root?: IRComponent;
  components?: Record<string, IRComponent>;
  deploymentSpec?: {
    executors?: Record<
      string,
      { container?: { image?: string; command?: string[]; args?: string[] } }
    >;
  };
  schemaVersion?: string;
  sdkVersion?: string;
}

/** A PipelineRun's spec as the server declares it, its IR typed as far as the dashboard reads it. */
export type RunSpec = Omit<components["schemas"]["PipelineRunSpec"], "pipelineSpec"> & {
  pipelineSpec?: PipelineIR | null;
};

export interface RunStatus {
  phase?: string;
  startTime?: string | null;
  completionTime?: string | null;
  message?: string | null;
  pipelineName?: string | null;
  outputs?: IOValues;
  tasks?: Record<string, TaskStatus>;
  conditions?: Condition[];
}

export const PIPELINES_GROUP = "pipelines.ketch.dev";

/** KindInfo for one of the pipelines kinds (served at pipelines.ketch.dev/v1). */
export function pipelinesKind(kind: string, plural: string, hasLogs = false): KindInfo {
  return { group: PIPELINES_GROUP, version: "v1", kind, plural, namespaced: true, hasLogs };
}

export const RUN_KIND = pipelinesKind("PipelineRun", "pipelineruns", true);
export const PIPELINE_KIND = pipelinesKind("Pipeline", "pipelines");
export const VERSION_KIND = pipelinesKind("PipelineVersion", "pipelineversions");
export const EXPERIMENT_KIND = pipelinesKind("Experiment", "experiments");
export const RECURRING_KIND = pipelinesKind("RecurringRun", "recurringruns");

export function runSpec(r: Resource): RunSpec {
  return (r.spec ?? {});
}

export function runStatus(r: Resource): RunStatus {
  return (r.status ?? {});
}

export const TERMINAL_RUN_PHASES = new Set(["Succeeded", "Failed", "Cancelled"]);

/** The pipeline a run ran: its status, else its pipelineRef, else the IR's name. */
export function pipelineOf(r: Resource): string {
  const st = runStatus(r);
  const spec = runSpec(r);
  return st.pipelineName || spec.pipelineRef?.name || spec.pipelineSpec?.pipelineInfo?.name || "";
}

export function runPath(namespace: string, name: string): string {
  return `/pipelines/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

/** Artifacts of one slot as a list (a slot may hold a list of artifacts). */
export function artifactList(v: RunArtifact | RunArtifact[] | undefined): RunArtifact[] {
  if (!v) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * Every task of a run's status with its path as the graph and the log route
 * name it (`train`, `condition-1/train`, `for-loop-1/0/train`), parents first.
 */
export function flattenTasks(
  tasks: Record<string, TaskStatus> | undefined,
  prefix = "",
): { path: string; status: TaskStatus }[] {
  const out: { path: string; status: TaskStatus }[] = [];
  for (const [name, st] of Object.entries(tasks ?? {})) {
    const path = prefix ? `${prefix}/${name}` : name;
    out.push({ path, status: st });
    out.push(...flattenTasks(st.tasks, path));
    for (const it of st.iterations ?? []) out.push(...flattenTasks(it.tasks, `${path}/${it.index}`));
  }
  return out;
}

/** A group's status has sub-tasks or iterations; a step's has neither. */
function isStep(st: TaskStatus): boolean {
  return !st.tasks && !st.iterations;
}

/**
 * The step whose failure failed the run: the one the run's message names
 * ("task PATH: ..."), else the first failed step.
 */
export function failedStep(status: RunStatus | null): string | null {
  if (!status) return null;
  const steps = flattenTasks(status.tasks).filter((t) => isStep(t.status) && t.status.phase === "Failed");
  const named = /^task (\S+): /.exec(status.message ?? "")?.[1];
  return steps.find((t) => t.path === named)?.path ?? steps[0]?.path ?? null;
}

/** The step that wrote an artifact at `uri` (a registered model's source), or null. */
export function producerOf(status: RunStatus | null, uri: string): string | null {
  const norm = (u: string) => u.replace(/^file:\/\//, "").replace(/\/+$/, "");
  const want = norm(uri);
  for (const t of flattenTasks(status?.tasks)) {
    if (!isStep(t.status)) continue;
    for (const v of Object.values(t.status.outputs?.artifacts ?? {})) {
      if (artifactList(v).some((a) => a.uri && norm(a.uri) === want)) return t.path;
    }
  }
  return null;
}
