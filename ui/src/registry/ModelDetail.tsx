import { useEffect, useState } from "react";
import { ApiError, type ModelVersion, type RegisteredModel, getRegisteredModel } from "../core/api";
import { LabelChips, PropertiesTable, RegistryStateBadge, labelsOf, usePagedList, versionPath } from "./Registry";
import { Facts, Link } from "../core/Widgets";
import { fromEpoch, timestamp } from "../core/format";
import { useChanged } from "../core/useChanged";
import { navigate } from "../core/router";

const VERSION_PARAMS = { pageSize: 50, orderBy: "CREATE_TIME", sortOrder: "DESC" } as const;

/** Fetch one registry object; `missing` is set on 404. */
export function useRegistryObject<T>(
  id: string,
  get: (id: string, signal: AbortSignal) => Promise<T>,
): { obj: T | null; error: string | null; missing: boolean } {
  const [obj, setObj] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [missing, setMissing] = useState(false);
  if (useChanged(id)) {
    setObj(null);
    setError(null);
    setMissing(false);
  }
  useEffect(() => {
    const controller = new AbortController();
    get(id, controller.signal)
      .then(setObj)
      .catch((e: Error) => {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError && e.code === 404) setMissing(true);
        setError(e.message);
      });
    return () => controller.abort();
  }, [id, get]);
  return { obj, error, missing };
}

export function Breadcrumbs({ items }: { items: { label: string; to?: string }[] }) {
  return (
    <nav className="crumbs" aria-label="Breadcrumb">
      {items.map((c, i) => (
        <span key={`${i}-${c.label}`}>
          {i > 0 && <span className="crumb-sep">/</span>}
          {c.to ? <Link to={c.to}>{c.label}</Link> : <span>{c.label}</span>}
        </span>
      ))}
    </nav>
  );
}

export function ModelDetailPage({ modelId }: { modelId: string }) {
  const { obj: model, error, missing } = useRegistryObject(modelId, getRegisteredModel);
  const versions = usePagedList<ModelVersion>(
    `/registered_models/${encodeURIComponent(modelId)}/versions`,
    VERSION_PARAMS,
  );

  if (missing) {
    return (
      <div className="empty-page">
        <Breadcrumbs items={[{ label: "Models", to: "/models" }]} />
        <h1>Model not found</h1>
        <p className="muted">There is no registered model with id {modelId}.</p>
      </div>
    );
  }

  return (
    <div className="page" data-testid="model-detail">
      <Breadcrumbs items={[{ label: "Models", to: "/models" }, { label: model?.name ?? modelId }]} />
      {error && <div className="banner banner-error">Could not load the model: {error}</div>}
      {!model ? (
        !error && <div className="loading">Loading…</div>
      ) : (
        <>
          <div className="page-head">
            <h1>{model.name}</h1>
            <RegistryStateBadge state={model.state} />
          </div>
          <ModelSummary model={model} />
        </>
      )}

      <section className="panel">
        <div className="panel-head">
          <h2>Versions</h2>
          <span className="muted small">
            {versions.items.length}
            {versions.hasMore ? "+" : ""} {versions.items.length === 1 ? "version" : "versions"}
          </span>
        </div>
        {versions.error && (
          <div className="banner banner-error inset">Could not load versions: {versions.error}</div>
        )}
        {versions.items.length === 0 ? (
          <div className="empty-state">
            {versions.loading ? "Loading…" : "No versions registered for this model yet."}
          </div>
        ) : (
          <div className="table-scroll">
            <table className="table" data-testid="versions-table">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>State</th>
                  <th>Author</th>
                  <th>Labels</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {versions.items.map((v) => (
                  <tr
                    key={v.id}
                    className="clickable"
                    data-id={v.id}
                    data-name={v.name}
                    onClick={() => navigate(versionPath(modelId, v.id))}
                  >
                    <td className="name-cell">
                      <Link to={versionPath(modelId, v.id)}>{v.name}</Link>
                      {v.description && <div className="sub wrap">{v.description}</div>}
                    </td>
                    <td>
                      <RegistryStateBadge state={v.state} />
                    </td>
                    <td>{v.author || <span className="muted">—</span>}</td>
                    <td>
                      <LabelChips labels={labelsOf(v.customProperties)} />
                    </td>
                    <td className="nowrap">{timestamp(fromEpoch(v.createTimeSinceEpoch))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {versions.hasMore && (
          <div className="panel-foot">
            <button
              type="button"
              className="button"
              onClick={versions.loadMore}
              disabled={versions.loading}
            >
              {versions.loading ? "Loading…" : "Load more"}
            </button>
          </div>
        )}
      </section>
    </div>
  );
}

function ModelSummary({ model }: { model: RegisteredModel }) {
  return (
    <div className="detail-grid">
      <section className="panel detail">
        <div className="panel-head">
          <h2>Details</h2>
        </div>
        {model.description ? (
          <p className="description">{model.description}</p>
        ) : (
          <p className="description muted">No description.</p>
        )}
        <Facts
          rows={[
            ["ID", model.id],
            ["Owner", model.owner],
            ["State", <RegistryStateBadge key="s" state={model.state} />],
            ["Labels", <LabelChips key="l" labels={labelsOf(model.customProperties)} />],
            ["External ID", model.externalId],
            ["Created", timestamp(fromEpoch(model.createTimeSinceEpoch))],
            ["Last modified", timestamp(fromEpoch(model.lastUpdateTimeSinceEpoch))],
          ]}
        />
      </section>
      <section className="panel detail">
        <div className="panel-head">
          <h2>Properties</h2>
        </div>
        <div className="detail-body">
          <PropertiesTable props={model.customProperties} testId="model-properties" />
        </div>
      </section>
    </div>
  );
}
