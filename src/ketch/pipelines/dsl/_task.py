"""``PipelineTask``: one call of a component inside a pipeline, and its options."""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

from ketch.pipelines.dsl._channels import PipelineChannel, has_channel

if TYPE_CHECKING:
    from ketch.pipelines.dsl._component import BaseComponent

__all__ = ["PipelineTask", "duration_seconds", "sanitize_name"]


def sanitize_name(name: str) -> str:
    """A name as KFP writes task and component names (``make_ds`` -> ``make-ds``)."""
    text = re.sub(r"[^-0-9a-z]+", "-", name.lower())
    return re.sub(r"-+", "-", text).strip("-")


def duration_seconds(value: str | int | float | None, default: str, *, field: str) -> int:
    """``'1m'``/``'30s'``/``'2h'``/``90`` -> whole seconds, as kfp's retry policy stores them."""
    text = str(value if value is not None else default).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text)
    if not match:
        raise ValueError(f"set_retry: {field} {text!r} is not a duration such as '30s', "
                         "'5m' or '1h'")
    scale = {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    return int(float(match.group(1)) * scale)


_CPU = re.compile(r"([0-9]*[.])?[0-9]+m?$")
_MEMORY = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")


class PipelineTask:
    """A component call in a pipeline: its arguments, outputs and run options.

    Setters return the task, so calls chain (``task.set_cpu_limit('1').after(other)``).
    """

    def __init__(self, component: BaseComponent, arguments: dict[str, Any],
                 name: str) -> None:
        self.component = component
        self.name = name
        self.inputs: dict[str, Any] = dict(arguments)
        self.display_name: str | None = None
        self.enable_caching = True
        self.cache_key = ""
        self.retry_policy: dict[str, Any] | None = None
        self.resources: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.dependent_tasks: list[str] = []
        self.is_exit_handler = False
        self.ignore_upstream_failure_flag = False
        self.outputs: dict[str, PipelineChannel] = {}
        self.channel_registry: dict[str, PipelineChannel] = {}
        for out_name, spec in component.outputs.items():
            self.outputs[out_name] = PipelineChannel(
                out_name, spec.type, task_name=name, task=self,
                is_artifact=spec.is_artifact, is_artifact_list=spec.is_artifact_list)

    @property
    def output(self) -> PipelineChannel:
        """The single output of the task (error when it has none or several)."""
        if len(self.outputs) != 1:
            names = ", ".join(sorted(self.outputs)) or "none"
            raise AttributeError(
                f"task {self.name!r} has {len(self.outputs)} outputs ({names}); use "
                ".outputs['<name>'] instead of .output")
        return next(iter(self.outputs.values()))

    def channel_inputs(self) -> list[PipelineChannel]:
        """The channels among the arguments, including those formatted into strings."""
        from ketch.pipelines.dsl._pipeline import channels_in

        found: list[PipelineChannel] = []
        for value in self.inputs.values():
            for channel in channels_in(value, self.channel_registry):
                if not has_channel(found, channel):
                    found.append(channel)
        return found

    # --- options -------------------------------------------------------------------

    def set_caching_options(self, enable_caching: bool, cache_key: str = "") -> PipelineTask:
        """Turn caching of this task on or off."""
        self.enable_caching = bool(enable_caching)
        self.cache_key = cache_key
        return self

    def set_retry(self, num_retries: int, backoff_duration: str | None = None,
                  backoff_factor: float | None = None,
                  backoff_max_duration: str | None = None) -> PipelineTask:
        """Retry the task up to ``num_retries`` times, with exponential backoff."""
        if num_retries < 0:
            raise ValueError(f"set_retry on task {self.name!r}: num_retries must be >= 0")
        backoff = duration_seconds(backoff_duration, "0s", field="backoff_duration")
        # kfp caps the backoff at one hour and writes the defaults out explicitly.
        cap = min(duration_seconds(backoff_max_duration, "3600s", field="backoff_max_duration"),
                  3600)
        self.retry_policy = {"maxRetryCount": int(num_retries), "backoffDuration": f"{backoff}s",
                             "backoffFactor": float(backoff_factor or 2.0),
                             "backoffMaxDuration": f"{cap}s"}
        return self

    def _set_resource(self, key: str, value: str, pattern: re.Pattern[str], what: str) -> None:
        text = str(value)
        if not isinstance(value, PipelineChannel) and not pattern.match(text):
            raise ValueError(f"task {self.name!r}: invalid {what} {text!r}")
        self.resources[key] = text

    def set_cpu_limit(self, cpu: str) -> PipelineTask:
        """CPU limit: a number of cores, or millicores (``'500m'``)."""
        self._set_resource("cpuLimit", cpu, _CPU, "cpu limit")
        return self

    def set_cpu_request(self, cpu: str) -> PipelineTask:
        """CPU request: a number of cores, or millicores (``'500m'``)."""
        self._set_resource("cpuRequest", cpu, _CPU, "cpu request")
        return self

    def set_memory_limit(self, memory: str) -> PipelineTask:
        """Memory limit (``'4G'``, ``'512Mi'``...)."""
        self._set_resource("memoryLimit", memory, _MEMORY, "memory limit")
        return self

    def set_memory_request(self, memory: str) -> PipelineTask:
        """Memory request (``'4G'``, ``'512Mi'``...)."""
        self._set_resource("memoryRequest", memory, _MEMORY, "memory request")
        return self

    def set_accelerator_type(self, accelerator: str) -> PipelineTask:
        """Accelerator type (``'nvidia.com/gpu'``...); the count defaults to 1."""
        self.resources["acceleratorType"] = str(accelerator)
        self.resources.setdefault("acceleratorCount", "1")
        return self

    def add_node_selector_constraint(self, accelerator: str) -> PipelineTask:
        """Deprecated alias of :meth:`set_accelerator_type`."""
        warnings.warn("'add_node_selector_constraint' is deprecated. Please use "
                      "'set_accelerator_type' instead.", category=DeprecationWarning,
                      stacklevel=2)
        return self.set_accelerator_type(accelerator)

    def set_accelerator_limit(self, limit: int | str) -> PipelineTask:
        """How many accelerators the task uses."""
        text = str(limit)
        if not isinstance(limit, PipelineChannel) and not re.fullmatch(r"\d+", text):
            raise ValueError(f"task {self.name!r}: accelerator limit must be a "
                             f"non-negative integer (got {text!r})")
        self.resources["acceleratorCount"] = text
        return self

    def set_gpu_limit(self, gpu: str) -> PipelineTask:
        """Deprecated alias of :meth:`set_accelerator_limit`."""
        return self.set_accelerator_limit(gpu)

    def set_env_variable(self, name: str, value: str) -> PipelineTask:
        """Set an environment variable in the task's process."""
        self.env[name] = value
        return self

    def set_display_name(self, name: str) -> PipelineTask:
        """The name shown in the run graph (the IR task name does not change)."""
        self.display_name = name
        return self

    def set_container_image(self, name: str) -> PipelineTask:
        """Override the component's image for this task (a constant or a channel)."""
        self.resources["__image__"] = str(name)
        return self

    def after(self, *tasks: PipelineTask) -> PipelineTask:
        """Run only after ``tasks`` finished, even with no data passed between them."""
        for task in tasks:
            if not isinstance(task, PipelineTask):
                raise TypeError(f"task {self.name!r}: .after() takes tasks, got {task!r}")
            if task.name not in self.dependent_tasks:
                self.dependent_tasks.append(task.name)
        return self

    def ignore_upstream_failure(self) -> PipelineTask:
        """Run even when upstream tasks failed (like an exit task).

        Raises:
            ValueError: An input fed by an upstream task has no default to fall back on.
        """
        for key, value in self.inputs.items():
            if isinstance(value, PipelineChannel) and value.task is not None and \
                    not self.component.inputs[key].has_default:
                raise ValueError(
                    f"task {self.name!r}: .ignore_upstream_failure() needs a default for "
                    f"input {key!r}, which {value.task_name!r} may fail to produce")
        self.ignore_upstream_failure_flag = True
        return self

    def __repr__(self) -> str:
        return f"PipelineTask({self.name!r})"
