// Watch one object live: list it by `fieldSelector=metadata.name=NAME` (which
// gives the resourceVersion to start from), then follow the watch stream for
// that name only. A broken stream is re-listed and re-opened after a back-off.
import { useEffect, useState } from "react";
import { useChanged } from "./useChanged";
import { type KindInfo, type Resource, type ResourceList, type WatchEvent, collectionUrl, getJSON } from "./api";

export interface ResourceState {
  object: Resource | null;
  error: string | null;
  loading: boolean;
  /** True when the object does not exist (listed, not found). */
  missing: boolean;
}

export function useResource(kind: KindInfo, namespace: string, name: string): ResourceState {
  const [state, setState] = useState<ResourceState>({ object: null, error: null, loading: true, missing: false });
  const base = collectionUrl(kind, namespace);
  if (useChanged(`${kind.kind}\n${base}\n${name}`)) {
    setState({ object: null, error: null, loading: true, missing: false });
  }

  useEffect(() => {
    let cancelled = false;
    let es: EventSource | null = null;
    let timer = 0;
    const controller = new AbortController();
    const selector = `metadata.name=${name}`;

    const start = async (attempt: number) => {
      let rv: string;
      try {
        const q = new URLSearchParams({ fieldSelector: selector });
        const list = await getJSON<ResourceList>(`${base}?${q.toString()}`, controller.signal);
        if (cancelled) return;
        const obj = list.items[0] ?? null;
        setState({ object: obj, error: null, loading: false, missing: obj === null });
        rv = list.metadata.resourceVersion ?? "";
      } catch (e) {
        if (cancelled) return;
        setState((s) => ({ ...s, error: (e as Error).message, loading: false }));
        retry(attempt + 1);
        return;
      }
      const q = new URLSearchParams({ watch: "true", fieldSelector: selector });
      if (rv) q.set("resourceVersion", rv);
      es = new EventSource(`${base}?${q.toString()}`);
      let opened = false;
      es.onopen = () => {
        opened = true;
      };
      es.onmessage = (msg: MessageEvent<string>) => {
        let ev: WatchEvent;
        try {
          ev = JSON.parse(msg.data) as WatchEvent;
        } catch {
          return;
        }
        if (ev.object?.metadata?.name !== name) return;
        if (ev.type === "DELETED") setState({ object: null, error: null, loading: false, missing: true });
        else if (ev.type === "ADDED" || ev.type === "MODIFIED") {
          setState((s) => {
            const pv = Number(s.object?.metadata.resourceVersion);
            const nv = Number(ev.object.metadata.resourceVersion);
            if (s.object && Number.isFinite(pv) && Number.isFinite(nv) && nv < pv) return s;
            return { object: { ...ev.object, kind: ev.object.kind || kind.kind }, error: null, loading: false, missing: false };
          });
        }
      };
      es.onerror = () => {
        es?.close();
        es = null;
        if (!cancelled) retry(opened ? 0 : attempt + 1);
      };
    };

    const retry = (attempt: number) => {
      const delay = Math.min(15000, 1000 * 2 ** Math.min(attempt, 4));
      timer = window.setTimeout(() => {
        if (!cancelled) void start(attempt);
      }, delay);
    };

    void start(0);
    return () => {
      cancelled = true;
      controller.abort();
      es?.close();
      window.clearTimeout(timer);
    };
  }, [base, name, kind.kind]);

  return state;
}
