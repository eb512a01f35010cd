// List + watch one or more kinds, keeping a live map of resources.
//
// List each kind (to render at once and learn its resourceVersion), then open
// ONE EventSource on /api/ketch/watch for all of them from the earliest
// resourceVersion, and apply ADDED / MODIFIED / DELETED in place (replays of
// older versions are dropped). If the stream breaks, every kind is re-listed
// and re-watched after a short back-off, so no event is lost across reconnects.
import { useEffect, useMemo, useReducer, useState } from "react";
import {
  ALL_NAMESPACES,
  type KindInfo,
  type Resource,
  type WatchEvent,
  keyOf,
  listResources,
} from "./api";

function apiVersionOf(kind: KindInfo): string {
  return kind.group ? `${kind.group}/${kind.version}` : kind.version;
}

type Action =
  | { type: "reset" }
  | { type: "replaceKind"; kind: string; apiVersion: string; items: Resource[] }
  | { type: "event"; event: WatchEvent };

type State = Map<string, Resource>;

function reducer(state: State, action: Action): State {
  switch (action.type) {
    case "reset":
      return new Map();
    case "replaceKind": {
      // By apiVersion too: two groups may each have a kind of one name (Katib's and
      // KFP's Experiment), and one's list must not drop the other's objects.
      const next = new Map<string, Resource>();
      for (const [k, v] of state) {
        if (v.kind !== action.kind || v.apiVersion !== action.apiVersion) next.set(k, v);
      }
      for (const item of action.items) {
        const full = {
          ...item,
          kind: item.kind || action.kind,
          apiVersion: item.apiVersion || action.apiVersion,
        };
        next.set(keyOf(full), full);
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

/** One stream for every kind: a browser allows six connections per host. */
function multiWatchUrl(kinds: KindInfo[], namespace: string, resourceVersion?: string): string {
  const params = new URLSearchParams({
    kinds: kinds.map((k) => (k.group ? `${k.plural}.${k.group}` : k.plural)).join(","),
  });
  if (namespace !== ALL_NAMESPACES) params.set("namespace", namespace);
  if (resourceVersion) params.set("resourceVersion", resourceVersion);
  return `/api/ketch/watch?${params.toString()}`;
}

export function useWatch(kinds: KindInfo[], namespace: string): WatchState {
  const [state, dispatch] = useReducer(reducer, undefined, () => new Map<string, Resource>());
  const [pending, setPending] = useState(0);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [live, setLive] = useState(false);
  const kindsKey = kinds.map((k) => `${k.group}/${k.version}/${k.plural}`).join(",");

  useEffect(() => {
    dispatch({ type: "reset" });
    setErrors({});
    setPending(kinds.length > 0 ? 1 : 0);
    setLive(false);
    if (kinds.length === 0) return;
    let cancelled = false;
    let source: EventSource | null = null;
    let timer: number | undefined;
    const controller = new AbortController();
    const byKind = new Set(kinds.map((k) => `${apiVersionOf(k)}/${k.kind}`));

    // List every kind (to render at once and learn where to watch from), then
    // follow all of them on one stream from the earliest list's resourceVersion.
    const start = async (attempt: number, first: boolean) => {
      const versions: number[] = [];
      let failed = false;
      await Promise.all(
        kinds.map(async (kind) => {
          const id = `${kind.group}/${kind.plural}`;
          try {
            const list = await listResources(kind, namespace, controller.signal);
            if (cancelled) return;
            dispatch({
              type: "replaceKind",
              kind: kind.kind,
              apiVersion: apiVersionOf(kind),
              items: list.items ?? [],
            });
            const rv = Number(list.metadata?.resourceVersion);
            if (Number.isFinite(rv)) versions.push(rv);
            setErrors((e) => {
              if (!(id in e)) return e;
              const { [id]: _drop, ...rest } = e;
              void _drop;
              return rest;
            });
          } catch (err) {
            if (cancelled) return;
            failed = true;
            setErrors((e) => ({ ...e, [id]: `${kind.kind}: ${(err as Error).message}` }));
          }
        }),
      );
      if (first && !cancelled) setPending(0);
      if (cancelled) return;
      if (failed) {
        schedule(attempt + 1);
        return;
      }
      const since = versions.length ? String(Math.min(...versions)) : undefined;
      const es = new EventSource(multiWatchUrl(kinds, namespace, since));
      source = es;
      let opened = false;
      es.onopen = () => {
        opened = true;
        setLive(true);
      };
      es.onmessage = (msg: MessageEvent<string>) => {
        let event: WatchEvent;
        try {
          event = JSON.parse(msg.data) as WatchEvent;
        } catch {
          return;
        }
        if (event.type === "ERROR" || !event.object) return;
        if (!event.object.kind && kinds.length === 1) event.object.kind = kinds[0]?.kind ?? "";
        const obj = event.object;
        if (obj.kind && obj.apiVersion && !byKind.has(`${obj.apiVersion}/${obj.kind}`)) return;
        dispatch({ type: "event", event });
      };
      es.onerror = () => {
        es.close();
        if (source === es) source = null;
        setLive(false);
        // A stream that had been working restarts quickly; one that never opened backs off.
        if (!cancelled) schedule(opened ? 0 : attempt + 1);
      };
    };

    const schedule = (attempt: number) => {
      const delay = Math.min(15000, 1000 * 2 ** Math.min(attempt, 4));
      timer = window.setTimeout(() => {
        timer = undefined;
        if (!cancelled) void start(attempt, false);
      }, delay);
    };

    void start(0, true);

    return () => {
      cancelled = true;
      controller.abort();
      source?.close();
      if (timer !== undefined) window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [kindsKey, namespace]);

  const items = useMemo(() => Array.from(state.values()), [state]);
  return {
    items,
    loading: pending > 0,
    errors: Object.values(errors),
    live: kinds.length > 0 && live,
  };
}
