"""The model runtime interface: :class:`Runtime`, its errors, and the framework import
that turns a missing package into one line naming what to install."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy.typing as npt

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "InvalidInput", "ModelLoadError", "NDArray", "Runtime",
           "first_line", "need_framework"]

NDArray = npt.NDArray[Any]
INPUT_NAME = "input-0"
OUTPUT_NAME = "output-0"


class ModelLoadError(Exception):
    """The model cannot be loaded; the message is one line meant for the user."""


class InvalidInput(ValueError):
    """The request's input does not fit the model (an HTTP 400); the message names it."""


def need_framework(module: str, framework: str, package: str, *,
                   extra: str = "serving-frameworks") -> Any:
    """Import a framework for its runtime, or say in one line what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ModelLoadError(f"{framework} models need the {package} package, which "
                             f"cannot be imported here ({e}): pip install {package} "
                             f"(or pip install 'ketch[{extra}]')") from None
    except OSError as e:  # installed, but a native library it links against is missing
        raise ModelLoadError(f"{framework} models need {package}, which is installed "
                             f"but cannot load: {e}") from None


def first_line(exc: BaseException, *, last: bool = False) -> str:
    """One line of an exception's text (the last for TorchScript's long tracebacks)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1] if last else lines[0]


class Runtime(ABC):
    """A loaded model behind the data plane.

    Attributes:
        name: The model name served under ``/v1/models/{name}`` and ``/v2/models/{name}``.
        model_dir: A directory holding the model file, or the file itself.
        platform: The platform reported in V2 model metadata.
        versions: The versions the model answers to under ``/versions/{v}``.
        ready: Whether ``load()`` has completed.
    """

    platform: str = ""
    format: str = ""  # the --format / modelFormat name, for messages
    suffixes: tuple[str, ...] = ()

    def __init__(self, name: str, model_dir: str) -> None:
        self.name = name
        self.model_dir = model_dir
        self.versions: list[str] = ["1"]
        self.ready = False
        self.n_features: int | None = None

    def model_file(self) -> Path:
        """The model file: ``model_dir`` itself, or the first file in it with a known suffix.

        Raises:
            ModelLoadError: If nothing matching is there.
        """
        path = Path(self.model_dir)
        if path.is_file():
            return path
        if not path.is_dir():
            raise ModelLoadError(f"model path {self.model_dir} does not exist")
        for suffix in self.suffixes:
            found = sorted(path.rglob(f"*{suffix}"))
            # KServe's servers look for model.<suffix>; another file with the suffix (a
            # metadata.json beside model.json) must not win by sorting first.
            named = [f for f in found if f.stem == "model"]
            if named or found:
                return (named or found)[0]
        raise ModelLoadError(f"no {self.format} model file ({', '.join(self.suffixes)}) "
                             f"in {self.model_dir}")

    @abstractmethod
    def load(self) -> None:
        """Load the model; sets ``ready``.

        Raises:
            ModelLoadError: On a missing or corrupt file or a missing framework.
        """

    @abstractmethod
    def predict(self, data: Any) -> Any:
        """Run the model on a batch (rows first) and return its predictions.

        Returns:
            One array (the V2 output ``output-0``), or a dict of named, row-aligned
            arrays (V2 outputs by name; V1 ``predictions`` are the first).

        Raises:
            InvalidInput: When the input does not fit the model (an HTTP 400).
            Exception: Whatever the model raises (an HTTP 500).
        """

    def model_input(self, names: list[str], arrays: list[NDArray]) -> Any:
        """What :meth:`predict` takes for a V2 request's decoded input tensors.

        The default: exactly one input, whatever its name (as KServe's Python servers).

        Raises:
            InvalidInput: When the inputs' number, names or datatypes do not fit.
        """
        if len(arrays) != 1:
            raise InvalidInput(f"model {self.name} takes one input tensor, got "
                               f"{len(arrays)}")
        return arrays[0]

    def _output_datatype(self) -> str:
        return "FP64"

    def _inputs_meta(self) -> list[dict[str, Any]]:
        in_shape = [-1, self.n_features] if self.n_features else [-1, -1]
        return [{"name": INPUT_NAME, "datatype": "FP64", "shape": in_shape}]

    def _outputs_meta(self) -> list[dict[str, Any]]:
        return [{"name": OUTPUT_NAME, "datatype": self._output_datatype(), "shape": [-1]}]

    @property
    def metadata(self) -> dict[str, Any]:
        """V2 model metadata: name, versions, platform, inputs and outputs."""
        return {
            "name": self.name,
            "versions": list(self.versions),
            "platform": self.platform,
            "inputs": self._inputs_meta(),
            "outputs": self._outputs_meta(),
        }

    def _load_error(self, path: Path, exc: BaseException) -> ModelLoadError:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ModelLoadError(f"cannot load {self.format} model {path}: {text}")
