// List + watch one or more kinds, keeping a live map of resources.
//
// For each kind: list the collection (to render at once and learn the
// resourceVersion), then open one EventSource on the watch URL from that
// resourceVersion and apply ADDED / MODIFIED / DELETED in place. If the
// stream breaks, it is closed and the kind is re-listed and re-watched
// after a short back-off, so no event is lost across reconnects.
import { useEffect, useMemo, useReducer, useState } from "react";
import {
  type KindInfo,
  type Resource,
  type WatchEvent,
  keyOf,
  listResources,
  watchUrl,
} from "./api";

type Action =
  | { type: "reset" }
  | { type: "replaceKind"; kind: string; items: Resource[] }
  | { type: "event"; event: WatchEvent };

type State = Map<string, Resource>;

function reducer(state: State, action: Action): State {
  switch (action.type) {
    case "reset":
      return new Map();
    case "replaceKind": {
      const next = new Map<string, Resource>();
      for (const [k, v] of state) if (v.kind !== action.kind) next.set(k, v);
      for (const item of action.items) {
        next.set(keyOf({ ...item, kind: item.kind || action.kind }), {
          ...item,
          kind: item.kind || action.kind,
        });
      }
      return next;
    }
    case "event": {
      const { type, object } = action.event;
      if (!object?.metadata?.name) return state;
      const key = keyOf(object);
      if (type === "DELETED") {
        if (!state.has(key)) return state;
        const next = new Map(state);
        next.delete(key);
        return next;
      }
      if (type === "ADDED" || type === "MODIFIED") {
        const prev = state.get(key);
        // Ignore stale replays (older resourceVersion than what we hold).
        const pv = Number(prev?.metadata.resourceVersion);
        const nv = Number(object.metadata.resourceVersion);
        if (prev && Number.isFinite(pv) && Number.isFinite(nv) && nv < pv) return state;
        const next = new Map(state);
        next.set(key, object);
        return next;
      }
      return state;
    }
  }
}

export interface WatchState {
  items: Resource[];
  loading: boolean;
  errors: string[];
  live: boolean;
}

export function useWatch(kinds: KindInfo[], namespace: string): WatchState {
  const [state, dispatch] = useReducer(reducer, undefined, () => new Map<string, Resource>());
  const [pending, setPending] = useState(0);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [liveCount, setLiveCount] = useState(0);
  const kindsKey = kinds.map((k) => `${k.group}/${k.version}/${k.plural}`).join(",");

  useEffect(() => {
    dispatch({ type: "reset" });
    setErrors({});
    setPending(kinds.length);
    setLiveCount(0);
    let cancelled = false;
    const sources = new Map<string, EventSource>();
    const timers = new Set<number>();
    const controller = new AbortController();

    const start = async (kind: KindInfo, attempt: number, first: boolean) => {
      const id = `${kind.group}/${kind.plural}`;
      let rv: string | undefined;
      try {
        const list = await listResources(kind, namespace, controller.signal);
        if (cancelled) return;
        dispatch({ type: "replaceKind", kind: kind.kind, items: list.items ?? [] });
        rv = list.metadata?.resourceVersion || undefined;
        setErrors((e) => {
          if (!(id in e)) return e;
          const { [id]: _drop, ...rest } = e;
          void _drop;
          return rest;
        });
      } catch (err) {
        if (cancelled) return;
        setErrors((e) => ({ ...e, [id]: `${kind.kind}: ${(err as Error).message}` }));
        schedule(kind, attempt + 1);
        return;
      } finally {
        if (first && !cancelled) setPending((p) => Math.max(0, p - 1));
      }

      const es = new EventSource(watchUrl(kind, namespace, rv));
      sources.set(id, es);
      let opened = false;
      es.onopen = () => {
        opened = true;
        setLiveCount((n) => n + 1);
      };
      es.onmessage = (msg: MessageEvent<string>) => {
        let event: WatchEvent;
        try {
          event = JSON.parse(msg.data) as WatchEvent;
        } catch {
          return;
        }
        if (event.type === "ERROR") return;
        if (event.object && !event.object.kind) event.object.kind = kind.kind;
        dispatch({ type: "event", event });
      };
      es.onerror = () => {
        es.close();
        if (sources.get(id) === es) sources.delete(id);
        const wasOpen = opened;
        opened = false;
        if (wasOpen) setLiveCount((n) => Math.max(0, n - 1));
        // A stream that had been working restarts quickly; one that never
        // opened backs off.
        if (!cancelled) schedule(kind, wasOpen ? 0 : attempt + 1);
      };
    };

    const schedule = (kind: KindInfo, attempt: number) => {
      const delay = Math.min(15000, 1000 * 2 ** Math.min(attempt, 4));
      const t = window.setTimeout(() => {
        timers.delete(t);
        if (!cancelled) void start(kind, attempt, false);
      }, delay);
      timers.add(t);
    };

    for (const kind of kinds) void start(kind, 0, true);

    return () => {
      cancelled = true;
      controller.abort();
      for (const es of sources.values()) es.close();
      for (const t of timers) window.clearTimeout(t);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [kindsKey, namespace]);

  const items = useMemo(() => Array.from(state.values()), [state]);
  return {
    items,
    loading: pending > 0,
    errors: Object.values(errors),
    live: kinds.length > 0 && liveCount >= kinds.length,
  };
}
