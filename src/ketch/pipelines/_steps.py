"""What the engine does with one step's inputs and outputs: KFP's selectors, runtime
placeholders in constants, resource requests read from the IR, the cache key, the
outputs a finished step wrote, and the message of a failed one."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ketch.core.errors import InvalidError, NotFoundError
from ketch.core.executors import ResourceRequest
from ketch.pipelines._inputs import coerce_parameter, output_file
from ketch.pipelines._ir import ComponentSpec
from ketch.pipelines._packages import is_not_installed_hint
from ketch.pipelines._paths import under

if TYPE_CHECKING:
    from ketch.core.artifacts import ArtifactStore

__all__ = [
    "NotProduced", "accelerators", "cache_key", "collect_outputs", "condition_holds",
    "cpu_request", "failure_message", "fill_constant", "fill_strings", "lightweight_entry",
    "memory_limit", "output_root", "produced", "read_location", "select", "with_accelerator",
]


def cpu_request(resources: Mapping[str, Any]) -> float:
    for key in ("resourceCpuRequest", "resourceCpuLimit", "cpuRequest", "cpuLimit"):
        value = resources.get(key)
        if value not in (None, "", 0):
            from ketch.core.quantity import parse_cpu

            # Core's parser, as Jobs and KETCH_CPUS use: one meaning for "500m".
            return parse_cpu(str(value))
    return 1.0


class NotProduced(Exception):
    pass


def produced(siblings: dict[str, Any], producer: str, kind: str, key: str | None) -> Any:
    pst = siblings.get(producer) or {}
    values = (pst.get("outputs") or {}).get(kind) or {}
    if key not in values:
        raise NotProduced(f"task {producer!r} did not produce {kind[:-1]} {key!r}")
    return values[key]


_SELECTOR = re.compile(r"^parseJson\(string_value\)((?:\[(?:\"[^\"]*\"|\d+)\])*)$")
_INDEX = re.compile(r"\[(?:\"([^\"]*)\"|(\d+))\]")


def select(value: Any, selector: str) -> Any:
    """KFP's ``parseJson(string_value)["a"]`` selectors (loop items over dicts, struct
    fields). The only form the compiler emits; anything else is an error naming it."""
    match = _SELECTOR.match(selector.replace(" ", ""))
    if match is None:
        raise NotProduced(f"unsupported parameterExpressionSelector {selector!r}")
    if isinstance(value, str):
        value = json.loads(value)
    for key, index in _INDEX.findall(match.group(1)):
        value = value[int(index)] if index else value[key]
    return value


def condition_holds(condition: str, params: dict[str, Any]) -> bool:
    from ketch.pipelines._cel import evaluate

    return bool(evaluate(condition, params))


_INPUT_REF = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def fill_constant(value: Any, runtime: Mapping[str, str], params: Mapping[str, Any]) -> Any:
    """A constant with KFP placeholders filled in, as KFP's driver does: the run's
    (``{{$.pipeline_job_name}}``...) and, for f-strings over pipeline channels, the
    task's other inputs (``{{$.inputs.parameters['pipelinechannel--x']}}``)."""
    if not isinstance(value, str) or "{{$" not in value:
        return value
    for key, text in runtime.items():
        value = value.replace("{{$." + key + "}}", text)

    def channel(match: re.Match[str]) -> str:
        if match.group(1) not in params:
            return match.group(0)
        found = params[match.group(1)]
        return found if isinstance(found, str) else json.dumps(found)

    return _INPUT_REF.sub(channel, value)


def fill_strings(value: Any, fill: Any) -> Any:
    """``fill`` applied to every string inside ``value`` (dicts and lists walked)."""
    if isinstance(value, str):
        return fill(value)
    if isinstance(value, dict):
        return {k: fill_strings(v, fill) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_strings(v, fill) for v in value]
    return value


def memory_limit(resources: Mapping[str, Any]) -> int:
    """Bytes; KFP writes ``resourceMemoryLimit: 1Gi`` (and the older ``memoryLimit`` in GB)."""
    from ketch.core.quantity import parse_memory

    if resources.get("resourceMemoryLimit"):
        return parse_memory(str(resources["resourceMemoryLimit"]))
    if resources.get("memoryLimit"):
        return int(float(resources["memoryLimit"]) * 1e9)
    return 0


def accelerators(resources: Mapping[str, Any]) -> tuple[str, str] | None:
    acc = resources.get("accelerator") or {}
    count = acc.get("resourceCount") or acc.get("count")
    if not count or str(count) in ("0", ""):
        return None
    return str(acc.get("resourceType") or acc.get("type") or "accelerator"), str(count)


_GPU_TYPES = ("nvidia.com/gpu", "amd.com/gpu", "gpu")


def with_accelerator(res: ResourceRequest, kind: str, count: str) -> ResourceRequest:
    """``res`` asking for ``count`` of the accelerator ``kind`` too: GPUs for a GPU type
    (``nvidia.com/gpu``, KFP's ``NVIDIA_TESLA_T4`` and the like), else the custom
    resource of that name."""
    amount = float(count)
    if kind.lower() in _GPU_TYPES or kind.upper().startswith("NVIDIA"):
        return replace(res, gpu=res.gpu + int(amount))
    return replace(res, custom={**res.custom, kind: amount})


def lightweight_entry(command: list[str], args: list[str]) -> tuple[str, str] | None:
    """The (source, function) of a KFP lightweight Python component, else None."""
    if "--function_to_execute" not in args:
        return None
    for i, part in enumerate(command[:-1]):
        if "executor_main" in part:
            return command[i + 1], args[args.index("--function_to_execute") + 1]
    return None


def cache_key(executor_digest: str, component: ComponentSpec, params: Mapping[str, Any],
               artifacts: Mapping[str, list[dict[str, Any]]]) -> str:
    """KFP's fingerprint: the executor, the output names, the input values and artifacts."""
    doc = {"executor": executor_digest,
           "outputs": {"parameters": sorted(component.output_params),
                       "artifacts": sorted(component.output_artifacts)},
           "params": params,
           "artifacts": {k: [a.get("uri") for a in v] for k, v in artifacts.items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def collect_outputs(meta: str, st: dict[str, Any], component: ComponentSpec,
                    read: Callable[[str], str | None]) -> dict[str, Any]:
    """Output parameters and artifacts as the executor (or a container) wrote them
    under ``meta`` (a path or URI under the run's artifact root); ``read(location)``
    is the file's text, or None when there is none."""
    text = read(output_file(meta))
    written: dict[str, Any] = json.loads(text or "{}") if text is not None else {}
    params: dict[str, Any] = dict(written.get("parameterValues") or {})
    for name, spec in component.output_params.items():
        if name in params:
            continue
        value = read(_under(meta, "outputs", name, where=f"outputs.parameters.{name}"))
        if value is None:
            raise ValueError(f"output parameter {name!r} was not written")
        params[name] = coerce_parameter(value, spec.get("parameterType"),
                                        f"outputs.parameters.{name}")
    artifacts: dict[str, Any] = {}
    given = written.get("artifacts") or {}
    for name, spec in component.output_artifacts.items():
        schema = (spec.get("artifactType") or {}).get("schemaTitle", "system.Artifact")
        listed = (given.get(name) or {}).get("artifacts") or []
        root = output_root(st)
        default_uri = (_under(root, name, where=f"outputs.artifacts.{name}") if root
                       else f"/{name}")
        arts = [{"name": a.get("name") or name, "uri": a.get("uri") or default_uri,
                 "type": schema, "metadata": a.get("metadata") or {}} for a in listed] or [
            {"name": name, "uri": default_uri, "type": schema, "metadata": {}}]
        artifacts[name] = arts if spec.get("isArtifactList") else arts[0]
    return {"parameters": params, "artifacts": artifacts}


def _under(root: Any, *parts: str, where: str) -> Any:
    """``under`` for reading a finished step: a bad path is the step's failure (the
    engine reports a ValueError from here as its message), not the engine's."""
    try:
        return under(root, *parts, where=where)
    except InvalidError as err:
        raise ValueError(f"{err.fields[0].path}: {err.fields[0].message}") from None


def output_root(st: dict[str, Any]) -> str:
    return str(st.get("outputUri") or "")


def failure_message(tail: str, rc: int | None, reason: str = "",
                    detail: str = "") -> str:
    """The message of a failed step from its log's tail and how it ended: the exit
    status, or the executor's reason (``OOMKilled: ...``, ``ProcessLost: ...``)."""
    tail = tail.strip()
    if reason and reason not in ("Error", "Completed"):
        head = f"{reason}: {detail}" if detail else reason
        return head + (f"\n{tail}" if tail else "")
    if rc is None:
        what = "no exit status"
    else:
        # 128+N is how a shell reports a child killed by signal N.
        what = ("killed" if rc < 0 else f"killed by signal {rc - 128}" if rc > 128
                else f"exit status {rc}")
    last = tail.rsplit("\n", 1)[-1]
    if is_not_installed_hint(last):
        # The step's packages were not installed: that is the headline, then the log.
        return f"step failed ({what}): {last.removeprefix('ketch: ')}\n{tail}"
    return f"step failed ({what})" + (f":\n{tail}" if tail else "")


def read_location(store: ArtifactStore, location: str) -> str | None:
    """The text of a file the step wrote, through the artifact store when ``location``
    is one of its URIs (a step on another host wrote it there), else a local path (a
    local store, or a ``file://`` pipeline root); None when it does not exist."""
    root = store.root_uri.rstrip("/") + "/"
    try:
        if "://" in location and location.startswith(root):
            return store.read_bytes(location[len(root):]).decode("utf-8")
        with open(location, encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotFoundError):
        return None
