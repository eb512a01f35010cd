import { ALL_NAMESPACES, type KindInfo, type Resource, keyOf } from "./api";
import { ErrorBanner, ListTable, LivePill, OneLineMessage, PageHead, StateCell } from "./PagePieces";
import { age, created, lastCondition } from "./format";
import { stateOf } from "./resourceState";
import { navigate } from "./router";
import type { PageRef } from "./routes";
import { useNow } from "./useNow";
import { useWatch } from "./useWatch";

const MAX_ROWS = 50;
const PHASE_CARDS = ["Running", "Succeeded", "Failed", "Pending"] as const;

const EMPTY_KINDS: KindInfo[] = [];

export function HomePage({
  kinds,
  namespace,
  pageOf,
}: {
  kinds: KindInfo[] | null;
  namespace: string;
  /** The object's own page (from the route table), or null: its row opens nothing. */
  pageOf: (r: Resource) => PageRef | null;
}) {
  const watched = kinds ?? EMPTY_KINDS;
  const { items, loading, errors, live } = useWatch(watched, namespace);
  const now = useNow(1000);

  const counts: Record<string, number> = {};
  for (const r of items) {
    const p = r.status?.phase;
    if (p) counts[p] = (counts[p] ?? 0) + 1;
  }
  const rows = [...items]
    .sort(
      (a, b) =>
        created(b) - created(a) ||
        Number(b.metadata.resourceVersion ?? 0) - Number(a.metadata.resourceVersion ?? 0),
    )
    .slice(0, MAX_ROWS);
  const allNs = namespace === ALL_NAMESPACES;

  const open = (page: PageRef) => {
    const query = new URLSearchParams(window.location.search);
    for (const [k, v] of Object.entries(page.query ?? {})) query.set(k, v);
    navigate(page.path, { query });
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
            <th>State</th>
            <th>Age</th>
            <th>Last condition</th>
          </>
        }
      >
        {rows.map((r) => {
          const cond = lastCondition(r);
          const page = pageOf(r);
          return (
            <tr
              key={keyOf(r)}
              data-kind={r.kind}
              data-name={r.metadata.name}
              data-namespace={r.metadata.namespace ?? ""}
              className={page ? "clickable" : undefined}
              onClick={page ? () => open(page) : undefined}
            >
              <td className="kind-cell">{r.kind}</td>
              <td className="name-cell">{r.metadata.name}</td>
              <td className={allNs ? undefined : "muted"}>{r.metadata.namespace ?? "—"}</td>
              <StateCell state={stateOf(r, items)} />
              <td className="nowrap" title={r.metadata.creationTimestamp ?? undefined}>
                {age(r.metadata.creationTimestamp, now)}
              </td>
              <td className="cond-cell">
                {cond ? (
                  <OneLineMessage reason={cond.reason || cond.type} message={cond.message} />
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
