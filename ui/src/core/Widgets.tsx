// Small pieces every component's pages share: in-app links, copy buttons, fact lists.
import { type MouseEvent, type ReactNode, useEffect, useRef, useState } from "react";
import { hrefFor, navigate } from "./router";

/** In-app link: a real href (open in new tab works), history navigation on click. */
export function Link({
  to,
  children,
  className,
  testId,
}: {
  to: string;
  children: ReactNode;
  className?: string;
  testId?: string;
}) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    e.stopPropagation();
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a className={className} href={hrefFor(to)} onClick={onClick} data-testid={testId}>
      {children}
    </a>
  );
}

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-http dashboards (not localhost) have no async clipboard API.
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.setAttribute("readonly", "");
  ta.style.position = "fixed";
  ta.style.opacity = "0";
  document.body.appendChild(ta);
  ta.select();
  try {
    if (!document.execCommand("copy")) throw new Error("copy refused");
  } finally {
    document.body.removeChild(ta);
  }
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  return (
    <button
      type="button"
      className="button small"
      onClick={() => {
        copyText(text)
          .then(() => setState("copied"))
          .catch(() => setState("failed"));
        window.clearTimeout(timer.current);
        timer.current = window.setTimeout(() => setState("idle"), 1800);
      }}
    >
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : label}
    </button>
  );
}

/** Detail fields (a model, a run, a service): label on the left, value on the right. */
export function Facts({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <dl className="facts">
      {rows.map(([k, v]) => (
        <FactRow key={k} label={k} value={v} />
      ))}
    </dl>
  );
}

function FactRow({ label, value }: { label: string; value: ReactNode }) {
  const empty = value === undefined || value === null || value === "";
  return (
    <>
      <dt>{label}</dt>
      <dd data-fact={label}>{empty ? <span className="muted">—</span> : value}</dd>
    </>
  );
}
