// Typed access to the ketch server API (Kubernetes-style resource API).

import type { components } from "./openapi";

// The server's answers, as ui/src/core/openapi.ts (generated from /openapi.json by
// ui/scripts/openapi_types.py, `make ui-types`) declares them.
type Schemas = components["schemas"];

/** A kind as /api/ketch/kinds (and each component in /api/ketch/components) lists it. */
export type KindEntry = Schemas["KindEntry"];

/**
 * What the dashboard needs of a kind to reach its routes. Pages name their own kinds
 * (they work before discovery answers), so only these fields of KindEntry are required.
 */
export type KindInfo = Pick<KindEntry, "group" | "version" | "kind" | "plural" | "namespaced"> &
  Partial<Pick<KindEntry, "hasLogs" | "shortNames">>;

export type ComponentInfo = Schemas["ComponentEntry"];

export type Condition = Schemas["Condition"];

export type ObjectMeta = Schemas["ObjectMeta"];

/** A kind list's metadata (resourceVersion, continue). */
export type ListMeta = Schemas["ListMeta"];

/**
 * The status fields the kind-agnostic pages read. Each kind's status has its own
 * generated type (Schemas["JobStatus"], ...); this is their common narrow view.
 */
export interface ResourceStatus {
  phase?: string;
  attempts?: number;
  exitCode?: number | null;
  startTime?: string | null;
  completionTime?: string | null;
  conditions?: Condition[];
  [key: string]: unknown;
}

/** An object of any kind: the generated envelope, spec and status left open. */
export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: ResourceStatus;
}

/** A list of any kind (the generated `{Kind}List` schemas, items left open). */
export interface ResourceList {
  kind: string;
  apiVersion: string;
  metadata: ListMeta;
  items: Resource[];
}

export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: Resource;
}

/** The namespace-selector value meaning "every namespace". */
export const ALL_NAMESPACES = "_all";

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(message: string, code: number, reason: string) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.reason = reason;
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let reason = "";
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text) as { message?: string; reason?: string };
      if (body.message) message = body.message;
      if (body.reason) reason = body.reason;
    } catch {
      if (text.trim()) message = text.trim().slice(0, 300);
    }
  } catch {
    /* keep the status line */
  }
  return new ApiError(message, res.status, reason);
}

export async function getJSON<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url, { headers: { Accept: "application/json" }, signal });
  if (!res.ok) throw await errorFrom(res);
  return (await res.json()) as T;
}

/** Where a kind's API lives: the core group ("") under /api, every other under /apis. */
function groupVersionUrl(kind: KindInfo): string {
  return kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
}

/** URL of a kind's collection in `namespace` (or across all namespaces). */
export function collectionUrl(kind: KindInfo, namespace: string): string {
  const base = groupVersionUrl(kind);
  if (!kind.namespaced || namespace === ALL_NAMESPACES) return `${base}/${kind.plural}`;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}`;
}

export function objectUrl(kind: KindInfo, namespace: string, name: string): string {
  const base = groupVersionUrl(kind);
  const enc = encodeURIComponent(name);
  if (!kind.namespaced) return `${base}/${kind.plural}/${enc}`;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${kind.plural}/${enc}`;
}

export function listResources(
  kind: KindInfo,
  namespace: string,
  signal?: AbortSignal,
): Promise<ResourceList> {
  return getJSON<ResourceList>(collectionUrl(kind, namespace), signal);
}

export function watchUrl(kind: KindInfo, namespace: string, resourceVersion?: string): string {
  const params = new URLSearchParams({ watch: "true" });
  if (resourceVersion) params.set("resourceVersion", resourceVersion);
  return `${collectionUrl(kind, namespace)}?${params.toString()}`;
}

export async function fetchComponents(): Promise<ComponentInfo[]> {
  const body = await getJSON<Schemas["ComponentList"]>("/api/ketch/components");
  return body.items ?? [];
}

export async function fetchKinds(): Promise<KindEntry[]> {
  const body = await getJSON<Schemas["KindList"]>("/api/ketch/kinds");
  return body.items ?? [];
}

export async function fetchNamespaces(): Promise<string[]> {
  const body = await getJSON<Schemas["NamespaceList"]>("/api/v1/namespaces");
  return (body.items ?? []).map((n) => n.metadata.name);
}

/** Fetch a finished log in one go. */
export async function fetchLog(url: string, signal?: AbortSignal): Promise<string> {
  const res = await fetch(url, { headers: { Accept: "text/plain" }, signal });
  if (!res.ok) throw await errorFrom(res);
  return res.text();
}

/**
 * Stream a log (`?follow=true`), calling `onChunk` with each decoded piece of
 * text as it arrives. Resolves when the server closes the stream.
 */
export async function streamLog(
  url: string,
  onChunk: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const sep = url.includes("?") ? "&" : "?";
  const res = await fetch(`${url}${sep}follow=true`, {
    headers: { Accept: "text/plain" },
    signal,
  });
  if (!res.ok) throw await errorFrom(res);
  if (!res.body) {
    onChunk(await res.text());
    return;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      if (text) onChunk(text);
    }
    const tail = decoder.decode();
    if (tail) onChunk(tail);
  } finally {
    reader.releaseLock();
  }
}

export function keyOf(r: Resource): string {
  // apiVersion too: a kind name can be in two groups (Katib's and KFP's Experiment).
  return `${r.apiVersion}/${r.kind}/${r.metadata.namespace ?? ""}/${r.metadata.name}`;
}

// ---- Model Registry (upstream Kubeflow Model Registry REST API) ----------

export const REGISTRY_BASE = "/api/model_registry/v1";

/** One custom property (a typed value, discriminated by `metadataType`). */
export type MetadataValue = Schemas["MetadataValue"];

export type CustomProperties = Record<string, MetadataValue>;

export type RegistryState = NonNullable<Schemas["RegisteredModel"]["state"]>;

export type RegisteredModel = Schemas["RegisteredModel"];

export type ModelVersion = Schemas["ModelVersion"];

/** An artifact of any type (model, doc, dataset, metric, parameter), by `artifactType`. */
export type AnyArtifact = Schemas["ArtifactList"]["items"][number];

type KeysOfUnion<T> = T extends unknown ? keyof T : never;
type ValueInUnion<T, K extends PropertyKey> = T extends unknown ? (K extends keyof T ? T[K] : never) : never;

/**
 * An artifact of any type read as one shape: the fields every type has, and each
 * type's own fields (modelFormatName, digest, value...), there when it is of that type.
 */
export type Artifact = Pick<AnyArtifact, keyof AnyArtifact> & {
  [K in Exclude<KeysOfUnion<AnyArtifact>, keyof AnyArtifact>]?: ValueInUnion<AnyArtifact, K>;
};

/** One page of a registry list (every `{Entity}List` schema has this shape). */
export type RegistryList<T> = Omit<Schemas["RegisteredModelList"], "items"> & { items: T[] };

export interface ListParams {
  pageSize?: number;
  orderBy?: "CREATE_TIME" | "LAST_UPDATE_TIME" | "ID";
  sortOrder?: "ASC" | "DESC";
  nextPageToken?: string;
  filterQuery?: string;
}

/** URL of a registry route (`path` starts with "/"), with list parameters. */
export function registryUrl(path: string, params: ListParams = {}): string {
  const q = new URLSearchParams();
  if (params.pageSize !== undefined) q.set("pageSize", String(params.pageSize));
  if (params.orderBy) q.set("orderBy", params.orderBy);
  if (params.sortOrder) q.set("sortOrder", params.sortOrder);
  if (params.nextPageToken) q.set("nextPageToken", params.nextPageToken);
  if (params.filterQuery) q.set("filterQuery", params.filterQuery);
  const qs = q.toString();
  return `${REGISTRY_BASE}${path}${qs ? `?${qs}` : ""}`;
}

/** `url` (a registryUrl) asking for the page after `nextPageToken`. */
export function withPageToken(url: string, nextPageToken: string): string {
  const u = new URL(url, "http://dashboard");
  u.searchParams.set("nextPageToken", nextPageToken);
  return u.pathname + u.search;
}

export function getRegistryList<T>(
  path: string,
  params: ListParams,
  signal?: AbortSignal,
): Promise<RegistryList<T>> {
  return getRegistryListAt<T>(registryUrl(path, params), signal);
}

/** One page of a registry list at `url`, its paging fields filled in where the server left them out. */
export async function getRegistryListAt<T>(url: string, signal?: AbortSignal): Promise<RegistryList<T>> {
  const body = await getJSON<Partial<RegistryList<T>>>(url, signal);
  const items = body.items ?? [];
  return {
    items,
    nextPageToken: body.nextPageToken ?? "",
    pageSize: body.pageSize ?? 0,
    size: body.size ?? items.length,
  };
}

export function getRegisteredModel(id: string, signal?: AbortSignal): Promise<RegisteredModel> {
  return getJSON<RegisteredModel>(registryUrl(`/registered_models/${encodeURIComponent(id)}`), signal);
}

export function getModelVersion(id: string, signal?: AbortSignal): Promise<ModelVersion> {
  return getJSON<ModelVersion>(registryUrl(`/model_versions/${encodeURIComponent(id)}`), signal);
}

/** A double-quoted filterQuery string literal. */
export function filterString(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A backquoted filterQuery property name (custom properties). */
export function filterIdent(name: string): string {
  return `\`${name.replace(/\\/g, "\\\\")}\``;
}

// ---- writes, artifacts ----------------------------------------------------

/** JSON merge-patch an object (e.g. `{"spec": {"cancel": true}}`). */
export async function patchMerge<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorFrom(res);
  return (await res.json()) as T;
}

/** A raw POST whose answer is returned whatever its status (the try-it form shows errors too). */
export async function postRaw(
  url: string,
  body: string,
  signal?: AbortSignal,
): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body,
    signal,
  });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - t0 };
}

/** What an artifact URI is: a file (its size) or a directory (its first entries). */
export type ArtifactInfo = Schemas["ArtifactInfo"];

const ARTIFACTS = "/api/ketch/artifacts";

export function describeArtifact(uri: string, signal?: AbortSignal): Promise<ArtifactInfo> {
  return getJSON<ArtifactInfo>(`${ARTIFACTS}?${new URLSearchParams({ uri }).toString()}`, signal);
}

/** The first `maxBytes` of an artifact file as text, and whether there was more. */
export async function artifactText(
  uri: string,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<{ text: string; truncated: boolean }> {
  const q = new URLSearchParams({ uri, maxBytes: String(maxBytes) });
  const res = await fetch(`${ARTIFACTS}/content?${q.toString()}`, { signal });
  if (!res.ok) throw await errorFrom(res);
  return { text: await res.text(), truncated: res.headers.get("X-Ketch-Truncated") === "true" };
}

/** Create an object (POST to its collection); the server's error is thrown as ApiError. */
export async function postJSON<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorFrom(res);
  return (await res.json()) as T;
}
