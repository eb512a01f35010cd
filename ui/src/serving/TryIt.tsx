// The try-it form: a V2 (Open Inference Protocol) request to one model of a
// service, its inputs prefilled from the model's metadata, and the answer shown
// as sent back (errors too, with their status code).
import { useEffect, useState } from "react";
import { getJSON, postRaw } from "../core/api";
import { useChanged } from "../core/useChanged";

interface TensorMeta {
  name: string;
  datatype: string;
  shape: number[];
}

interface ModelMeta {
  name: string;
  platform?: string;
  versions?: string[];
  inputs?: TensorMeta[];
  outputs?: TensorMeta[];
}

interface V2Output {
  name: string;
  shape?: number[];
  datatype?: string;
  data?: unknown[];
}

function zero(datatype: string): unknown {
  if (datatype === "BYTES") return "";
  if (datatype === "BOOL") return false;
  return 0;
}

/** A request body with one row of zeros per input (dynamic dimensions as 1). */
export function exampleRequest(meta: ModelMeta): string {
  const inputs = (meta.inputs ?? []).map((t) => {
    const shape = (t.shape.length ? t.shape : [1]).map((d) => (d < 0 ? 1 : d));
    const size = shape.reduce((a, b) => a * b, 1);
    return { name: t.name, shape, datatype: t.datatype, data: Array.from({ length: Math.min(size, 10000) }, () => zero(t.datatype)) };
  });
  // One line per tensor: long data arrays stay readable and editable.
  return `{\n  "inputs": [\n${inputs.map((t) => `    ${JSON.stringify(t)}`).join(",\n")}\n  ]\n}`;
}

export function TryIt({ namespace, name, ready }: { namespace: string; name: string; ready: boolean }) {
  const base = `/serving/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState<string>("");
  const [meta, setMeta] = useState<ModelMeta | null>(null);
  const [body, setBody] = useState("");
  const [metaError, setMetaError] = useState<string | null>(null);
  const [inputError, setInputError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const [answer, setAnswer] = useState<{ status: number; text: string; ms: number } | null>(null);

  useEffect(() => {
    if (!ready) return;
    const controller = new AbortController();
    getJSON<{ models?: string[] }>(`${base}/v1/models`, controller.signal)
      .then((r) => {
        const names = r.models?.length ? r.models : [name];
        setModels(names);
        setModel((m) => (m && names.includes(m) ? m : (names[0] ?? name)));
      })
      .catch(() => {
        if (controller.signal.aborted) return;
        setModels([name]);
        setModel((m) => m || name);
      });
    return () => controller.abort();
  }, [base, name, ready]);

  if (useChanged(`${base}\n${model}`)) setMetaError(null);
  useEffect(() => {
    if (!model) return;
    const controller = new AbortController();
    getJSON<ModelMeta>(`${base}/v2/models/${encodeURIComponent(model)}`, controller.signal)
      .then((m) => {
        setMeta(m);
        setBody(exampleRequest(m));
      })
      .catch((e: Error) => !controller.signal.aborted && setMetaError(e.message));
    return () => controller.abort();
  }, [base, model]);

  const send = () => {
    setInputError(null);
    try {
      JSON.parse(body);
    } catch (e) {
      setInputError(`The request is not JSON: ${(e as Error).message}`);
      return;
    }
    setSending(true);
    postRaw(`${base}/v2/models/${encodeURIComponent(model)}/infer`, body)
      .then(setAnswer)
      .catch((e: Error) => setAnswer({ status: 0, text: e.message, ms: 0 }))
      .finally(() => setSending(false));
  };

  let outputs: V2Output[] | null = null;
  let pretty = answer?.text ?? "";
  try {
    const parsed = JSON.parse(answer?.text ?? "") as { outputs?: V2Output[] };
    pretty = JSON.stringify(parsed, null, 2);
    outputs = Array.isArray(parsed.outputs) ? parsed.outputs : null;
  } catch {
    /* show the raw text */
  }
  const ok = answer !== null && answer.status >= 200 && answer.status < 300;

  return (
    <section className="panel try-it" data-testid="try-it">
      <div className="panel-head">
        <h2>Try it</h2>
        <span className="muted small">POST {base}/v2/models/{model || "…"}/infer</span>
      </div>
      <div className="try-body">
        {!ready && <p className="muted small">The service is not ready yet.</p>}
        <div className="toolbar">
          <label className="filter">
            <span>Model</span>
            <select value={model} onChange={(e) => setModel(e.target.value)} data-testid="try-model">
              {models.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </label>
          {meta && (
            <span className="muted small">
              {meta.platform ?? ""} · inputs {(meta.inputs ?? []).map((t) => `${t.name} ${t.datatype}[${t.shape.join(",")}]`).join(", ")}
            </span>
          )}
        </div>
        {metaError && <div className="banner banner-error">Model metadata: {metaError}</div>}
        <textarea
          className="json-input"
          spellCheck={false}
          value={body}
          onChange={(e) => setBody(e.target.value)}
          aria-label="Inference request (V2 JSON)"
          data-testid="try-request"
          rows={10}
        />
        {inputError && <div className="banner banner-error">{inputError}</div>}
        <div className="toolbar">
          <button className="button primary" onClick={send} disabled={sending || !model || !body} data-testid="try-send">
            {sending ? "Sending…" : "Send request"}
          </button>
          {answer && (
            <span className={`small ${ok ? "ok-text" : "preview-error"}`} data-testid="try-status">
              {answer.status || "network error"} · {answer.ms.toFixed(1)} ms
            </span>
          )}
        </div>
        {outputs && ok && (
          <div className="table-scroll bordered">
            <table className="table compact" data-testid="try-outputs">
              <thead>
                <tr>
                  <th>Output</th>
                  <th>Type</th>
                  <th>Shape</th>
                  <th>Data</th>
                </tr>
              </thead>
              <tbody>
                {outputs.map((o) => (
                  <tr key={o.name} data-output={o.name}>
                    <td className="param-name">{o.name}</td>
                    <td className="mono">{o.datatype}</td>
                    <td className="mono">[{(o.shape ?? []).join(", ")}]</td>
                    <td className="mono wrap">{JSON.stringify((o.data ?? []).slice(0, 50))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {answer && (
          <pre className="code" data-testid="try-response">
            {pretty}
          </pre>
        )}
      </div>
    </section>
  );
}
