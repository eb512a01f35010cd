// The IR a run ran: inline (`spec.pipelineSpec`) or the PipelineVersion its
// `pipelineRef` names (the version's object name, `<pipeline>-<version>`, or the
// pipeline's latest version), resolved as the engine resolves it.
import { useEffect, useState } from "react";
import { ApiError, type Resource, getJSON, objectUrl } from "../core/api";
import { PIPELINE_KIND, type PipelineIR, VERSION_KIND, runSpec } from "./pipelineTypes";

async function versionIR(namespace: string, name: string, signal: AbortSignal): Promise<PipelineIR | null> {
  try {
    const v = await getJSON<Resource>(objectUrl(VERSION_KIND, namespace, name), signal);
    return ((v.spec ?? {}) as { pipelineSpec?: PipelineIR }).pipelineSpec ?? null;
  } catch (e) {
    if (e instanceof ApiError && (e.code === 404 || e.code === 422)) return null;
    throw e;
  }
}

export async function resolveRef(
  namespace: string,
  ref: { name: string; version?: string | null },
  signal: AbortSignal,
): Promise<PipelineIR> {
  if (ref.version) {
    for (const candidate of [ref.version, `${ref.name}-${ref.version}`]) {
      const ir = await versionIR(namespace, candidate, signal);
      if (ir) return ir;
    }
    throw new Error(`pipeline "${ref.name}" has no version "${ref.version}"`);
  }
  const pipeline = await getJSON<Resource>(objectUrl(PIPELINE_KIND, namespace, ref.name), signal);
  const latest = (pipeline.status as { latestVersion?: string } | undefined)?.latestVersion;
  const ir = latest ? await versionIR(namespace, latest, signal) : null;
  if (!ir) throw new Error(`pipeline "${ref.name}" has no versions`);
  return ir;
}

export function usePipelineIR(run: Resource | null): { ir: PipelineIR | null; error: string | null } {
  const spec = run ? runSpec(run) : null;
  const inline = spec?.pipelineSpec ?? null;
  const refKey = spec?.pipelineRef ? `${spec.pipelineRef.name}@${spec.pipelineRef.version ?? ""}` : "";
  const namespace = run?.metadata.namespace ?? "default";
  const [resolved, setResolved] = useState<{ key: string; ir: PipelineIR | null; error: string | null }>({
    key: "",
    ir: null,
    error: null,
  });

  useEffect(() => {
    if (inline || !refKey || !spec?.pipelineRef) return;
    const controller = new AbortController();
    const ref = spec.pipelineRef;
    resolveRef(namespace, ref, controller.signal)
      .then((ir) => setResolved({ key: refKey, ir, error: null }))
      .catch((e: Error) => !controller.signal.aborted && setResolved({ key: refKey, ir: null, error: e.message }));
    return () => controller.abort();
    // The ref is immutable for a run; its key says all.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [refKey, namespace, Boolean(inline)]);

  if (inline) return { ir: inline, error: null };
  if (resolved.key === refKey) return { ir: resolved.ir, error: resolved.error };
  return { ir: null, error: null };
}
