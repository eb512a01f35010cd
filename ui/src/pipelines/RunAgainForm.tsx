// "Run again" (KFP's clone run): a new run of the same pipeline, its arguments
// prefilled with this run's and editable, caching on or off. The server checks
// the arguments; its error names the parameter.
import { type FormEvent, useState } from "react";
import { type Resource, collectionUrl, postJSON } from "../core/api";
import { type PipelineIR, RUN_KIND, pipelineOf, runPath, runSpec } from "./pipelineTypes";
import { go } from "./PipelineTabs";

/** `<pipeline>-<UTC time>-<4 hex>`, as `ketch run` names runs. */
export function newRunName(pipeline: string): string {
  const slug = pipeline.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 36) || "run";
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const hex = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
  return `${slug}-${stamp}-${hex}`;
}

function asText(v: unknown, type: string | undefined): string {
  if (v === undefined || v === null) return "";
  return type === "STRING" && typeof v === "string" ? v : JSON.stringify(v);
}

export function RunAgainForm({ run, ir, onClose }: { run: Resource; ir: PipelineIR; onClose: () => void }) {
  const spec = runSpec(run);
  const defs = ir.root?.inputDefinitions?.parameters ?? {};
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(
      Object.entries(defs).map(([k, d]) => [k, asText(spec.arguments?.[k] ?? d.defaultValue, d.parameterType)]),
    ),
  );
  const [caching, setCaching] = useState(spec.caching !== false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const namespace = run.metadata.namespace ?? "default";

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const args: Record<string, unknown> = {};
    for (const [k, d] of Object.entries(defs)) {
      const text = values[k] ?? "";
      if (text === "" && d.isOptional) continue;
      if (d.parameterType === "STRING") {
        args[k] = text;
        continue;
      }
      try {
        args[k] = JSON.parse(text);
      } catch {
        setError(`${k}: not a ${d.parameterType ?? "JSON"} value: ${text || "(empty)"}`);
        return;
      }
    }
    const name = newRunName(pipelineOf(run) || run.metadata.name);
    const body = {
      apiVersion: "pipelines.ketch.dev/v1",
      kind: "PipelineRun",
      // Labels are not copied: a recurring run's label would count this run as one of its own.
      metadata: { name },
      spec: {
        ...(spec.pipelineRef ? { pipelineRef: spec.pipelineRef } : { pipelineSpec: spec.pipelineSpec }),
        arguments: args,
        caching,
        ...(spec.experiment ? { experiment: spec.experiment } : {}),
      },
    };
    setBusy(true);
    postJSON<Resource>(collectionUrl(RUN_KIND, namespace), body)
      .then((created) => go(runPath(namespace, created.metadata.name)))
      .catch((err: Error) => setError(err.message))
      .finally(() => setBusy(false));
  };

  return (
    <form className="panel run-again" onSubmit={submit} data-testid="run-again-form">
      <div className="panel-head">
        <h2>Run again</h2>
        <button type="button" className="icon-button" title="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <div className="run-again-body">
        {Object.keys(defs).length === 0 && <p className="muted small">This pipeline takes no parameters.</p>}
        {Object.entries(defs).map(([k, d]) => (
          <label key={k} className="field">
            <span className="param-name">{k}</span>
            <span className="muted small">{d.parameterType}</span>
            <input
              className="search"
              value={values[k] ?? ""}
              onChange={(e) => setValues((v) => ({ ...v, [k]: e.target.value }))}
              data-param-input={k}
            />
          </label>
        ))}
        <label className="filter">
          <input type="checkbox" checked={caching} onChange={(e) => setCaching(e.target.checked)} /> Use the cache
        </label>
        {error && <div className="banner banner-error" data-testid="run-again-error">{error}</div>}
        <div className="toolbar">
          <button className="button primary" type="submit" disabled={busy} data-testid="run-again-submit">
            {busy ? "Starting…" : "Start run"}
          </button>
        </div>
      </div>
    </form>
  );
}
