"""InferenceService spec -> model server options: ``batcher``, ``logger``, ``transformer``.

The controller starts each replica as ``python -m ketch.serving.modelserver ...``; this
turns the parts of the spec the replica itself honours into its command-line options, so
the controller adds ``*replica_args(spec, service=..., namespace=...)`` and nothing more:

- ``predictor.batcher {maxBatchSize, maxLatency (ms), timeout (s)}`` ->
  ``--max-batch-size``, ``--max-latency``, ``--batch-timeout`` (KServe's defaults, 32,
  5000 ms and 60 s, for the fields left out);
- ``predictor.logger {url, mode, metadataHeaders}`` -> ``--logger-url``,
  ``--logger-mode`` (``all`` when left out), ``--logger-metadata-header`` per header, with
  ``--service`` and ``--namespace`` for the events' attributes;
- ``transformer.python {class, codeDir}`` (ketch's form: no container, the class runs in
  the replica around the model) -> ``--transformer``, ``--transformer-dir``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SpecError", "replica_args"]

_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SpecError(ValueError):
    """A batcher, logger or transformer field is wrong; ``path`` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _number(section: dict[str, Any], key: str, path: str, *, integer: bool,
            minimum: float, strict: bool = False) -> str | None:
    if key not in section or section[key] is None:
        return None
    value = section[key]
    if isinstance(value, str):  # KServe's older examples quote them: "32", "5000.0"
        try:
            value = float(value)
        except ValueError:
            raise SpecError(f"{path}.{key}", f"must be a number, got {section[key]!r}"
                            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{path}.{key}", f"must be a number, got {section[key]!r}")
    if integer and float(value) != int(value):
        raise SpecError(f"{path}.{key}", f"must be a whole number, got {section[key]!r}")
    if value < minimum or (strict and value == minimum):
        raise SpecError(f"{path}.{key}", f"must be {'>' if strict else '>='} {minimum:g}, "
                                         f"got {section[key]!r}")
    return str(int(value)) if integer else f"{float(value):g}"


def _section(spec: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: Any = spec
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if node is None:
        return None
    if not isinstance(node, dict):
        raise SpecError(path, f"must be a mapping, got {type(node).__name__}")
    return node


def replica_args(spec: dict[str, Any], *, service: str, namespace: str) -> list[str]:
    """The model server options for an InferenceService's ``spec``.

    Raises:
        SpecError: On a malformed ``batcher``, ``logger`` or ``transformer`` (the message
            starts with the field path, e.g. ``predictor.batcher.maxBatchSize``).
    """
    args: list[str] = []
    batcher = _section(spec, "predictor.batcher")
    if batcher is not None:
        p = "predictor.batcher"
        size = _number(batcher, "maxBatchSize", p, integer=True, minimum=1)
        latency = _number(batcher, "maxLatency", p, integer=False, minimum=0)
        timeout = _number(batcher, "timeout", p, integer=False, minimum=0, strict=True)
        args += ["--max-batch-size", size or "32", "--max-latency", latency or "5000"]
        if timeout is not None:
            args += ["--batch-timeout", timeout]
    logger = _section(spec, "predictor.logger")
    if logger is not None:
        url = logger.get("url")
        if not isinstance(url, str) or not url:
            raise SpecError("predictor.logger.url", "is required: an http(s):// URL, a "
                                                    "file:// URL or a file path")
        mode = logger.get("mode", "all")
        if mode not in ("all", "request", "response"):
            raise SpecError("predictor.logger.mode",
                            f"must be all, request or response, got {mode!r}")
        args += ["--logger-url", url, "--logger-mode", mode, "--service", service,
                 "--namespace", namespace]
        headers = logger.get("metadataHeaders") or []
        if not isinstance(headers, list) or not all(isinstance(h, str) and h
                                                    for h in headers):
            raise SpecError("predictor.logger.metadataHeaders",
                            f"must be a list of header names, got {headers!r}")
        for header in headers:
            args += ["--logger-metadata-header", header]
    transformer = _section(spec, "transformer")
    if transformer is not None:
        python = _section(spec, "transformer.python")
        if python is None:
            raise SpecError("transformer", "ketch runs a transformer as a Python class in "
                                           "the model server: give transformer.python.class "
                                           "(module:Class); containers cannot run here")
        target = python.get("class")
        if not isinstance(target, str) or not _TARGET.match(target):
            raise SpecError("transformer.python.class",
                            f"must be module:Class, got {target!r}")
        args += ["--transformer", target]
        code_dir = python.get("codeDir")
        if code_dir is not None:
            if not isinstance(code_dir, str) or not code_dir:
                raise SpecError("transformer.python.codeDir", "must be a directory path")
            args += ["--transformer-dir", code_dir]
    return args
