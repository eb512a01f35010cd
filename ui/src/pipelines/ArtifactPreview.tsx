// One output artifact of a task: name, type, URI, and a preview chosen by type:
// Metrics as a table, ClassificationMetrics as a confusion matrix and ROC plot,
// HTML in a sandboxed iframe (no scripts, no same-origin), Markdown rendered to
// React elements, a dataset's first rows as a table, a directory's entries.
import { useEffect, useState } from "react";
import { type ArtifactInfo, artifactText, describeArtifact } from "../core/api";
import { useChanged } from "../core/useChanged";
import { Markdown } from "../core/Markdown";
import {
  type ConfidencePoint,
  type ConfusionMatrix,
  ConfusionMatrixGrid,
  MetricsTable,
  RocCurve,
} from "./MetricsViews";
import type { RunArtifact } from "./pipelineTypes";

const TEXT_PREVIEW_BYTES = 256 * 1024;
const HEAD_ROWS = 20;

function shortType(type: string | undefined): string {
  return (type ?? "system.Artifact").replace(/^system\./, "");
}

/** Split CSV/TSV text into rows (quoted fields with commas and "" escapes handled). */
export function parseDelimited(text: string, maxRows: number): { rows: string[][]; delimiter: string } | null {
  const firstLine = text.split("\n", 1)[0] ?? "";
  const delimiter = firstLine.includes("\t") ? "\t" : firstLine.includes(",") ? "," : null;
  if (!delimiter) return null;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === delimiter) {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if ((field || row.length) && rows.length < maxRows) {
    row.push(field);
    rows.push(row);
  }
  const width = rows[0]?.length ?? 0;
  if (width < 2) return null;
  return { rows, delimiter };
}

function useArtifactContent(uri: string | undefined, wanted: boolean) {
  const [state, setState] = useState<{
    info?: ArtifactInfo;
    text?: string;
    truncated?: boolean;
    error?: string;
    loading: boolean;
  }>({ loading: wanted });
  if (useChanged(`${wanted}\n${uri ?? ""}`) && uri && wanted) setState({ loading: true });
  useEffect(() => {
    if (!uri || !wanted) return;
    const controller = new AbortController();
    (async () => {
      const info = await describeArtifact(uri, controller.signal);
      if (info.type !== "file") return { info, loading: false };
      const { text, truncated } = await artifactText(uri, TEXT_PREVIEW_BYTES, controller.signal);
      return { info, text, truncated, loading: false };
    })()
      .then((s) => !controller.signal.aborted && setState(s))
      .catch((e: Error) => !controller.signal.aborted && setState({ error: e.message, loading: false }));
    return () => controller.abort();
  }, [uri, wanted]);
  return state;
}

export function ArtifactPreview({ artifact, slot }: { artifact: RunArtifact; slot: string }) {
  const type = shortType(artifact.type);
  const md = artifact.metadata ?? {};
  const matrix = md.confusionMatrix as ConfusionMatrix | undefined;
  const roc = md.confidenceMetrics as ConfidencePoint[] | undefined;
  const slices = md.evaluationSlices as
    | { slice?: string; sliceClassificationMetrics?: { confusionMatrix?: ConfusionMatrix } }[]
    | undefined;
  // Metrics live in the metadata; everything else needs the bytes.
  const metadataOnly = type === "Metrics" || type === "ClassificationMetrics" || type === "SlicedClassificationMetrics";
  const content = useArtifactContent(artifact.uri, !metadataOnly);
  const [showMeta, setShowMeta] = useState(false);

  return (
    <div className="artifact-preview" data-artifact={slot} data-artifact-type={artifact.type ?? ""}>
      <div className="artifact-head">
        <strong>{slot}</strong>
        <span className="tag">{type}</span>
        {artifact.id !== undefined && <span className="muted small">lineage #{artifact.id}</span>}
      </div>
      {artifact.uri && (
        <div className="mono small muted artifact-uri" title={artifact.uri}>
          {artifact.uri}
        </div>
      )}
      {type === "Metrics" && <MetricsTable metadata={md} />}
      {type === "ClassificationMetrics" && (
        <div className="plots">
          {matrix && <ConfusionMatrixGrid matrix={matrix} />}
          {roc && roc.length > 0 && <RocCurve points={roc} />}
          {!matrix && !(roc && roc.length) && <p className="muted small">No classification metrics logged.</p>}
        </div>
      )}
      {type === "SlicedClassificationMetrics" && (
        <div className="plots">
          {(slices ?? []).map((s, i) =>
            s.sliceClassificationMetrics?.confusionMatrix ? (
              <ConfusionMatrixGrid key={i} matrix={s.sliceClassificationMetrics.confusionMatrix} caption={`slice: ${s.slice ?? i}`} />
            ) : null,
          )}
        </div>
      )}
      {!metadataOnly && <ContentPreview type={type} content={content} />}
      {Object.keys(md).length > 0 && !metadataOnly && (
        <button className="button small" onClick={() => setShowMeta((v) => !v)}>
          {showMeta ? "Hide metadata" : "Metadata"}
        </button>
      )}
      {showMeta && <pre className="code">{JSON.stringify(md, null, 2)}</pre>}
    </div>
  );
}

function ContentPreview({
  type,
  content,
}: {
  type: string;
  content: ReturnType<typeof useArtifactContent>;
}) {
  if (content.loading) return <p className="muted small">Loading preview…</p>;
  if (content.error) return <p className="muted small preview-error">No preview: {content.error}</p>;
  const { info, text, truncated } = content;
  if (info?.type === "directory") {
    return (
      <div className="table-scroll bordered">
        <table className="table compact" data-testid="artifact-dir">
          <tbody>
            {(info.entries ?? []).map((e) => (
              <tr key={e.name}>
                <td className="mono">{e.name}{e.type === "directory" ? "/" : ""}</td>
                <td className="num">{e.size ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    );
  }
  if (text === undefined) return null;
  const note = truncated ? <p className="muted small">Showing the first {TEXT_PREVIEW_BYTES / 1024} KiB.</p> : null;
  if (type === "HTML") {
    return (
      <>
        {/* sandbox="": no scripts, no forms, an opaque origin (cannot reach the API). */}
        <iframe className="html-preview" sandbox="" srcDoc={text} title="HTML artifact" data-testid="html-preview" />
        {note}
      </>
    );
  }
  if (type === "Markdown") {
    return (
      <div className="markdown-preview" data-testid="markdown-preview">
        <Markdown source={text} />
        {note}
      </div>
    );
  }
  // Control characters (not tab, newline, CR, form feed) mark binary content.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0e-\x1f]/.test(text.slice(0, 2048))) {
    return <p className="muted small">Binary content, {info?.size ?? "?"} bytes.</p>;
  }
  const table = parseDelimited(text, HEAD_ROWS + 1);
  if (table) {
    const [head, ...rows] = table.rows;
    return (
      <div className="table-scroll bordered dataset-head" data-testid="dataset-head">
        <table className="table compact">
          <thead>
            <tr>
              {(head ?? []).map((h, i) => (
                <th key={i}>{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                {r.map((c, j) => (
                  <td key={j}>{c}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted small">First {rows.length} rows{info?.size ? ` of a ${info.size}-byte file` : ""}.</p>
      </div>
    );
  }
  return (
    <>
      <pre className="code" data-testid="artifact-text">
        {text.slice(0, 8000)}
      </pre>
      {note}
    </>
  );
}
