import { type ComponentInfo, keyOf } from "./api";
import { ErrorBanner, ListTable, OneLineMessage, PageHead, StateCell } from "./PagePieces";
import { age, created, lastCondition } from "./format";
import { stateOf } from "./resourceState";
import { useNow } from "./useNow";
import { useWatch } from "./useWatch";

const NO_KINDS: ComponentInfo["kinds"] = [];

/** Generic live list for a component that has no dedicated page yet. */
export function KindPage({
  title,
  component,
  namespace,
}: {
  title: string;
  component: ComponentInfo | null;
  namespace: string;
}) {
  const { items, loading, errors } = useWatch(component?.kinds ?? NO_KINDS, namespace);
  const now = useNow(1000);
  const rows = [...items].sort((a, b) => created(b) - created(a));
  return (
    <div className="page">
      <PageHead title={title}>
        {component?.description && <span className="muted small">{component.description}</span>}
      </PageHead>
      <ErrorBanner errors={errors} />
      <ListTable
        rows={rows.length}
        loading={loading}
        empty="Nothing here yet."
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
          const c = lastCondition(r);
          return (
            <tr key={keyOf(r)} data-name={r.metadata.name}>
              <td>{r.kind}</td>
              <td className="name-cell">{r.metadata.name}</td>
              <td>{r.metadata.namespace ?? "—"}</td>
              <StateCell state={stateOf(r, items)} />
              <td>{age(r.metadata.creationTimestamp, now)}</td>
              <td className="cond-cell">{c ? <OneLineMessage reason={c.reason || c.type} message={c.message} /> : "—"}</td>
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}
