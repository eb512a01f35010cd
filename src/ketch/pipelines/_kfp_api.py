"""The KFP API server's REST API (``/apis/v2beta1``) over ketch's pipeline kinds, so
the real ``kfp.Client(host=URL)`` (2.16.1) works against ketch unchanged.

Runs are ``PipelineRun``s, pipelines and versions ``Pipeline``/``PipelineVersion``,
experiments ``Experiment``s and recurring runs ``RecurringRun``s: the API is one more
view of the same resources the CLI, ``ketch.Client`` and the dashboard read. Ids are
uids (a resource's name is accepted too); shapes are in ``_kfp_shapes``. The
``namespace`` query or body field picks the ketch namespace (``default`` when absent,
as in KFP's single-user mode); a get by id finds the object in any namespace.

Errors are the gRPC gateway's JSON (``{"error", "code", "message", "details"}``, with
``code`` a gRPC code) and its HTTP status. Bearer tokens are checked by the server's
own middleware, as on every other path.
"""

from __future__ import annotations

import email.parser
import email.policy
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ketch.core.codec import decode_json
from ketch.core.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldError,
    InvalidError,
    KetchError,
    NotFoundError,
)
from ketch.core.kinds import KindInfo
from ketch.core.resources import Resource, validate_name
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.pipelines._catalog import EXPERIMENT, PIPELINE, PIPELINE_VERSION, versions_of
from ketch.pipelines._kfp_shapes import (
    DISPLAY_NAME,
    STORAGE_STATE,
    experiment_body,
    listing,
    pipeline_body,
    recurring_run_body,
    run_body,
    version_body,
)
from ketch.pipelines._kind import PIPELINE_RUN
from ketch.pipelines._recurring import RECURRING_RUN
from ketch.pipelines.client import EXPERIMENT_LABEL, _resource_name, run_name_for

__all__ = ["PREFIX", "kfp_router"]

PREFIX = "/apis/v2beta1"
GROUP = "pipelines.ketch.dev/v1"
Json = dict[str, Any]
# gRPC codes by HTTP status, and the HTTP status the gateway answers for each code.
_GRPC = {400: 3, 422: 3, 401: 16, 403: 7, 404: 5, 410: 5, 413: 8, 503: 14, 500: 13}
_GRPC_HTTP = {3: 400, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 13: 500, 14: 503,
              16: 401}


def _grpc_code(err: KetchError) -> int:
    if isinstance(err, AlreadyExistsError):
        return 6
    if isinstance(err, ConflictError):
        return 10
    return _GRPC.get(err.http_status, 13)


def _error(err: KetchError) -> JSONResponse:
    code = _grpc_code(err)
    message = err.message
    if isinstance(err, InvalidError) and err.fields:
        message += ": " + "; ".join(f"{f.path}: {f.message}" for f in err.fields)
    return JSONResponse({"error": message, "code": code, "message": message, "details": []},
                        status_code=_GRPC_HTTP.get(code, 500))


class _Api:
    """The handlers; each takes the query, the path's id and the decoded body."""

    def __init__(self, runtime: Runtime) -> None:
        self.service = ResourceService(runtime)

    # -- lookups ---------------------------------------------------------------------

    def all(self, info: KindInfo, namespace: str | None) -> list[Resource]:
        items: list[Resource] = []
        token: str | None = None
        while True:
            page = self.service.list(info, namespace, limit=500, continue_token=token)
            # One being deleted (its finalizers still running) is gone to KFP, whose
            # deletes are synchronous.
            items.extend(o for o in page.items if not o.metadata.deletion_timestamp)
            token = page.continue_token
            if not token:
                return items

    def find(self, info: KindInfo, ident: str, what: str) -> Resource:
        """The object whose uid (or, for ids ketch's own tools show, name) is ``ident``."""
        for obj in self.all(info, None):
            if obj.metadata.uid == ident:
                return obj
        try:
            found = self.service.get(info, "default", validate_name(ident, what))
            if not found.metadata.deletion_timestamp:
                return found
        except (ValueError, NotFoundError):
            pass
        raise NotFoundError(f"{what} {ident!r} not found")

    def experiment_ids(self, namespace: str | None) -> dict[str, str]:
        return {e.name: str(e.metadata.uid) for e in self.all(EXPERIMENT, namespace)}

    def experiment_name(self, experiment_id: Any) -> tuple[str | None, str | None]:
        """(name, namespace) of the experiment with this id; (None, None) for none."""
        if not experiment_id:
            return None, None
        exp = self.find(EXPERIMENT, str(experiment_id), "experiment")
        return exp.name, exp.namespace

    def run_source(self, body: Json) -> Json:
        """``pipelineSpec`` or ``pipelineRef`` from a run's or a recurring run's body."""
        spec = body.get("pipeline_spec")
        if isinstance(spec, dict) and "root" not in spec and isinstance(
                spec.get("pipeline_spec"), dict):
            spec = spec["pipeline_spec"]  # kfp wraps IR that has a platform spec
        if isinstance(spec, dict) and spec:
            return {"pipelineSpec": spec}
        ref = _object(body, "pipeline_version_reference")
        version_id = ref.get("pipeline_version_id") or body.get("pipeline_version_id")
        pipeline_id = ref.get("pipeline_id")
        if version_id:
            version = self.find(PIPELINE_VERSION, str(version_id), "pipeline version")
            return {"pipelineRef": {"name": version.spec["pipeline"], "version": version.name}}
        if pipeline_id:
            return {"pipelineRef": {"name": self.find(PIPELINE, str(pipeline_id),
                                                      "pipeline").name}}
        raise InvalidError("a run needs a pipeline", [FieldError(
            "pipeline_spec", "set pipeline_spec or pipeline_version_reference")])

    def template(self, body: Json) -> tuple[Json, str | None]:
        """A PipelineRun spec from a KFP run body, and the experiment's namespace."""
        config = _object(body, "runtime_config")
        spec: Json = {**self.run_source(body),
                      "arguments": _object(config, "parameters", "runtime_config.")}
        if config.get("pipeline_root"):
            spec["pipelineRoot"] = config["pipeline_root"]
        experiment, namespace = self.experiment_name(body.get("experiment_id"))
        if experiment:
            spec["experiment"] = experiment
        return spec, namespace

    # -- runs ------------------------------------------------------------------------

    def run_json(self, run: Resource, ids: dict[str, str] | None = None, *,
                 details: bool = True) -> Json:
        ids = self.experiment_ids(run.namespace) if ids is None else ids
        return run_body(run, ids, details=details, version_reference=self.reference(run))

    def reference(self, run: Resource) -> dict[str, str] | None:
        """The ids of the pipeline and version a run of a ``pipelineRef`` ran (the
        version's newest when the ref names none and it still exists)."""
        ref = run.spec.get("pipelineRef")
        if not isinstance(ref, dict):
            return None
        try:
            pipeline = self.service.get(PIPELINE, run.namespace, str(ref.get("name")))
        except NotFoundError:
            return None
        reference = {"pipeline_id": str(pipeline.metadata.uid)}
        versions = versions_of(self.service.store, run.namespace or "default", pipeline.name)
        wanted = ref.get("version")
        for version in reversed(versions):
            if not wanted or str(wanted) in (version.name, f"{pipeline.name}-{wanted}"[:63]):
                reference["pipeline_version_id"] = str(version.metadata.uid)
                break
        return reference

    def create_run(self, query: Json, body: Json) -> Json:
        spec, namespace = self.template(body)
        display = str(body.get("display_name") or "run")
        labels = {EXPERIMENT_LABEL: spec["experiment"]} if spec.get("experiment") else {}
        annotations = {DISPLAY_NAME: display}
        if body.get("description"):
            annotations["pipelines.ketch.dev/description"] = str(body["description"])
        run = self.service.create(PIPELINE_RUN, {
            "apiVersion": GROUP, "kind": "PipelineRun",
            "metadata": {"name": run_name_for(display), "labels": labels,
                         "annotations": annotations}, "spec": spec},
            namespace or _namespace(query, body))
        return self.run_json(run)

    def get_run(self, run_id: str) -> Json:
        return self.run_json(self.find(PIPELINE_RUN, run_id, "run"))

    def list_runs(self, query: Json) -> Json:
        namespace = _namespace(query, {})
        runs = self.all(PIPELINE_RUN, namespace)
        ids = self.experiment_ids(namespace)
        bodies = [self.run_json(r, ids, details=False) for r in runs]
        if query.get("experiment_id"):
            bodies = [b for b in bodies if b.get("experiment_id") == query["experiment_id"]]
        return _listing(bodies, "runs", query)

    def terminate_run(self, run_id: str) -> Json:
        run = self.find(PIPELINE_RUN, run_id, "run")
        self.service.patch(PIPELINE_RUN, run.namespace, run.name, {"spec": {"cancel": True}})
        return {}

    def retry_run(self, run_id: str) -> Json:
        """A new run of the same spec (ketch reruns a pipeline whole, with its cache
        reusing what succeeded); KFP's retry answers an empty body too."""
        run = self.find(PIPELINE_RUN, run_id, "run")
        if run.status.get("phase") not in ("Failed", "Cancelled"):
            raise InvalidError(f"run {run_id} is {run.status.get('phase')}; only a failed or "
                               "cancelled run can be retried")
        spec = {k: v for k, v in run.spec.items() if k not in ("cancel", "scheduledTime")}
        meta = run.metadata
        self.service.create(PIPELINE_RUN, {
            "apiVersion": GROUP, "kind": "PipelineRun",
            "metadata": {"name": f"{run.name[:50]}-r{secrets.token_hex(3)}",
                         "labels": dict(meta.labels),
                         "annotations": {**meta.annotations,
                                         "pipelines.ketch.dev/retry-of": run.name}},
            "spec": spec}, run.namespace)
        return {}

    def storage(self, info: KindInfo, ident: str, state: str) -> Json:
        obj = self.find(info, ident, "run")
        self.service.patch(info, obj.namespace, obj.name,
                           {"metadata": {"annotations": {STORAGE_STATE: state}}})
        return {}

    def delete(self, info: KindInfo, ident: str, what: str) -> Json:
        obj = self.find(info, ident, what)
        self.service.delete(info, obj.namespace, obj.name)
        return {}

    # -- experiments -----------------------------------------------------------------

    def create_experiment(self, query: Json, body: Json) -> Json:
        display = str(body.get("display_name") or "")
        if not display:
            raise InvalidError("invalid experiment", [FieldError(
                "display_name", "an experiment needs a display_name")])
        namespace = _namespace(query, body)
        exp = self.service.create(EXPERIMENT, {
            "apiVersion": GROUP, "kind": "Experiment",
            "metadata": {"name": _resource_name(display)},
            "spec": {"displayName": display, "description": body.get("description") or ""}},
            namespace)
        return experiment_body(exp)

    def archive_experiment(self, ident: str, archived: bool) -> Json:
        exp = self.find(EXPERIMENT, ident, "experiment")
        self.service.patch(EXPERIMENT, exp.namespace, exp.name,
                           {"spec": {"archived": archived}})
        return {}

    def list_experiments(self, query: Json) -> Json:
        bodies = [experiment_body(e) for e in self.all(EXPERIMENT, _namespace(query, {}))]
        return _listing(bodies, "experiments", query)

    # -- pipelines and versions ------------------------------------------------------

    def create_pipeline(self, query: Json, body: Json) -> Resource:
        display = str(body.get("display_name") or body.get("name") or "")
        if not display:
            raise InvalidError("invalid pipeline", [FieldError(
                "display_name", "a pipeline needs a name or display_name")])
        return self.service.create(PIPELINE, {
            "apiVersion": GROUP, "kind": "Pipeline",
            "metadata": {"name": _resource_name(body.get("name") or display)},
            "spec": {"displayName": display, "description": body.get("description") or ""}},
            _namespace(query, body))

    def create_version(self, pipeline: Resource, display: str, ir: Json,
                       platform: Json | None, description: str | None,
                       name: str | None = None) -> Resource:
        spec: Json = {"pipeline": pipeline.name, "pipelineSpec": ir, "displayName": display,
                      "description": description or ""}
        if platform:
            spec["platformSpec"] = platform
        return self.service.create(PIPELINE_VERSION, {
            "apiVersion": GROUP, "kind": "PipelineVersion",
            "metadata": {"name": name or f"{pipeline.name}-{_resource_name(display)}"[:63]},
            "spec": spec}, pipeline.namespace)

    def upload(self, query: Json, ir: Json, platform: Json | None) -> Json:
        name = str(query.get("display_name") or query.get("name")
                   or (ir.get("pipelineInfo") or {}).get("name") or "")
        pipeline = self.create_pipeline(query, {"display_name": name,
                                                "description": query.get("description")})
        try:
            self.create_version(pipeline, name, ir, platform, query.get("description"),
                                name=f"{pipeline.name}-v1")
        except KetchError:
            self.service.delete(PIPELINE, pipeline.namespace, pipeline.name)
            raise
        return pipeline_body(pipeline)

    def upload_version(self, query: Json, ir: Json, platform: Json | None) -> Json:
        pipeline = self.find(PIPELINE, str(query.get("pipelineid") or ""), "pipeline")
        display = str(query.get("display_name") or query.get("name") or "")
        if not display:
            raise InvalidError("invalid pipeline version", [FieldError(
                "name", "a pipeline version needs a name")])
        version = self.create_version(pipeline, display, ir, platform,
                                      query.get("description"))
        return version_body(version, pipeline.metadata.uid)

    def list_versions(self, pipeline_id: str, query: Json) -> Json:
        pipeline = self.find(PIPELINE, pipeline_id, "pipeline")
        bodies = [version_body(v, pipeline.metadata.uid)
                  for v in versions_of(self.service.store, pipeline.namespace or "default",
                                       pipeline.name)]
        return _listing(bodies, "pipeline_versions", query)

    def get_version(self, pipeline_id: str, version_id: str) -> Json:
        pipeline = self.find(PIPELINE, pipeline_id, "pipeline")
        version = self.find(PIPELINE_VERSION, version_id, "pipeline version")
        if version.spec.get("pipeline") != pipeline.name:
            raise NotFoundError(f"pipeline version {version_id!r} not found in pipeline "
                                f"{pipeline_id!r}")
        return version_body(version, pipeline.metadata.uid)

    # -- recurring runs --------------------------------------------------------------

    def create_recurring_run(self, query: Json, body: Json) -> Json:
        template, namespace = self.template(body)
        trigger = _object(body, "trigger")
        cron = _object(trigger, "cron_schedule", "trigger.")
        periodic = _object(trigger, "periodic_schedule", "trigger.")
        schedule = cron or periodic or {}
        if cron:
            kind_trigger: Json = {"cron": cron.get("cron")}
        elif periodic:
            kind_trigger = {"intervalSeconds": _int(periodic.get("interval_second"),
                                                    "trigger.periodic_schedule.interval_second")}
        else:
            raise InvalidError("invalid recurring run", [FieldError(
                "trigger", "set trigger.cron_schedule or trigger.periodic_schedule")])
        display = str(body.get("display_name") or "recurring-run")
        spec: Json = {"trigger": kind_trigger, "runTemplate": template,
                      "maxConcurrency": _int(body.get("max_concurrency") or 1,
                                             "max_concurrency"),
                      "mode": "Disable" if body.get("mode") == "DISABLE" else "Enable",
                      "noCatchup": bool(body.get("no_catchup")),
                      "description": body.get("description") or ""}
        for key, field in (("startTime", "start_time"), ("endTime", "end_time")):
            if schedule.get(field):
                spec[key] = schedule[field]
        rr = self.service.create(RECURRING_RUN, {
            "apiVersion": GROUP, "kind": "RecurringRun",
            "metadata": {"name": _resource_name(display), "annotations": {DISPLAY_NAME: display}},
            "spec": spec}, namespace or _namespace(query, body))
        return recurring_run_body(rr, self.experiment_ids(rr.namespace))

    def recurring_run_json(self, ident: str) -> Json:
        rr = self.find(RECURRING_RUN, ident, "recurring run")
        return recurring_run_body(rr, self.experiment_ids(rr.namespace))

    def list_recurring_runs(self, query: Json) -> Json:
        namespace = _namespace(query, {})
        ids = self.experiment_ids(namespace)
        bodies = [recurring_run_body(r, ids) for r in self.all(RECURRING_RUN, namespace)]
        if query.get("experiment_id"):
            bodies = [b for b in bodies if b.get("experiment_id") == query["experiment_id"]]
        return _listing(bodies, "recurringRuns", query)

    def set_mode(self, ident: str, mode: str) -> Json:
        rr = self.find(RECURRING_RUN, ident, "recurring run")
        self.service.patch(RECURRING_RUN, rr.namespace, rr.name, {"spec": {"mode": mode}})
        return {}


def _object(body: Json, key: str, prefix: str = "") -> Json:
    """``body[key]``, an object (``{}`` when absent); a 400 naming the field otherwise."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidError("invalid request", [FieldError(
            f"{prefix}{key}", f"expected an object, got {type(value).__name__}")])
    return value


def _int(value: Any, field: str) -> int:
    """An int64 field, sent as a number or (protojson) a string of digits."""
    text = str(value if value is not None else "").strip()
    if isinstance(value, bool) or not text.lstrip("-").isdigit():
        raise InvalidError("invalid request", [FieldError(field, f"{value!r} is not an "
                                                                 "integer")])
    return int(text)


def _namespace(query: Json, body: Json) -> str:
    namespace = str(query.get("namespace") or body.get("namespace") or "default")
    try:
        return validate_name(namespace, "namespace")
    except ValueError as err:
        raise InvalidError(str(err), [FieldError("namespace", str(err))]) from None


def _listing(bodies: list[Json], plural: str, query: Json) -> Json:
    size_text = str(query.get("page_size") or "0")
    if not size_text.isdigit():
        raise InvalidError("invalid page_size", [FieldError(
            "page_size", f"{size_text!r} is not a number")])
    return listing(bodies, plural, filter_text=query.get("filter"),
                   sort_by=query.get("sort_by"), page_size=int(size_text),
                   page_token=query.get("page_token"))


def _package(raw: bytes, content_type: str) -> tuple[Json, Json | None]:
    """The IR (and a platform spec, kfp's optional second YAML document) of an upload:
    the multipart form's ``uploadfile`` part."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    data: bytes | None = None
    if message.is_multipart():
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "uploadfile":
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else None
    if data is None:
        raise InvalidError("no pipeline file", [FieldError(
            "uploadfile", "send the pipeline's IR YAML as the multipart field 'uploadfile'")])
    try:
        docs = [d for d in yaml.safe_load_all(data.decode("utf-8")) if d is not None]
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        raise InvalidError("invalid pipeline file", [FieldError(
            "uploadfile", f"not IR YAML or JSON (archives are not read here): {err}")]
                           ) from None
    if not docs or not isinstance(docs[0], dict):
        raise InvalidError("invalid pipeline file", [FieldError(
            "uploadfile", "expected a KFP IR mapping")])
    platform = docs[1] if len(docs) > 1 and isinstance(docs[1], dict) else None
    return docs[0], platform


Handler = Callable[[Json, dict[str, str], Json], Json]


def kfp_router(runtime: Runtime) -> APIRouter:
    """Every ``/apis/v2beta1`` route kfp.Client 2.16.1 calls for pipelines."""
    api = _Api(runtime)
    # Out of ketch's /openapi.json (which the dashboard's types are generated from): this
    # is KFP's API, described by KFP's own swagger, and the handlers read their
    # parameters by hand, as the gateway's clients send them.
    router = APIRouter(prefix=PREFIX, tags=["kfp"], include_in_schema=False)

    def route(method: str, path: str, handler: Handler, *, summary: str) -> None:
        async def endpoint(request: Request) -> Any:
            try:
                raw = await request.body()
                body = decode_json(raw, "body") if raw.strip() else {}
                if not isinstance(body, dict):
                    raise InvalidError("the body must be a JSON object")
                query = dict(request.query_params)
                return await run_in_threadpool(handler, query, dict(request.path_params), body)
            except KetchError as err:
                return _error(err)
        router.add_api_route(path, endpoint, methods=[method], summary=summary)

    def upload(action: Callable[[Json, Json, Json | None], Json]) -> Callable[
            [Request], Awaitable[Any]]:
        async def endpoint(request: Request) -> Any:
            try:
                ir, platform = _package(await request.body(),
                                        request.headers.get("content-type", ""))
                return await run_in_threadpool(action, dict(request.query_params), ir,
                                               platform)
            except KetchError as err:
                return _error(err)
        return endpoint

    router.add_api_route("/healthz", _healthz, methods=["GET"], summary="Health")
    router.add_api_route("/pipelines/upload", upload(api.upload), methods=["POST"],
                         summary="Upload a pipeline (multipart 'uploadfile')")
    router.add_api_route("/pipelines/upload_version", upload(api.upload_version),
                         methods=["POST"], summary="Upload a pipeline version")
    # Routes with ':action' go before the plain id routes of the same method.
    for action, state in (("archive", "ARCHIVED"), ("unarchive", "AVAILABLE")):
        route("POST", "/runs/{run_id}:" + action, _run_storage(api, state),
              summary=f"{action.title()} a run")
        route("POST", "/experiments/{experiment_id}:" + action,
              _experiment_storage(api, action == "archive"),
              summary=f"{action.title()} an experiment")
    route("POST", "/runs/{run_id}:terminate", lambda q, p, b: api.terminate_run(p["run_id"]),
          summary="Terminate a run")
    route("POST", "/runs/{run_id}:retry", lambda q, p, b: api.retry_run(p["run_id"]),
          summary="Retry a failed run (as a new run)")
    route("POST", "/runs", lambda q, p, b: api.create_run(q, b), summary="Create a run")
    route("GET", "/runs", lambda q, p, b: api.list_runs(q), summary="List runs")
    route("GET", "/runs/{run_id}", lambda q, p, b: api.get_run(p["run_id"]),
          summary="Get a run with its task details")
    route("DELETE", "/runs/{run_id}",
          lambda q, p, b: api.delete(PIPELINE_RUN, p["run_id"], "run"), summary="Delete a run")
    route("POST", "/experiments", lambda q, p, b: api.create_experiment(q, b),
          summary="Create an experiment")
    route("GET", "/experiments", lambda q, p, b: api.list_experiments(q),
          summary="List experiments")
    route("GET", "/experiments/{experiment_id}",
          lambda q, p, b: experiment_body(api.find(EXPERIMENT, p["experiment_id"],
                                                   "experiment")),
          summary="Get an experiment")
    route("DELETE", "/experiments/{experiment_id}",
          lambda q, p, b: api.delete(EXPERIMENT, p["experiment_id"], "experiment"),
          summary="Delete an experiment")
    route("POST", "/pipelines", lambda q, p, b: pipeline_body(api.create_pipeline(q, b)),
          summary="Create a pipeline (no version)")
    route("GET", "/pipelines",
          lambda q, p, b: _listing([pipeline_body(x) for x in
                                    api.all(PIPELINE, _namespace(q, {}))], "pipelines", q),
          summary="List pipelines")
    route("GET", "/pipelines/{pipeline_id}",
          lambda q, p, b: pipeline_body(api.find(PIPELINE, p["pipeline_id"], "pipeline")),
          summary="Get a pipeline")
    route("DELETE", "/pipelines/{pipeline_id}",
          lambda q, p, b: api.delete(PIPELINE, p["pipeline_id"], "pipeline"),
          summary="Delete a pipeline and its versions")
    route("GET", "/pipelines/{pipeline_id}/versions",
          lambda q, p, b: api.list_versions(p["pipeline_id"], q),
          summary="List a pipeline's versions")
    route("GET", "/pipelines/{pipeline_id}/versions/{version_id}",
          lambda q, p, b: api.get_version(p["pipeline_id"], p["version_id"]),
          summary="Get a pipeline version")
    route("DELETE", "/pipelines/{pipeline_id}/versions/{version_id}",
          lambda q, p, b: (api.get_version(p["pipeline_id"], p["version_id"]) and
                           api.delete(PIPELINE_VERSION, p["version_id"], "pipeline version")),
          summary="Delete a pipeline version")
    for action, mode in (("enable", "Enable"), ("disable", "Disable")):
        route("POST", "/recurringruns/{recurring_run_id}:" + action, _mode(api, mode),
              summary=f"{action.title()} a recurring run")
    route("POST", "/recurringruns", lambda q, p, b: api.create_recurring_run(q, b),
          summary="Create a recurring run")
    route("GET", "/recurringruns", lambda q, p, b: api.list_recurring_runs(q),
          summary="List recurring runs")
    route("GET", "/recurringruns/{recurring_run_id}",
          lambda q, p, b: api.recurring_run_json(p["recurring_run_id"]),
          summary="Get a recurring run")
    route("DELETE", "/recurringruns/{recurring_run_id}",
          lambda q, p, b: api.delete(RECURRING_RUN, p["recurring_run_id"], "recurring run"),
          summary="Delete a recurring run")

    # Last: anything else under the prefix is the gateway's 404, not Kubernetes' Status.
    async def unserved(request: Request) -> Any:
        return _error(NotFoundError(f"{request.method} {request.url.path} is not served by "
                                    "ketch's KFP API"))
    router.add_api_route("/{rest:path}", unserved, include_in_schema=False,
                         methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    return router


def _run_storage(api: _Api, state: str) -> Handler:
    return lambda q, p, b: api.storage(PIPELINE_RUN, p["run_id"], state)


def _experiment_storage(api: _Api, archived: bool) -> Handler:
    return lambda q, p, b: api.archive_experiment(p["experiment_id"], archived)


def _mode(api: _Api, mode: str) -> Handler:
    return lambda q, p, b: api.set_mode(p["recurring_run_id"], mode)


async def _healthz() -> Json:
    # Single-user: kfp.Client then reads no namespace file and sends none.
    return {"multi_user": False, "pipeline_store": "ketch"}

