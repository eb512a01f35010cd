"""``ketch.Client``: every resource operation over the REST API.

The same client serves the CLI, the SDK and tests, embedded (a background
control plane for this ``KETCH_HOME``, started on demand) or remote
(``KETCH_HOST``). Server errors come back as the same typed ``ketch.core.errors``.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ketch.client._facades import Delegate, MethodNames, build_facade
from ketch.core.codec import loads
from ketch.core.config import Settings
from ketch.core.errors import (
    FieldError,
    InvalidError,
    KetchError,
    UnavailableError,
    UnknownKindError,
    error_from_body,
)
from ketch.core.kinds import upstream_choice
from ketch.core.resources import DEFAULT_NAMESPACE, Resource, validate_name
from ketch.core.rest import WITHOUT_SPEC_HEADER, RestSession, connect

if TYPE_CHECKING:
    # Types only: at run time the client imports no component (the facades come from
    # their declarations), so no component's import of the client makes a cycle.
    from ketch.jobs.client import JobsClient
    from ketch.pipelines.client import PipelinesClient
    from ketch.pipelines.client import PipelinesClient as _Kfp
    from ketch.registry.client import ModelRegistry
    from ketch.serving.client import ServingClient
else:
    _Kfp = MethodNames()  # _Kfp.list_runs is "list_runs": the delegate's target by name

__all__ = ["Client", "KindRef", "ResourceList", "WatchEvent"]

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})
# The field manager this client's writes are recorded for in managedFields (`ketch
# apply` an Apply entry, create, replace and patch an Update entry).
_FIELD_MANAGER = "ketch"


@dataclass(frozen=True)
class KindRef:
    """A kind as the server describes it (from ``/api/ketch/kinds``)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    has_logs: bool = False
    columns: tuple[dict[str, Any], ...] = ()
    conditions: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def names(self) -> set[str]:
        base = {self.plural, self.kind.lower(), *(s.lower() for s in self.short_names)}
        return base | {f"{n}.{self.group}" for n in base}

    def path(self, namespace: str | None, name: str | None = None, sub: str = "") -> str:
        """The object's URL path. A name or namespace no object can have (``../x``) is
        refused here, before any request, and every segment is percent-encoded, so
        user input never changes which path is asked for."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        coll = (f"{root}/namespaces/{_segment(namespace, 'namespace')}/{self.plural}"
                if namespace and self.namespaced else f"{root}/{self.plural}")
        if name is None:
            return coll
        return f"{coll}/{_segment(name, f'{self.kind.lower()} name')}" + (
            f"/{sub}" if sub else "")


def _segment(value: str, what: str) -> str:
    try:
        validate_name(value)
    except ValueError as err:
        rule = str(err).partition(" must ")[2]
        raise InvalidError(f"invalid {what} {value!r}: must {rule}") from None
    return quote(value, safe="")


@dataclass(frozen=True)
class ResourceList:
    items: list[Resource]
    resource_version: str
    continue_token: str | None = None


@dataclass(frozen=True)
class WatchEvent:
    type: str
    object: Resource
    raw: dict[str, Any] = field(default_factory=dict)


class Client:
    """A ketch control plane's API.

    Resource calls (``create``, ``apply``, ``get``, ``list``, ``watch``, ``logs``,
    ``wait``...) are the client's own; each component adds its facade,
    ``client.pipelines``, ``client.registry``, ``client.serving``, ``client.jobs`` (and
    ``client.<name>`` of any component installed later), built on first use from this
    client and its connection. The kfp.Client-shaped calls are also answered here
    (``client.list_runs()`` is ``client.pipelines.list_runs()``).

    Args:
        host: server URL; default ``KETCH_HOST``, else the server of this
            ``KETCH_HOME`` (started in the background if none runs).
        namespace: the default namespace of calls that take one.
        token: bearer token; default ``KETCH_TOKEN`` or the local server's.
        timeout: seconds for ordinary (non-streaming) requests.
        autostart: start a background control plane when none is found.
    """

    if TYPE_CHECKING:
        # Built by __getattr__ from the components' declarations; typed here.
        pipelines: PipelinesClient
        registry: ModelRegistry
        serving: ServingClient
        jobs: JobsClient

    def __init__(self, host: str | None = None, *, namespace: str = DEFAULT_NAMESPACE,
                 token: str | None = None, timeout: float = 30.0, autostart: bool = True,
                 settings: Settings | None = None) -> None:
        self.rest: RestSession = connect(host, token=token, timeout=timeout,
                                         autostart=autostart, settings=settings)
        self.url = self.rest.url
        self.namespace = namespace
        self._http = self.rest.client()
        self._kinds: list[KindRef] | None = None
        self._facades: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        # Only names not found the ordinary way arrive here: the components' facades.
        if name.startswith("_"):
            raise AttributeError(name)
        facade = build_facade(self, name)
        self._facades[name] = facade
        setattr(self, name, facade)
        return facade

    # -- kfp.Client-shaped calls, where they are documented: delegates -----------

    run_pipeline_spec = Delegate("pipelines", _Kfp.run_pipeline_spec)
    create_run_from_pipeline_func = Delegate(
        "pipelines", _Kfp.create_run_from_pipeline_func)
    create_run_from_pipeline_package = Delegate(
        "pipelines", _Kfp.create_run_from_pipeline_package)
    get_run = Delegate("pipelines", _Kfp.get_run)
    list_runs = Delegate("pipelines", _Kfp.list_runs)
    terminate_run = Delegate("pipelines", _Kfp.terminate_run)
    delete_run = Delegate("pipelines", _Kfp.delete_run)
    wait_for_run_completion = Delegate("pipelines", _Kfp.wait_for_run_completion)
    create_experiment = Delegate("pipelines", _Kfp.create_experiment)
    get_experiment = Delegate("pipelines", _Kfp.get_experiment)
    list_experiments = Delegate("pipelines", _Kfp.list_experiments)
    create_recurring_run = Delegate("pipelines", _Kfp.create_recurring_run)
    get_recurring_run = Delegate("pipelines", _Kfp.get_recurring_run)
    list_recurring_runs = Delegate("pipelines", _Kfp.list_recurring_runs)
    enable_recurring_run = Delegate("pipelines", _Kfp.enable_recurring_run)
    disable_recurring_run = Delegate("pipelines", _Kfp.disable_recurring_run)
    delete_recurring_run = Delegate("pipelines", _Kfp.delete_recurring_run)
    list_pipelines = Delegate("pipelines", _Kfp.list_pipelines)
    get_pipeline = Delegate("pipelines", _Kfp.get_pipeline)
    list_pipeline_versions = Delegate("pipelines", _Kfp.list_pipeline_versions)
    upload_pipeline = Delegate("pipelines", _Kfp.upload_pipeline)
    upload_pipeline_version = Delegate("pipelines", _Kfp.upload_pipeline_version)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for facade in self._facades.values():
            closer = getattr(facade, "close", None)
            if callable(closer):
                closer()
        self._http.close()

    # -- plumbing -------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise UnavailableError(f"cannot reach ketch at {self.url}: {err}") from None
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise error_from_body(response.status_code, body)
        return body

    # -- kinds ----------------------------------------------------------------

    def kinds(self) -> list[KindRef]:
        """Every kind the server serves."""
        if self._kinds is None:
            items = self._request("GET", "/api/ketch/kinds")["items"]
            self._kinds = [KindRef(
                group=i["group"], version=i["version"], kind=i["kind"], plural=i["plural"],
                namespaced=i.get("namespaced", True), short_names=tuple(i.get("shortNames", [])),
                has_logs=i.get("hasLogs", False), columns=tuple(i.get("columns", [])),
                conditions=tuple(i.get("conditions", []))) for i in items]
        return self._kinds

    def kind(self, name: str) -> KindRef:
        """A kind by plural, singular, kind or short name (case-insensitive)."""
        wanted = name.strip().lower()
        matches = [k for k in self.kinds() if wanted in k.names()]
        if len(matches) == 1:
            return matches[0]
        choice = upstream_choice([k.group for k in matches])
        if choice is not None:
            return matches[choice]
        if not matches:
            known = ", ".join(sorted(k.plural for k in self.kinds()))
            every = {n: k.plural for k in self.kinds() for n in k.names()}
            close = difflib.get_close_matches(wanted, sorted(every), n=1, cutoff=0.6)
            hint = f"; did you mean {every[close[0]]!r}?" if close else ""
            raise UnknownKindError(f"unknown kind {name!r}{hint} (known kinds: {known})")
        options = ", ".join(sorted(f"{k.plural}.{k.group}" for k in matches))
        raise UnknownKindError(f"kind {name!r} is ambiguous; say one of: {options}")

    def _kind_of(self, doc: dict[str, Any]) -> KindRef:
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not api_version or not kind:
            missing = [FieldError(f, "required") for f in ("apiVersion", "kind")
                       if not doc.get(f)]
            raise InvalidError("invalid resource", missing)
        for ref in self.kinds():
            if ref.kind == kind and ref.api_version == api_version:
                return ref
        raise UnknownKindError(f"unknown kind {kind!r} in apiVersion {api_version!r}")

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    # -- operations -----------------------------------------------------------

    def create(self, obj: dict[str, Any] | Resource, *, namespace: str | None = None,
               dry_run: bool = False) -> Resource:
        doc = obj.to_wire() if isinstance(obj, Resource) else obj
        ref = self._kind_of(doc)
        ns = self._ns(namespace or (doc.get("metadata") or {}).get("namespace"))
        params = {"fieldManager": _FIELD_MANAGER, **({"dryRun": "All"} if dry_run else {})}
        return Resource.model_validate(self._request("POST", ref.path(ns), json=doc,
                                                     params=params))

    def apply(self, objs: dict[str, Any] | Resource | Iterable[dict[str, Any] | Resource], *,
              namespace: str | None = None, dry_run: bool = False,
              validate_first: bool = True, force: bool = False) -> list[tuple[Resource, str]]:
        """Server-side apply each object as field manager ``ketch``: create it, or set
        the fields it names (fields ``ketch`` applied before and the object now leaves
        out are removed). A field another manager set to another value is a
        ``ConflictError`` naming it, unless ``force`` takes it over.

        Unless ``validate_first`` is off, every object is first checked with a
        server-side dry run, so a bad document in a list writes nothing. Returns
        ``(object, action)`` pairs, action being ``created``, ``configured`` or
        ``unchanged``.
        """
        docs = [objs] if isinstance(objs, dict | Resource) else list(objs)
        wire = [d.to_wire() if isinstance(d, Resource) else d for d in docs]
        if validate_first and not dry_run and len(wire) > 1:
            for doc in wire:
                self._apply_one(doc, namespace, dry_run=True, force=force)
        return [self._apply_one(doc, namespace, dry_run=dry_run, force=force) for doc in wire]

    def _apply_one(self, doc: dict[str, Any], namespace: str | None, *,
                   dry_run: bool, force: bool = False) -> tuple[Resource, str]:
        ref = self._kind_of(doc)
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        name = (meta or {}).get("name")
        if not name:
            raise InvalidError("invalid resource", [FieldError("metadata.name", "required")])
        ns = self._ns(namespace or (meta or {}).get("namespace"))
        params = {"fieldManager": _FIELD_MANAGER, **({"dryRun": "All"} if dry_run else {}),
                  **({"force": "true"} if force else {})}
        try:
            response = self._http.patch(
                ref.path(ns, name), content=json.dumps(doc), params=params,
                headers={"Content-Type": "application/apply-patch+yaml"})
        except httpx.HTTPError as err:
            raise UnavailableError(f"cannot reach ketch at {self.url}: {err}") from None
        body = self._decode(response)
        return Resource.model_validate(body), response.headers.get("X-Ketch-Apply", "configured")

    def get(self, kind: str, name: str, *, namespace: str | None = None) -> Resource:
        ref = self.kind(kind)
        return Resource.model_validate(self._request("GET", ref.path(self._ns(namespace), name)))

    def list(self, kind: str, *, namespace: str | None = None, all_namespaces: bool = False,
             label_selector: str | None = None, limit: int | None = None,
             continue_token: str | None = None) -> ResourceList:
        ref = self.kind(kind)
        params: dict[str, Any] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if limit:
            params["limit"] = limit
        if continue_token:
            params["continue"] = continue_token
        ns = None if all_namespaces else self._ns(namespace)
        body = self._request("GET", ref.path(ns), params=params)
        return ResourceList(items=[Resource.model_validate(i) for i in body["items"]],
                            resource_version=body["metadata"].get("resourceVersion", ""),
                            continue_token=body["metadata"].get("continue"))

    def replace(self, obj: dict[str, Any] | Resource, *, status: bool = False) -> Resource:
        doc = obj.to_wire() if isinstance(obj, Resource) else obj
        ref = self._kind_of(doc)
        meta = doc["metadata"]
        path = ref.path(self._ns(meta.get("namespace")), meta["name"], "status" if status else "")
        return Resource.model_validate(self._request("PUT", path, json=doc,
                                                     params={"fieldManager": _FIELD_MANAGER}))

    def patch(self, kind: str, name: str, patch: dict[str, Any], *,
              namespace: str | None = None) -> Resource:
        """JSON merge patch (RFC 7386)."""
        ref = self.kind(kind)
        return Resource.model_validate(self._request(
            "PATCH", ref.path(self._ns(namespace), name), content=json.dumps(patch),
            params={"fieldManager": _FIELD_MANAGER},
            headers={"Content-Type": "application/merge-patch+json"}))

    def delete(self, kind: str, name: str, *, namespace: str | None = None) -> Resource:
        ref = self.kind(kind)
        return Resource.model_validate(self._request("DELETE",
                                                     ref.path(self._ns(namespace), name)))

    def watch(self, kind: str, *, namespace: str | None = None, name: str | None = None,
              all_namespaces: bool = False, label_selector: str | None = None,
              resource_version: str | None = None, timeout: float | None = None,
              without_spec: bool = False) -> Iterator[WatchEvent]:
        """Yield changes (ADDED/MODIFIED/DELETED) until ``timeout`` seconds pass.

        ``without_spec``: objects come without their ``spec`` (metadata and status only),
        for a caller that follows status: a pipeline run's spec is its whole IR, and
        decoding it on every status write cost the caller more than the write."""
        ref = self.kind(kind)
        params: dict[str, Any] = {"watch": "true"}
        if name:
            params["fieldSelector"] = f"metadata.name={name}"
        if label_selector:
            params["labelSelector"] = label_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout is not None:
            params["timeoutSeconds"] = max(int(timeout + 0.999), 1)
        ns = None if all_namespaces else self._ns(namespace)
        try:
            headers = {WITHOUT_SPEC_HEADER: "true"} if without_spec else None
            with self._http.stream("GET", ref.path(ns), params=params, headers=headers,
                                   timeout=httpx.Timeout(30.0, read=None)) as response:
                if response.status_code >= 400:
                    response.read()
                    self._decode(response)
                # One event a line, as Kubernetes streams a watch (the server sends
                # server-sent events only to a request that accepts them).
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    event = loads(line)
                    if event.get("type") == "ERROR":
                        raise error_from_body(int(event["object"].get("code", 500)),
                                              event["object"])
                    yield WatchEvent(event["type"], Resource.model_validate(event["object"]),
                                     event)
        except httpx.HTTPError as err:
            raise UnavailableError(f"watch on {self.url} broke: {err}") from None

    def logs(self, kind: str, name: str, *, namespace: str | None = None, follow: bool = False,
             attempt: int | None = None, task: str | None = None) -> Iterator[bytes]:
        """The object's log as it arrives (``follow``) or as it is now."""
        ref = self.kind(kind)
        params: dict[str, Any] = {"follow": "true" if follow else "false"}
        if attempt:
            params["attempt"] = attempt
        if task:
            params["task"] = task
        try:
            with self._http.stream("GET", ref.path(self._ns(namespace), name, "log"),
                                   params=params,
                                   timeout=httpx.Timeout(30.0, read=None)) as response:
                if response.status_code >= 400:
                    response.read()
                    self._decode(response)
                yield from response.iter_bytes()
        except httpx.HTTPError as err:
            raise UnavailableError(f"log stream from {self.url} broke: {err}") from None

    def wait(self, kind: str, name: str, *, condition: str = "Succeeded",
             namespace: str | None = None, timeout: float = 60.0) -> Resource:
        """Block until condition ``condition`` is True on the object.

        Raises ``KetchError`` at once if the object ends (a terminal phase)
        without it — waiting for ``Succeeded`` on a Failed job does not hang — or
        if its controller reports it stalled (a ``Stalled`` condition, True, for the
        current generation, as kstatus reads it: an InferenceService whose storageUri
        does not exist), and ``TimeoutError`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        self.get(kind, name, namespace=namespace)  # NotFoundError at once, as kubectl wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {kind}/{name} "
                                   f"condition={condition}")
            try:
                for event in self.watch(kind, namespace=namespace, name=name,
                                        timeout=min(left, 30.0)):
                    if event.type == "DELETED":
                        raise KetchError(f"{kind}/{name} was deleted while waiting")
                    if _condition_true(event.object, condition):
                        return event.object
                    phase = event.object.status.get("phase")
                    if phase in TERMINAL_PHASES:
                        raise KetchError(_ended_without(event.object, kind, condition))
                    stalled = _stalled(event.object)
                    if stalled is not None and condition.lower() != "stalled":
                        raise KetchError(f"{kind}/{name} failed: {stalled.get('reason', '')}: "
                                         f"{stalled.get('message', '')}")
            except UnavailableError:
                time.sleep(0.2)  # a restarting server: keep waiting


def _condition_true(obj: Resource, condition: str) -> bool:
    for cond in obj.status.get("conditions") or []:
        if cond.get("type", "").lower() == condition.lower():
            return bool(cond.get("status") == "True")
    return False


def _stalled(obj: Resource) -> dict[str, Any] | None:
    """The ``Stalled`` condition when it is True and about the current spec (kstatus:
    an older generation's verdict says nothing about the new spec)."""
    observed = obj.status.get("observedGeneration")
    if observed is not None and obj.metadata.generation is not None \
            and int(observed) < obj.metadata.generation:
        return None
    for cond in obj.status.get("conditions") or []:
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return cond  # type: ignore[no-any-return]
    return None


def _ended_without(obj: Resource, kind: str, condition: str) -> str:
    phase = obj.status.get("phase")
    last = (obj.status.get("conditions") or [{}])[-1]
    why = f": {last.get('reason', '')}: {last.get('message', '')}" if last else ""
    return f"{kind}/{obj.name} ended {phase} without condition {condition}{why}"
