import { type ComponentInfo, keyOf } from "../api";
import { ErrorBanner, ListTable, PageHead } from "../components/PagePieces";
import { StatusBadge } from "../components/StatusBadge";
import { age, created, lastCondition, phaseOf } from "../format";
import { useNow } from "../useNow";
import { useWatch } from "../useWatch";

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
            <th>Phase</th>
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
              <td>
                <StatusBadge phase={phaseOf(r)} />
              </td>
              <td>{age(r.metadata.creationTimestamp, now)}</td>
              <td className="cond-cell">{c ? `${c.reason ?? c.type}${c.message ? `: ${c.message}` : ""}` : "—"}</td>
            </tr>
          );
        })}
      </ListTable>
    </div>
  );
}
