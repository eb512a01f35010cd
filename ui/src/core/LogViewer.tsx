import { useEffect, useRef, useState } from "react";
import { ApiError, fetchLog, streamLog } from "./api";
import { useChanged } from "./useChanged";

/** Text the page already shows elsewhere: folded where the log ends with it. */
export interface LogFold {
  text: string;
  /** What the folded text is, e.g. "the traceback, shown under Failure". */
  label: string;
}

/**
 * Shows a resource's log. While `follow` is true the log is streamed
 * (`?follow=true`, read chunk by chunk) and appended as it arrives; when it
 * turns false (the run finished) the whole log is fetched once more. A `fold`
 * found in the finished log is collapsed behind a toggle (nothing is dropped).
 */
export function LogViewer({ url, follow, fold }: { url: string; follow: boolean; fold?: LogFold }) {
  const [text, setText] = useState("");
  const [unfolded, setUnfolded] = useState(false);
  const [status, setStatus] = useState<"loading" | "streaming" | "done" | "error">(follow ? "streaming" : "loading");
  const [error, setError] = useState<string | null>(null);
  const preRef = useRef<HTMLPreElement>(null);
  const stickRef = useRef(true);

  if (useChanged(`${follow}\n${url}`)) {
    setError(null);
    if (follow) {
      setText("");
      setStatus("streaming");
    } else {
      setStatus("loading");
    }
  }

  useEffect(() => {
    const controller = new AbortController();
    if (follow) {
      streamLog(url, (chunk) => setText((t) => t + chunk), controller.signal)
        .then(() => !controller.signal.aborted && setStatus("done"))
        .catch((e: Error) => {
          if (controller.signal.aborted) return;
          setStatus("error");
          setError(e.message);
        });
    } else {
      fetchLog(url, controller.signal)
        .then((t) => {
          setText(t);
          setStatus("done");
        })
        .catch((e: Error) => {
          if (controller.signal.aborted) return;
          setText("");
          if (e instanceof ApiError && e.code === 404) {
            setStatus("done");
            return;
          }
          setStatus("error");
          setError(e.message);
        });
    }
    return () => controller.abort();
  }, [url, follow]);

  // Keep scrolled to the bottom while new text arrives, unless the user
  // scrolled up.
  useEffect(() => {
    const el = preRef.current;
    if (el && stickRef.current) el.scrollTop = el.scrollHeight;
  }, [text]);

  const foldAt = fold && status === "done" ? text.lastIndexOf(fold.text) : -1;
  const folded = foldAt >= 0 && !unfolded;
  const foldLines = foldAt >= 0 ? text.slice(foldAt).replace(/\n+$/, "").split("\n").length : 0;

  return (
    <div className="log-viewer">
      <div className="log-toolbar">
        <span className="muted small">
          {status === "streaming" ? "Streaming…" : status === "loading" ? "Loading…" : ""}
        </span>
      </div>
      {error && <div className="banner banner-error">{error}</div>}
      <pre
        ref={preRef}
        className="log"
        data-testid="job-logs"
        onScroll={(e) => {
          const el = e.currentTarget;
          stickRef.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {folded ? text.slice(0, foldAt) : text || (status === "done" ? <span className="muted">No log output.</span> : "")}
        {foldAt >= 0 && fold && (
          <button type="button" className="log-fold" onClick={() => setUnfolded((v) => !v)} data-testid="log-fold">
            {unfolded ? `hide ${fold.label}` : `… ${foldLines} lines: ${fold.label} (show)`}
          </button>
        )}
      </pre>
    </div>
  );
}
