"""@dsl.component options recorded in the IR: base_image, packages_to_install and
pip_index_urls (the step itself needs only the standard library)."""

from kfp import dsl


@dsl.component(base_image="python:3.11-slim", packages_to_install=["pyyaml>=6"],
               pip_index_urls=["https://pypi.org/simple"])
def dump(key: str, value: int) -> str:
    import json

    return json.dumps({key: value})


@dsl.pipeline(name="packages")
def packages(key: str = "answer") -> str:
    return dump(key=key, value=42).output


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": '{"answer": 42}'}},
    "tasks": {"dump": {"phase": "Succeeded"}},
}
