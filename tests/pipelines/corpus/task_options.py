"""PipelineTask options: caching off, resources (cpu/memory requests and limits,
accelerator), an environment variable the step reads, a display name, and .after()."""

from kfp import dsl


@dsl.component
def read_env(name: str) -> str:
    import os

    return os.environ.get(name, "<unset>")


@dsl.component
def stamp(text: str) -> str:
    return f"[{text}]"


@dsl.pipeline(name="task-options")
def task_options() -> str:
    first = stamp(text="first")
    first.set_caching_options(enable_caching=False)
    env = read_env(name="GREETING")
    env.set_env_variable("GREETING", "hello")
    env.set_cpu_request("100m").set_cpu_limit("1").set_memory_request("64M")
    env.set_memory_limit("1Gi").set_display_name("Read the environment")
    env.after(first)
    sized = stamp(text="accelerated")
    sized.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    return env.output


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": "hello"}},
    "tasks": {
        "stamp": {"phase": "Succeeded", "cached": False,
                  "outputs": {"parameters": {"Output": "[first]"}}},
        "read-env": {"phase": "Succeeded", "outputs": {"parameters": {"Output": "hello"}}},
    },
    # stamp-2 asks for a GPU: where none exists the engine reports it in the task's
    # conditions rather than dropping the request; its phase is the engine's choice.
}
