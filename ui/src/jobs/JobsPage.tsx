import { useEffect, useMemo, useState } from "react";
import { ALL_NAMESPACES, type KindInfo, type Resource, getJSON, keyOf, objectUrl } from "../core/api";
import { LogViewer } from "../core/LogViewer";
import { AgoCell, ConditionsTable, ErrorBanner, ListTable, PageHead } from "../core/PagePieces";
import { StatusBadge } from "../core/StatusBadge";
import { created, duration, phaseOf, timestamp } from "../core/format";
import { navigate } from "../core/router";
import { useNow } from "../core/useNow";
import { useWatch } from "../core/useWatch";

interface Selected {
  namespace: string;
  name: string;
}

function jobPath(r: Resource): string {
  return `/jobs/${encodeURIComponent(r.metadata.namespace ?? "default")}/${encodeURIComponent(r.metadata.name)}`;
}

export function JobsPage({
  kind,
  namespace,
  selected,
}: {
  kind: KindInfo | null;
  namespace: string;
  selected: Selected | null;
}) {
  const kinds = useMemo(() => (kind ? [kind] : []), [kind]);
  const { items, loading, errors } = useWatch(kinds, namespace);
  const now = useNow(1000);
  const allNs = namespace === ALL_NAMESPACES;
  const rows = [...items].sort((a, b) => created(b) - created(a));
  const live =
    selected &&
    items.find(
      (r) => r.metadata.name === selected.name && (r.metadata.namespace ?? "") === selected.namespace,
    );

  if (!kind) {
    return (
      <div className="empty-page">
        <h1>Jobs</h1>
        <p className="muted">The server did not report a Job kind.</p>
      </div>
    );
  }

  return (
    <div className="page">
      <PageHead title="Jobs">
        <span className="muted small">{rows.length} total</span>
      </PageHead>
      <ErrorBanner errors={errors} stacked />
      <div className={`split${selected ? " with-detail" : ""}`}>
        <ListTable
          testId="jobs-table"
          rows={rows.length}
          loading={loading}
          empty={<>No jobs yet — try <code>ketch apply -f examples/hello-job.yaml</code></>}
          columns={
            <>
              <th>Name</th>
              {allNs && <th>Namespace</th>}
              <th>Phase</th>
              <th className="num">Attempts</th>
              <th className="num">Exit code</th>
              <th>Started</th>
              <th>Duration</th>
            </>
          }
        >
          {rows.map((r) => {
            const isSel =
              !!selected &&
              selected.name === r.metadata.name &&
              selected.namespace === (r.metadata.namespace ?? "");
            const st = r.status ?? {};
            return (
              <tr
                key={keyOf(r)}
                data-name={r.metadata.name}
                data-namespace={r.metadata.namespace ?? ""}
                className={`clickable${isSel ? " selected" : ""}`}
                onClick={() => navigate(jobPath(r))}
              >
                <td className="name-cell">{r.metadata.name}</td>
                {allNs && <td>{r.metadata.namespace}</td>}
                <td>
                  <StatusBadge phase={phaseOf(r)} />
                </td>
                <td className="num">{st.attempts ?? "—"}</td>
                <td className="num">{st.exitCode ?? "—"}</td>
                <AgoCell ts={st.startTime} now={now} />
                <td className="nowrap">{duration(st.startTime, st.completionTime, now)}</td>
              </tr>
            );
          })}
        </ListTable>
        {selected && (
          <JobDetail
            key={`${selected.namespace}/${selected.name}`}
            kind={kind}
            selected={selected}
            live={live ?? null}
          />
        )}
      </div>
    </div>
  );
}

function JobDetail({
  kind,
  selected,
  live,
}: {
  kind: KindInfo;
  selected: Selected;
  live: Resource | null;
}) {
  const [fetched, setFetched] = useState<Resource | null>(null);
  const [error, setError] = useState<string | null>(null);
  const url = objectUrl(kind, selected.namespace, selected.name);

  // Fetch the object once (the watched list may not include it, e.g. when
  // deep-linking into another namespace); prefer the live copy afterwards.
  useEffect(() => {
    const controller = new AbortController();
    getJSON<Resource>(url, controller.signal)
      .then(setFetched)
      .catch((e: Error) => !controller.signal.aborted && setError(e.message));
    return () => controller.abort();
  }, [url]);

  const now = useNow(1000);
  const job = live ?? fetched;
  const phase = job ? phaseOf(job) : "";
  const running = phase === "Running";
  const conditions = job?.status?.conditions ?? [];

  return (
    <aside className="panel detail" data-testid="job-detail" aria-label={`Job ${selected.name}`}>
      <div className="panel-head">
        <h2>
          {selected.name} {job && <StatusBadge phase={phase} />}
        </h2>
        <button className="icon-button" title="Close" onClick={() => navigate("/jobs")}>
          ×
        </button>
      </div>
      {error && !job && <div className="banner banner-error">{error}</div>}
      {job && (
        <>
          <dl className="facts">
            <dt>Namespace</dt>
            <dd>{job.metadata.namespace ?? "—"}</dd>
            <dt>Created</dt>
            <dd>{timestamp(job.metadata.creationTimestamp)}</dd>
            <dt>Started</dt>
            <dd>{timestamp(job.status?.startTime)}</dd>
            <dt>Completed</dt>
            <dd>{timestamp(job.status?.completionTime)}</dd>
            <dt>Attempts</dt>
            <dd>{job.status?.attempts ?? "—"}</dd>
            <dt>Exit code</dt>
            <dd>{job.status?.exitCode ?? "—"}</dd>
          </dl>

          <h3>Spec</h3>
          <pre className="code" data-testid="job-spec">
            {JSON.stringify(job.spec ?? {}, null, 2)}
          </pre>

          <h3>Conditions</h3>
          {conditions.length === 0 ? (
            <p className="muted small">No conditions.</p>
          ) : (
            <ConditionsTable conditions={conditions} now={now} />
          )}

          {kind.hasLogs !== false && (
            <>
              <h3>Logs</h3>
              <LogViewer url={`${url}/log`} follow={running} />
            </>
          )}
        </>
      )}
    </aside>
  );
}
