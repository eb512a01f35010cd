// Shared pieces of the Model Registry pages.
import { useCallback, useEffect, useRef, useState } from "react";
import {
  type CustomProperties,
  type ListParams,
  type MetadataValue,
  getRegistryListAt,
  registryUrl,
  withPageToken,
} from "../core/api";
import { useChanged } from "../core/useChanged";

export function modelPath(id: string): string {
  return `/models/${encodeURIComponent(id)}`;
}

export function versionPath(modelId: string, versionId: string): string {
  return `${modelPath(modelId)}/versions/${encodeURIComponent(versionId)}`;
}

/** LIVE (green) / ARCHIVED (grey) badge. */
export function RegistryStateBadge({ state }: { state: string | undefined }) {
  const s = state || "LIVE";
  const tone = s === "LIVE" ? "succeeded" : "unknown";
  const label = s.charAt(0) + s.slice(1).toLowerCase();
  return (
    <span className={`badge badge-${tone}`} data-state={s}>
      <span className="badge-dot" aria-hidden="true" />
      {label}
    </span>
  );
}

/** Labels, as the Kubeflow UI stores them: string properties with an empty value. */
export function isLabel(v: MetadataValue): boolean {
  return (
    (v.metadataType === undefined || v.metadataType === "MetadataStringValue") &&
    v.string_value === ""
  );
}

export function labelsOf(props: CustomProperties | undefined): string[] {
  return Object.entries(props ?? {})
    .filter(([, v]) => isLabel(v))
    .map(([k]) => k)
    .sort((a, b) => a.localeCompare(b));
}

export function propertiesOf(props: CustomProperties | undefined): [string, MetadataValue][] {
  return Object.entries(props ?? {})
    .filter(([, v]) => !isLabel(v))
    .sort(([a], [b]) => a.localeCompare(b));
}

export function valueType(v: MetadataValue): string {
  if (v.metadataType) return v.metadataType.replace(/^Metadata/, "").replace(/Value$/, "");
  if (v.string_value !== undefined) return "String";
  if (v.int_value !== undefined) return "Int";
  if (v.double_value !== undefined) return "Double";
  if (v.bool_value !== undefined) return "Bool";
  if (v.struct_value !== undefined) return "Struct";
  if (v.proto_value !== undefined) return "Proto";
  return "—";
}

function decodeStruct(b64: string): string {
  try {
    const text = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    return JSON.stringify(JSON.parse(text));
  } catch {
    return b64;
  }
}

export function formatValue(v: MetadataValue): string {
  if (v.string_value !== undefined) return v.string_value;
  if (v.int_value !== undefined) return String(v.int_value);
  if (v.double_value !== undefined) return String(v.double_value);
  if (v.bool_value !== undefined) return v.bool_value ? "true" : "false";
  if (v.struct_value !== undefined) return decodeStruct(v.struct_value);
  if (v.proto_value !== undefined) return `${v.type ? `${v.type}: ` : ""}${v.proto_value}`;
  return "";
}

export function LabelChips({
  labels,
  onClick,
  active,
}: {
  labels: string[];
  onClick?: (label: string) => void;
  active?: Set<string>;
}) {
  if (labels.length === 0) return <span className="muted">—</span>;
  return (
    <span className="chips">
      {labels.map((l) =>
        onClick ? (
          <button
            key={l}
            type="button"
            className={`chip${active?.has(l) ? " on" : ""}`}
            data-label={l}
            aria-pressed={active?.has(l) ?? false}
            title={`Filter by label ${l}`}
            onClick={(e) => {
              e.stopPropagation();
              onClick(l);
            }}
          >
            {l}
          </button>
        ) : (
          <span key={l} className="chip" data-label={l}>
            {l}
          </span>
        ),
      )}
    </span>
  );
}

/** Key / type / value table of the non-label custom properties. */
export function PropertiesTable({ props, testId }: { props: CustomProperties | undefined; testId?: string }) {
  const rows = propertiesOf(props);
  if (rows.length === 0) return <p className="muted small">No custom properties.</p>;
  return (
    <div className="table-scroll bordered">
      <table className="table compact" data-testid={testId}>
        <thead>
          <tr>
            <th>Key</th>
            <th>Type</th>
            <th>Value</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k} data-key={k}>
              <td className="name-cell">{k}</td>
              <td className="muted">{valueType(v)}</td>
              <td className="wrap mono">{formatValue(v)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export interface Paged<T> {
  items: T[];
  loading: boolean;
  error: string | null;
  hasMore: boolean;
  loadMore: () => void;
}

/**
 * A registry list read page by page (`nextPageToken`); starts over whenever
 * the route or the parameters change. `path` null: nothing to load.
 */
export function usePagedList<T>(path: string | null, params: ListParams): Paged<T> {
  const key = path === null ? "" : registryUrl(path, params);
  const [items, setItems] = useState<T[]>([]);
  const [token, setToken] = useState("");
  const [loading, setLoading] = useState(path !== null);
  const [error, setError] = useState<string | null>(null);
  const generation = useRef(0);
  if (useChanged(key)) {
    setItems([]);
    setToken("");
    setError(null);
    setLoading(path !== null);
  }

  // `key` is the whole request (path and parameters), so a new params object
  // with the same values fetches nothing again.
  const fetchPage = useCallback(
    (pageToken: string, reset: boolean) => {
      if (key === "") return () => undefined;
      const gen = reset ? ++generation.current : generation.current;
      const controller = new AbortController();
      getRegistryListAt<T>(pageToken ? withPageToken(key, pageToken) : key, controller.signal)
        .then((page) => {
          if (gen !== generation.current) return;
          setItems((prev) => (reset ? page.items : [...prev, ...page.items]));
          setToken(page.nextPageToken);
          setError(null);
          setLoading(false);
        })
        .catch((e: Error) => {
          if (controller.signal.aborted || gen !== generation.current) return;
          if (reset) setItems([]);
          setError(e.message);
          setLoading(false);
        });
      return () => controller.abort();
    },
    [key],
  );

  // The first page: `loading` was set when the key changed.
  useEffect(() => fetchPage("", true), [fetchPage]);

  const loadMore = useCallback(() => {
    if (!token || loading) return;
    setLoading(true);
    fetchPage(token, false);
  }, [fetchPage, token, loading]);

  return { items, loading, error, hasMore: token !== "", loadMore };
}

