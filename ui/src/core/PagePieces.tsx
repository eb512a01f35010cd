// Pieces every resource page draws the same way: the head with its title and
// live pill, breadcrumbs, the watch-error banner, a list table inside its panel
// (with the loading/empty state), an "N ago" cell and a conditions table.
// One copy here keeps the classes and test ids the pages and e2e tests rely on
// identical everywhere.
import type { ReactNode } from "react";
import type { Condition } from "./api";
import { age, timestamp } from "./format";
import { lastLine } from "./messages";
import type { ResourceState } from "./resourceState";
import { StatusBadge } from "./StatusBadge";

/** `<div class="page-head">` with the page's title and whatever goes beside it. */
export function PageHead({ title, children }: { title: ReactNode; children?: ReactNode }) {
  return (
    <div className="page-head">
      <h1>{title}</h1>
      {children}
    </div>
  );
}

/** "Live" while the page's watch is connected, "Connecting" otherwise. */
export function LivePill({ live }: { live: boolean }) {
  return (
    <span className={`live-pill${live ? " on" : ""}`} title={live ? "Watching for changes" : "Connecting…"}>
      <span className="live-dot" aria-hidden="true" />
      {live ? "Live" : "Connecting"}
    </span>
  );
}

/** Breadcrumbs of a detail page: the link back to the list, then the namespace. */
export function Crumbs({ namespace, children }: { namespace: string; children: ReactNode }) {
  return (
    <div className="crumbs">
      {children}
      <span className="crumb-sep">/</span>
      <span>{namespace}</span>
    </div>
  );
}

/**
 * The errors of a page's watch in one banner, joined by "; " or `stacked` one
 * per line; nothing when there are none.
 */
export function ErrorBanner({ errors, stacked = false }: { errors: string[]; stacked?: boolean }) {
  if (errors.length === 0) return null;
  return (
    <div className="banner banner-error">{stacked ? errors.map((e) => <div key={e}>{e}</div>) : errors.join("; ")}</div>
  );
}

/**
 * A list page's table in its panel. With no rows it shows "Loading…" while the
 * first list is on its way, then `empty` (which says how to make one).
 */
export function ListTable({
  testId,
  rows,
  loading,
  empty,
  columns,
  header,
  footer,
  children,
}: {
  testId?: string;
  rows: number;
  loading: boolean;
  empty: ReactNode;
  /** The header cells (`<th>`s). */
  columns: ReactNode;
  /** Drawn above the table inside the panel (a panel head). */
  header?: ReactNode;
  /** Drawn below the table inside the panel (a "Show more" button). */
  footer?: ReactNode;
  /** The body rows (`<tr>`s). */
  children: ReactNode;
}) {
  return (
    <section className="panel">
      {header}
      {rows === 0 ? (
        <div className="empty-state">{loading ? "Loading…" : empty}</div>
      ) : (
        <div className="table-scroll">
          <table className="table" data-testid={testId}>
            <thead>
              <tr>{columns}</tr>
            </thead>
            <tbody>{children}</tbody>
          </table>
        </div>
      )}
      {footer}
    </section>
  );
}

/**
 * A status message in a table row: one line, its last (a traceback's exception
 * line), cut with an ellipsis; the whole message in the title tooltip. Detail
 * pages show the whole message.
 */
export function OneLineMessage({ reason, message }: { reason?: string; message?: string | null }) {
  const line = lastLine(message);
  const full = [reason, message].filter(Boolean).join(": ");
  return (
    <div className="one-line" title={full} data-testid="one-line-message">
      {reason && <span className="cond-reason">{reason}</span>}
      {line && <span className="cond-message">{line}</span>}
    </div>
  );
}

/** A resource's state in a list: a badge for a phase, else muted text. */
export function StateCell({ state }: { state: ResourceState }) {
  return (
    <td data-state={state.phase ?? state.text ?? ""}>
      {state.phase ? <StatusBadge phase={state.phase} /> : <span className="muted">{state.text ?? "—"}</span>}
    </td>
  );
}

/** A table cell "5m ago" (full time on hover), "—" when there is no time. */
export function AgoCell({ ts, now, ago = true }: { ts: string | null | undefined; now: number; ago?: boolean }) {
  return (
    <td className="nowrap" title={timestamp(ts)}>
      {ts ? `${age(ts, now)}${ago ? " ago" : ""}` : "—"}
    </td>
  );
}

/** An object's status conditions, one row each, newest change as "N ago". */
export function ConditionsTable({ conditions, now, testId }: { conditions: Condition[]; now: number; testId?: string }) {
  return (
    <div className="table-scroll">
      <table className="table compact" data-testid={testId}>
        <thead>
          <tr>
            <th>Type</th>
            <th>Status</th>
            <th>Reason</th>
            <th>Message</th>
            <th>Changed</th>
          </tr>
        </thead>
        <tbody>
          {conditions.map((c) => (
            <tr key={c.type} data-condition={c.type}>
              <td>{c.type}</td>
              <td>{c.status}</td>
              <td>{c.reason || "—"}</td>
              <td className="wrap">{c.message ?? ""}</td>
              <AgoCell ts={c.lastTransitionTime} now={now} />
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
