import { useEffect, useMemo, useState } from "react";
import {
  type ModelVersion,
  type RegisteredModel,
  filterIdent,
  filterString,
  getRegistryList,
} from "../core/api";
import { LabelChips, RegistryStateBadge, labelsOf, modelPath, usePagedList, versionPath } from "./Registry";
import { Link } from "../core/Widgets";
import { age, fromEpoch, timestamp } from "../core/format";
import { navigate } from "../core/router";
import { useNow } from "../core/useNow";

const PAGE_SIZE = 20;
const STATES = [
  { value: "ALL", label: "All" },
  { value: "LIVE", label: "Live" },
  { value: "ARCHIVED", label: "Archived" },
] as const;
type StateFilter = (typeof STATES)[number]["value"];

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = window.setTimeout(() => setV(value), ms);
    return () => window.clearTimeout(id);
  }, [value, ms]);
  return v;
}

export function buildModelFilter(search: string, state: StateFilter, labels: string[]): string {
  const parts: string[] = [];
  const q = search.trim();
  if (q) parts.push(`name ILIKE ${filterString(`%${q}%`)}`);
  if (state !== "ALL") parts.push(`state = ${filterString(state)}`);
  for (const l of labels) parts.push(`${filterIdent(l)} = ""`);
  return parts.join(" AND ");
}

export function ModelsPage() {
  const [search, setSearch] = useState("");
  const [state, setState] = useState<StateFilter>("ALL");
  const [labels, setLabels] = useState<string[]>([]);
  const query = useDebounced(search, 250);
  const filterQuery = buildModelFilter(query, state, labels);
  const params = useMemo(
    () => ({
      pageSize: PAGE_SIZE,
      orderBy: "LAST_UPDATE_TIME" as const,
      sortOrder: "DESC" as const,
      filterQuery,
    }),
    [filterQuery],
  );
  const { items, loading, error, hasMore, loadMore } = usePagedList<RegisteredModel>(
    "/registered_models",
    params,
  );
  const now = useNow(5000);

  // Every label seen so far is offered as a filter chip (kept while a filter
  // narrows the list), added during render when new ones show up.
  const [seen, setSeen] = useState<ReadonlySet<string>>(() => new Set());
  const shownLabels = [...items.flatMap((m) => labelsOf(m.customProperties)), ...labels];
  if (shownLabels.some((l) => !seen.has(l))) setSeen(new Set([...seen, ...shownLabels]));
  const knownLabels = [...new Set([...seen, ...shownLabels])].sort((a, b) => a.localeCompare(b));
  const active = new Set(labels);
  const toggleLabel = (l: string) =>
    setLabels((cur) => (cur.includes(l) ? cur.filter((x) => x !== l) : [...cur, l]));
  const filtered = filterQuery !== "";

  return (
    <div className="page">
      <div className="page-head">
        <h1>Models</h1>
        <span className="muted small">Model Registry</span>
      </div>

      <div className="toolbar">
        <input
          type="search"
          className="search"
          placeholder="Search by name"
          aria-label="Search models"
          data-testid="model-search"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        <div className="segmented" role="group" aria-label="State" data-testid="state-filter">
          {STATES.map((s) => (
            <button
              key={s.value}
              type="button"
              className={state === s.value ? "on" : undefined}
              aria-pressed={state === s.value}
              data-state={s.value}
              onClick={() => setState(s.value)}
            >
              {s.label}
            </button>
          ))}
        </div>
        {knownLabels.length > 0 && (
          <div className="toolbar-labels" data-testid="label-filter">
            <span className="muted small">Labels</span>
            <LabelChips labels={knownLabels} onClick={toggleLabel} active={active} />
          </div>
        )}
      </div>

      {error && <div className="banner banner-error">Could not load models: {error}</div>}

      <section className="panel">
        {items.length === 0 ? (
          <div className="empty-state">
            {loading ? (
              "Loading…"
            ) : error ? (
              "No models."
            ) : filtered ? (
              "No models match these filters."
            ) : (
              <>
                No models registered yet — register one with the Model Registry client or{" "}
                <code>POST /api/model_registry/v1/registered_models</code>
              </>
            )}
          </div>
        ) : (
          <div className="table-scroll">
            <table className="table" data-testid="models-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Latest version</th>
                  <th>Owner</th>
                  <th>State</th>
                  <th>Labels</th>
                  <th>Last modified</th>
                </tr>
              </thead>
              <tbody>
                {items.map((m) => {
                  const updated = fromEpoch(m.lastUpdateTimeSinceEpoch);
                  return (
                    <tr
                      key={m.id}
                      className="clickable"
                      data-id={m.id}
                      data-name={m.name}
                      onClick={() => navigate(modelPath(m.id))}
                    >
                      <td className="name-cell">
                        <Link to={modelPath(m.id)}>{m.name}</Link>
                        {m.description && <div className="sub wrap">{m.description}</div>}
                      </td>
                      <td>
                        <LatestVersion modelId={m.id} />
                      </td>
                      <td>{m.owner || <span className="muted">—</span>}</td>
                      <td>
                        <RegistryStateBadge state={m.state} />
                      </td>
                      <td>
                        <LabelChips
                          labels={labelsOf(m.customProperties)}
                          onClick={toggleLabel}
                          active={active}
                        />
                      </td>
                      <td className="nowrap" title={timestamp(updated)}>
                        {updated ? `${age(updated, now)} ago` : "—"}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {(hasMore || (loading && items.length > 0)) && (
          <div className="panel-foot">
            <button
              type="button"
              className="button"
              onClick={loadMore}
              disabled={loading}
              data-testid="load-more"
            >
              {loading ? "Loading…" : "Load more"}
            </button>
          </div>
        )}
      </section>
    </div>
  );
}

/** Newest version of a model, fetched when its row is shown. */
function LatestVersion({ modelId }: { modelId: string }) {
  const [latest, setLatest] = useState<ModelVersion | null | undefined>(undefined);
  useEffect(() => {
    const controller = new AbortController();
    getRegistryList<ModelVersion>(
      `/registered_models/${encodeURIComponent(modelId)}/versions`,
      { pageSize: 1, orderBy: "CREATE_TIME", sortOrder: "DESC" },
      controller.signal,
    )
      .then((page) => setLatest(page.items[0] ?? null))
      .catch(() => !controller.signal.aborted && setLatest(null));
    return () => controller.abort();
  }, [modelId]);
  if (latest === undefined) return <span className="muted">…</span>;
  if (latest === null) return <span className="muted">—</span>;
  return (
    <span data-testid="latest-version">
      <Link to={versionPath(modelId, latest.id)}>{latest.name}</Link>
    </span>
  );
}
