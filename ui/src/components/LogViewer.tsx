import { useEffect, useRef, useState } from "react";
import { ApiError, fetchLog, streamLog } from "../api";

/**
 * Shows a resource's log. While `follow` is true the log is streamed
 * (`?follow=true`, read chunk by chunk) and appended as it arrives; when it
 * turns false (the run finished) the whole log is fetched once more.
 */
export function LogViewer({ url, follow }: { url: string; follow: boolean }) {
  const [text, setText] = useState("");
  const [status, setStatus] = useState<"loading" | "streaming" | "done" | "error">("loading");
  const [error, setError] = useState<string | null>(null);
  const preRef = useRef<HTMLPreElement>(null);
  const stickRef = useRef(true);

  useEffect(() => {
    const controller = new AbortController();
    setError(null);
    if (follow) {
      setText("");
      setStatus("streaming");
      streamLog(url, (chunk) => setText((t) => t + chunk), controller.signal)
        .then(() => !controller.signal.aborted && setStatus("done"))
        .catch((e: Error) => {
          if (controller.signal.aborted) return;
          setStatus("error");
          setError(e.message);
        });
    } else {
      setStatus("loading");
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
        {text || (status === "done" ? <span className="muted">No log output.</span> : "")}
      </pre>
    </div>
  );
}
