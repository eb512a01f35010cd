"""Trial templates: Katib's ``trialTemplate`` rendered into a trial's run, and a run
into a process.

A ``batch/v1`` Job ``trialSpec`` runs as one executor unit: the primary container's
``command`` and ``args`` (``${trialParameters.x}`` substituted), its ``env``,
``workingDir`` and resources. Its ``image`` is recorded, not pulled: ketch runs
no containers, and says so in the Trial's conditions.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ketch.core.errors import FieldError, InvalidError
from ketch.core.quantity import parse_cpu, parse_memory

__all__ = ["RunParts", "check_template", "render", "run_parts"]

_REFERENCE = re.compile(r"\$\{trialParameters\.([^}]*)\}")
_META_REFERENCES = ("${trialSpec.Name}", "${trialSpec.Namespace}", "${trialSpec.Kind}",
                    "${trialSpec.APIVersion}")
DEFAULT_CONTAINER = "training-container"
_SUPPORTED = {("batch/v1", "Job")}


def check_template(template: Any, parameter_names: set[str], path: str) -> None:
    """Refuse a template whose references do not resolve, naming the field."""
    errors: list[FieldError] = []
    if template.config_map is not None:
        errors.append(FieldError(f"{path}.configMap", "trial templates from a ConfigMap are "
                                 "not supported yet; inline the template as trialSpec"))
    spec = template.trial_spec
    if spec is None:
        if template.config_map is None:
            errors.append(FieldError(f"{path}.trialSpec", "a trialSpec is required"))
        raise InvalidError("invalid Experiment", errors)
    declared = {}
    for i, param in enumerate(template.trial_parameters):
        where = f"{path}.trialParameters[{i}]"
        ref = param.reference or param.name
        if ref not in parameter_names and not ref.startswith("${trialSpec."):
            errors.append(FieldError(f"{where}.reference", f"{ref!r} is not a parameter of "
                                     f"the experiment ({', '.join(sorted(parameter_names))})"))
        if ref.startswith("${trialSpec.") and ref not in _META_REFERENCES:
            errors.append(FieldError(f"{where}.reference", f"{ref} is not supported; one of "
                                     f"{', '.join(_META_REFERENCES)}"))
        declared[param.name] = ref
    text = json.dumps(spec)
    for name in sorted(set(_REFERENCE.findall(text))):
        if name not in declared:
            errors.append(FieldError(f"{path}.trialSpec", f"${{trialParameters.{name}}} "
                                     "references no entry of trialTemplate.trialParameters"))
    kind = (str(spec.get("apiVersion")), str(spec.get("kind")))
    if kind not in _SUPPORTED:
        errors.append(FieldError(f"{path}.trialSpec", f"{kind[0]} {kind[1]} trials are not "
                                 "supported yet; use a batch/v1 Job"))
    else:
        try:
            _container(spec, template.primary_container_name, f"{path}.trialSpec")
        except InvalidError as err:
            errors += err.fields
    if errors:
        raise InvalidError("invalid Experiment", errors)


def render(template: Any, assignments: Mapping[str, str], *, trial: str, namespace: str,
           labels: Mapping[str, str]) -> dict[str, Any]:
    """The trial's runSpec: the template with every reference replaced."""
    meta = {"${trialSpec.Name}": trial, "${trialSpec.Namespace}": namespace,
            "${trialSpec.Kind}": str(template.trial_spec.get("kind")),
            "${trialSpec.APIVersion}": str(template.trial_spec.get("apiVersion"))}
    values = {}
    for param in template.trial_parameters:
        ref = param.reference or param.name
        values[param.name] = meta.get(ref, assignments.get(ref, ""))

    def substitute(node: Any) -> Any:
        if isinstance(node, str):
            return _REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), node)
        if isinstance(node, list):
            return [substitute(v) for v in node]
        if isinstance(node, dict):
            return {k: substitute(v) for k, v in node.items()}
        return node

    run: dict[str, Any] = substitute(copy.deepcopy(template.trial_spec))
    metadata = run.setdefault("metadata", {})
    metadata.update(name=trial, namespace=namespace)
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    return run


@dataclass(frozen=True)
class RunParts:
    command: list[str]
    env: dict[str, str]
    working_dir: str | None
    cpu: float
    memory: int
    gpu: int
    image: str | None
    deadline: float | None


def _container(run: Mapping[str, Any], primary: str | None, path: str) -> dict[str, Any]:
    pod = (((run.get("spec") or {}).get("template") or {}).get("spec") or {})
    containers = pod.get("containers") or []
    where = f"{path}.spec.template.spec.containers"
    if not isinstance(containers, list) or not containers:
        raise InvalidError("invalid trial", [FieldError(where, "a container is required")])
    name = primary or DEFAULT_CONTAINER
    chosen = next((c for c in containers if isinstance(c, dict) and c.get("name") == name),
                  containers[0] if len(containers) == 1 else None)
    if not isinstance(chosen, dict):
        raise InvalidError("invalid trial", [FieldError(where, f"no container named {name!r} "
                                                        "(trialTemplate.primaryContainerName)")])
    index = containers.index(chosen)
    if not chosen.get("command"):
        raise InvalidError("invalid trial", [FieldError(
            f"{where}[{index}].command", "ketch runs no container images: the container needs "
            "a command (its image's entrypoint is not known here)")])
    for j, var in enumerate(chosen.get("env") or []):
        if not isinstance(var, dict) or "valueFrom" in var:
            raise InvalidError("invalid trial", [FieldError(
                f"{where}[{index}].env[{j}]", "only name/value variables are supported")])
    return chosen


def run_parts(run: Mapping[str, Any], primary: str | None) -> RunParts:
    """What the executor runs for a trial's runSpec."""
    container = _container(run, primary, "spec.runSpec")
    requests = {**((container.get("resources") or {}).get("limits") or {}),
                **((container.get("resources") or {}).get("requests") or {})}
    deadline = (run.get("spec") or {}).get("activeDeadlineSeconds")
    return RunParts(
        command=[str(c) for c in container["command"]] + [str(a) for a in
                                                          container.get("args") or []],
        env={str(v["name"]): str(v.get("value", "")) for v in container.get("env") or []},
        working_dir=container.get("workingDir"),
        cpu=parse_cpu(requests["cpu"]) if "cpu" in requests else 1.0,
        memory=parse_memory(requests["memory"]) if "memory" in requests else 0,
        gpu=int(requests.get("nvidia.com/gpu", 0)),
        image=container.get("image"),
        deadline=float(deadline) if isinstance(deadline, int | float) else None)
