// One InferenceService: readiness and conditions, revisions and traffic, live
// request rate and latency, the try-it form and the model server's log.
import { objectUrl } from "../core/api";
import { CopyButton, Facts } from "../core/Widgets";
import { LogViewer } from "../core/LogViewer";
import { ConditionsTable, Crumbs } from "../core/PagePieces";
import { PageLink } from "../pipelines/PipelineTabs";
import { ServingMetricsPanel, observedSplit, useServingMetrics } from "./ServingMetricsPanel";
import { StatusBadge } from "../core/StatusBadge";
import { TryIt } from "./TryIt";
import { useResource } from "../core/useResource";
import { age, timestamp } from "../core/format";
import { useNow } from "../core/useNow";
import { ISVC_KIND, TrafficBar, isvcStatus, readiness } from "./ServingList";

export function ServingDetailPage({ namespace, name }: { namespace: string; name: string }) {
  const { object: svc, error, loading, missing } = useResource(ISVC_KIND, namespace, name);
  const now = useNow(5000);
  const metrics = useServingMetrics(namespace, name);
  const observed = observedSplit(metrics.points);
  if (missing) {
    return (
      <div className="empty-page">
        <h1>{name}</h1>
        <p className="muted">No inference service “{name}” in namespace {namespace}.</p>
        <PageLink to="/serving">All services</PageLink>
      </div>
    );
  }
  const st = svc ? isvcStatus(svc) : {};
  const ready = svc ? readiness(svc) : { phase: "Pending", message: "" };
  const traffic = st.components?.predictor?.traffic ?? [];
  const percentOf = (rev: string) => traffic.find((t) => t.revisionName === rev)?.percent ?? 0;
  const conditions = st.conditions ?? [];
  const predictor = ((svc?.spec ?? {}) as { predictor?: { model?: { modelFormat?: { name?: string }; storageUri?: string } } })
    .predictor;

  return (
    <div className="page">
      <Crumbs namespace={namespace}>
        <PageLink to="/serving">Serving</PageLink>
      </Crumbs>
      <div className="page-head">
        <h1 data-testid="service-name">{name}</h1>
        {svc && <StatusBadge phase={ready.phase} />}
      </div>
      {error && !svc && <div className="banner banner-error">{error}</div>}
      {loading && !svc && <div className="loading">Loading…</div>}
      {ready.message && <div className="banner banner-error" data-testid="service-message">{ready.message}</div>}
      {svc && (
        <>
          <section className="panel detail">
            <Facts
              rows={[
                [
                  "URL",
                  st.url ? (
                    <span className="url-row">
                      <span className="mono" data-testid="service-url">{st.url}</span> <CopyButton text={st.url} />
                    </span>
                  ) : (
                    ""
                  ),
                ],
                ["Via this server", <span className="mono">{`${window.location.origin}/serving/${namespace}/${name}`}</span>],
                ["Model format", predictor?.model?.modelFormat?.name ?? ""],
                ["Storage URI", predictor?.model?.storageUri ? <span className="mono">{predictor.model.storageUri}</span> : ""],
                ["Model state", st.modelStatus?.states?.activeModelState ?? ""],
                ["Replicas ready", String(st.readyReplicas ?? 0)],
                ["Created", `${timestamp(svc.metadata.creationTimestamp)} (${age(svc.metadata.creationTimestamp, now)} ago)`],
              ]}
            />
            <h3>Traffic</h3>
            <TrafficBar traffic={traffic} />
          </section>
          <ServingMetricsPanel metrics={metrics} />
          <div className="detail-grid">
            <section className="panel">
              <div className="panel-head">
                <h2>Revisions</h2>
              </div>
              <div className="table-scroll">
                <table className="table compact" data-testid="revisions-table">
                  <thead>
                    <tr>
                      <th>Revision</th>
                      <th>State</th>
                      <th className="num">Ready</th>
                      <th className="num">Traffic</th>
                      <th className="num" title="Share of the requests of the last 30 s">Observed</th>
                      <th>Model</th>
                    </tr>
                  </thead>
                  <tbody>
                    {(st.revisions ?? []).map((rev) => (
                      <tr key={rev.name} data-revision={rev.name}>
                        <td className="name-cell">{rev.name}</td>
                        <td title={rev.message}>
                          <StatusBadge phase={rev.state ?? "Unknown"} />
                        </td>
                        <td className="num">
                          {(rev.replicas ?? []).filter((x) => x.ready).length}/{rev.desiredReplicas ?? (rev.replicas ?? []).length}
                        </td>
                        <td className="num">{percentOf(rev.name)}%</td>
                        <td className="num" data-observed={rev.name}>
                          {observed[rev.name] !== undefined ? `${observed[rev.name]?.toFixed(0)}%` : "—"}
                        </td>
                        <td className="mono wrap">
                          {rev.format ?? ""} {rev.uri ?? ""}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </section>
            <section className="panel">
              <div className="panel-head">
                <h2>Conditions</h2>
              </div>
              <ConditionsTable conditions={conditions} now={now} testId="conditions-table" />
            </section>
          </div>
          <TryIt namespace={namespace} name={name} ready={ready.phase === "Ready"} />
          <section className="panel detail">
            <div className="panel-head">
              <h2>Model server log</h2>
            </div>
            <div data-testid="service-log">
              <LogViewer url={`${objectUrl(ISVC_KIND, namespace, name)}/log`} follow={true} />
            </div>
          </section>
        </>
      )}
    </div>
  );
}
