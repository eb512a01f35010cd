"""The ``deploymentSpec`` side of the IR: executor container specs as kfp writes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ketch.pipelines.dsl._placeholders import placeholder_to_ir, unknown_placeholders

if TYPE_CHECKING:
    from ketch.pipelines.dsl._component import ContainerComponent, PythonComponent
    from ketch.pipelines.dsl._importer import ImporterComponent
    from ketch.pipelines.dsl._task import PipelineTask
    from ketch.pipelines.dsl.components import YamlComponent

__all__ = ["KFP_PIN", "container_executor", "importer_executor", "lightweight_executor",
           "source_with_header"]

# The IR names the kfp release whose executor runs the step, so that the same YAML
# also runs on a real KFP cluster; ketch runs it with its own executor (kfp alias).
KFP_PIN = "kfp==2.16.1"
IMPORTS = "import kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *"
_RUNNER = ('program_path=$(mktemp -d)\n\nprintf "%s" "$0" > '
           '"$program_path/ephemeral_component.py"\n_KFP_RUNTIME=true python3 -m '
           'kfp.dsl.executor_main                         --component_module_path  '
           '                       "$program_path/ephemeral_component.py"          '
           '               "$@"\n')
_ENSURE_PIP = ('\nif ! [ -x "$(command -v pip)" ]; then\n    python3 -m ensurepip || '
               'python3 -m ensurepip --user || apt-get install python3-pip\nfi\n\n')
_PIP = "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location"
_KFP_PACKAGES = f"'{KFP_PIN}' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"'"


def source_with_header(source: str, additional: list[str] | None = None,
                       imports: list[str] | None = None) -> str:
    """The embedded program: kfp's import header (plus custom artifact imports), helper
    functions, then the function."""
    header = "\n".join([IMPORTS, *(imports or [])])
    helpers = ("\n\n" + "\n\n".join(additional)) if additional else ""
    return f"\n{header}{helpers}\n\n{source}\n"


def _install_line(component: PythonComponent) -> str:
    index = "".join(f" --index-url {url} --trusted-host {url}"
                    for url in component.pip_index_urls[:1])
    index += "".join(f" --extra-index-url {url} --trusted-host {url}"
                     for url in component.pip_index_urls[1:])
    kfp_install = f"{_PIP}{index} {_KFP_PACKAGES}"
    if component.packages_to_install:
        user = " ".join(f"'{p}'" for p in component.packages_to_install)
        pip_base = _PIP.replace("PIP_DISABLE_PIP_VERSION_CHECK=1 ", "")
        kfp_install = (f"{_PIP}{index} {user}  &&  {pip_base}{index} {_KFP_PACKAGES}")
    return f'{_ENSURE_PIP}{kfp_install} && "$0" "$@"\n'


def _resources(res: dict[str, str]) -> dict[str, Any]:
    """kfp's resource fields; a value taken from a channel is a ``{{$.inputs...}}``
    placeholder and then only the string form is written (no float, no legacy field)."""
    out: dict[str, Any] = {}
    for key, cap in (("cpuLimit", "CpuLimit"), ("cpuRequest", "CpuRequest")):
        if key in res:
            text = res[key]
            if "{{" not in text:
                out[key] = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
            out[f"resource{cap}"] = text
    for key, cap in (("memoryLimit", "MemoryLimit"), ("memoryRequest", "MemoryRequest")):
        if key in res:
            text = res[key]
            if "{{" not in text:
                out[key] = memory_in_gb(text)
            out[f"resource{cap}"] = text
    if "acceleratorType" in res:
        count = res.get("acceleratorCount", "1")
        kind = res["acceleratorType"]
        accelerator = {"resourceCount": count, "resourceType": kind}
        if "{{" not in count:
            accelerator["count"] = count
        if "{{" not in kind:
            accelerator["type"] = kind
        out["accelerator"] = accelerator
    return out


_UNITS = {"E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "K": 1e3,
          "Ei": 2**60, "Pi": 2**50, "Ti": 2**40, "Gi": 2**30, "Mi": 2**20, "Ki": 2**10}


def memory_in_gb(text: str) -> float:
    """``'500M'`` -> 0.5; the float kfp writes beside the original string."""
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _UNITS[suffix] / 1e9
    return float(text) / 1e9


def _finish(container: dict[str, Any], task: PipelineTask,
            resources: dict[str, str], env: dict[str, str] | None = None) -> dict[str, Any]:
    # A YAML component's own env first; the task's set_env_variable overrides by name.
    merged = {**(env or {}), **task.env}
    if merged:
        container["env"] = [{"name": k, "value": v} for k, v in merged.items()]
    fields = _resources(resources)
    if fields:
        container["resources"] = fields
    if "__image__" in resources:
        container["image"] = resources["__image__"]
    return {"container": container}


def lightweight_executor(component: PythonComponent, task: PipelineTask,
                         resources: dict[str, str]) -> dict[str, Any]:
    """The executor of a ``@dsl.component`` task: kfp's install + run command."""
    return _finish({
        "image": component.base_image,
        "command": ["sh", "-c", _install_line(component), "sh", "-ec", _RUNNER,
                    source_with_header(component.source, component.additional_sources,
                                       component.custom_imports)],
        "args": ["--executor_input", "{{$}}", "--function_to_execute",
                 component.python_func.__name__],
    }, task, resources)


def container_executor(component: ContainerComponent | YamlComponent, task: PipelineTask,
                       resources: dict[str, str]) -> dict[str, Any]:
    """The executor of a ``@dsl.container_component`` task.

    Raises:
        ValueError: A command/args placeholder names no input or output of the component.
    """
    spec = component.container
    assert spec is not None  # container-backed components only
    container: dict[str, Any] = {"image": spec.image}
    inputs, outputs = set(component.inputs), set(component.outputs)
    for field in ("command", "args"):
        items = getattr(spec, field)
        if items is None:
            continue
        if not items:
            continue  # kfp leaves out an empty command or args list
        converted = [placeholder_to_ir(item) for item in items]
        for index, text in enumerate(converted):
            bad = unknown_placeholders(text, inputs, outputs)
            if bad:
                raise ValueError(f"{field}[{index}]: unknown placeholder {bad[0]}")
        container[field] = converted
    own_env = getattr(component, "env", None) or {}
    return _finish(container, task, resources,
                   env={k: placeholder_to_ir(v) for k, v in own_env.items()})


def importer_executor(component: ImporterComponent) -> dict[str, Any]:
    """The executor of a ``dsl.importer`` task (``deploymentSpec`` importer spec)."""
    from ketch.pipelines.compiler._ir_parts import to_value
    from ketch.pipelines.dsl._channels import PipelineChannel

    cls = component.artifact_class
    spec: dict[str, Any] = {"typeSchema": {
        "schemaTitle": str(getattr(cls, "schema_title", "system.Artifact")),
        "schemaVersion": str(getattr(cls, "schema_version", "0.0.1"))}}
    if isinstance(component.artifact_uri, PipelineChannel):
        spec["artifactUri"] = {"runtimeParameter": "uri"}
    else:
        spec["artifactUri"] = {"constant": str(component.artifact_uri)}
    if component.metadata:
        spec["metadata"] = to_value(component.metadata)
    if component.reimport:
        spec["reimport"] = True
    if component.download_to_workspace:
        spec["downloadToWorkspace"] = True
    return {"importer": spec}
