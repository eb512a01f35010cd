import { ALL_NAMESPACES, type KindInfo, type Resource, keyOf } from "../api";
import { ErrorBanner, ListTable, LivePill, PageHead } from "../components/PagePieces";
import { StatusBadge } from "../components/StatusBadge";
import { runPath } from "../components/pipelineTypes";
import { age, created, lastCondition, phaseOf } from "../format";
import { navigate } from "../router";
import { useNow } from "../useNow";
import { useWatch } from "../useWatch";

const MAX_ROWS = 50;
const PHASE_CARDS = ["Running", "Succeeded", "Failed", "Pending"] as const;

const EMPTY_KINDS: KindInfo[] = [];

export function HomePage({ kinds, namespace }: { kinds: KindInfo[] | null; namespace: string }) {
  const watched = kinds ?? EMPTY_KINDS;
  const { items, loading, errors, live } = useWatch(watched, namespace);
  const now = useNow(1000);

  const counts: Record<string, number> = {};
  for (const r of items) {
    const p = phaseOf(r);
    counts[p] = (counts[p] ?? 0) + 1;
  }
  const rows = [...items]
    .sort(
      (a, b) =>
        created(b) - created(a) ||
        Number(b.metadata.resourceVersion ?? 0) - Number(a.metadata.resourceVersion ?? 0),
    )
    .slice(0, MAX_ROWS);
  const allNs = namespace === ALL_NAMESPACES;

  const open = (r: Resource) => {
    const ns = r.metadata.namespace ?? "default";
    if (r.kind === "Job") {
      navigate(`/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(r.metadata.name)}`);
    } else if (r.kind === "PipelineRun") {
      navigate(runPath(ns, r.metadata.name));
    } else if (r.kind === "InferenceService") {
      navigate(`/serving?service=${encodeURIComponent(`${ns}/${r.metadata.name}`)}`);
    }
  };

  return (
    <div className="page">
      <PageHead title="Home">
        <LivePill live={live} />
      </PageHead>

      <section className="cards" aria-label="Resources by phase">
        {PHASE_CARDS.map((p) => (
          <div key={p} className={`card card-${p.toLowerCase()}`} data-phase-count={p}>
            <div className="card-label">{p}</div>
            <div className="card-value">{counts[p] ?? 0}</div>
          </div>
        ))}
      </section>

      <ErrorBanner errors={errors} stacked />

      <ListTable
        testId="recent-activity"
        rows={rows.length}
        loading={loading || kinds === null}
        empty={<>No resources yet — try <code>ketch apply -f examples/hello-job.yaml</code></>}
        header={
          <div className="panel-head">
            <h2>Recent activity</h2>
            <span className="muted small">
              {items.length > MAX_ROWS ? `newest ${MAX_ROWS} of ${items.length}` : `${items.length} resources`}
            </span>
          </div>
        }
        columns={
          <>
            <th>Kind</th>
            <th>Name</th>
            <th>Namespace</th>
            <th>Phase</th>
            <th>Age</th>
            <th>Last condition</th>
          </>
        }
      >
        {rows.map((r) => {
          const cond = lastCondition(r);
          const clickable = r.kind === "Job";
          return (
            <tr
              key={keyOf(r)}
              data-kind={r.kind}
              data-name={r.metadata.name}
              data-namespace={r.metadata.namespace ?? ""}
              className={clickable ? "clickable" : undefined}
              onClick={clickable ? () => open(r) : undefined}
            >
              <td className="kind-cell">{r.kind}</td>
              <td className="name-cell">{r.metadata.name}</td>
              <td className={allNs ? undefined : "muted"}>{r.metadata.namespace ?? "—"}</td>
              <td>
                <StatusBadge phase={phaseOf(r)} />
              </td>
              <td className="nowrap" title={r.metadata.creationTimestamp}>
                {age(r.metadata.creationTimestamp, now)}
              </td>
              <td className="cond-cell">
                {cond ? (
                  <>
                    <span className="cond-reason">{cond.reason || cond.type}</span>
                    {cond.message && <span className="cond-message">{cond.message}</span>}
                  </>
                ) : (
                  <span className="muted">—</span>
                )}
              </td>
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}
