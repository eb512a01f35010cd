"""Model runtimes: one small interface over sklearn, xgboost, lightgbm, ONNX, TorchScript
and user classes, chosen by the model server's ``--format``.

Each framework is imported inside its runtime's ``load()``, so a missing one is a
clear :class:`ModelLoadError` naming the package to install, never an import error at
start-up. The interface is in ``_runtime_base``, the framework runtimes other than
sklearn in ``_frameworks``; this module has sklearn, custom classes and the factory.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ketch.serving._frameworks import (
    LightGBMRuntime,
    ONNXRuntime,
    TorchScriptRuntime,
    XGBoostRuntime,
)
from ketch.serving._runtime_base import (
    INPUT_NAME,
    OUTPUT_NAME,
    InvalidInput,
    ModelLoadError,
    NDArray,
    Runtime,
    need_framework,
)

__all__ = ["FORMATS", "INPUT_NAME", "OUTPUT_NAME", "CustomRuntime", "InvalidInput",
           "ModelLoadError", "Runtime", "build_user_object", "make_runtime", "maybe_await"]


class SKLearnRuntime(Runtime):
    """A scikit-learn estimator saved with joblib (``*.joblib``, ``*.pkl``)."""

    platform = "sklearn"
    format = "sklearn"
    suffixes = (".joblib", ".pkl", ".pickle")

    def load(self) -> None:
        path = self.model_file()
        need_framework("sklearn", "scikit-learn", "scikit-learn", extra="serving")
        joblib = need_framework("joblib", "joblib", "joblib", extra="serving")
        try:
            self._model = joblib.load(path)
        except Exception as e:
            raise self._load_error(path, e) from None
        if not callable(getattr(self._model, "predict", None)):
            raise ModelLoadError(f"{path} holds a {type(self._model).__name__}, "
                                 "not an estimator with predict()")
        self.n_features = getattr(self._model, "n_features_in_", None)
        from ketch.serving._sklearn_fast import fast_predict

        self._fast = fast_predict(self._model)
        self.ready = True

    def _output_datatype(self) -> str:
        classes = getattr(self._model, "classes_", None)
        if isinstance(classes, np.ndarray) and classes.dtype.kind in "iu":
            return "INT64"
        return "FP64"

    def predict(self, data: Any) -> Any:
        if self._fast is not None:
            fast = self._fast(data)
            if fast is not None:
                return fast
        try:
            out: NDArray = self._model.predict(data)
        except (ValueError, TypeError) as e:
            # sklearn's input validation (check_array: "Expected 2D array", "could not
            # convert string to float", a wrong feature count) raises these for input
            # the estimator cannot take: the request is wrong, not the model (a 400).
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InvalidInput(f"model {self.name} cannot take this input: {first}") from None
        return out


async def maybe_await(value: Any) -> Any:
    """``value``, awaited first when it is awaitable (user hooks may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


def build_user_object(target: str, name: str, model_dir: str, *, what: str,
                      option: str) -> Any:
    """Import ``module:Class`` and build it with whichever of ``name``/``model_dir`` it takes.

    ``model_dir``, when a directory, is put first on ``sys.path`` so a module shipped
    beside the model is found.

    Raises:
        ModelLoadError: If the target is malformed, or the module or class is missing.
    """
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise ModelLoadError(f"{option} must be module:Class, got {target!r}")
    if model_dir and Path(model_dir).is_dir():
        sys.path.insert(0, str(Path(model_dir).resolve()))
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ModelLoadError(f"cannot import {what} module {module_name!r}: "
                             f"{type(e).__name__}: {e}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ModelLoadError(f"module {module_name!r} has no class {class_name!r}")
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    kwargs = {k: v for k, v in (("name", name), ("model_dir", model_dir)) if k in params}
    try:
        return cls(**kwargs)
    except Exception as e:
        raise ModelLoadError(f"cannot build {what} {target}: {type(e).__name__}: {e}"
                             ) from None


class CustomRuntime(Runtime):
    """A user class (``--custom module:Class``) shaped like KServe's ``Model``.

    The class is built with whichever of ``name`` and ``model_dir`` its constructor
    takes; ``load()``, ``preprocess()``, ``predict()`` and ``postprocess()`` may each be
    sync or async, and all but ``predict()`` are optional. Each request's payload dict
    goes through preprocess -> predict -> postprocess: for V1 the JSON body, for V2 the
    body with every input's ``data`` decoded to a shaped numpy array.
    """

    platform = "custom"
    format = "custom"

    def __init__(self, name: str, model_dir: str, target: str) -> None:
        super().__init__(name, model_dir)
        self.target = target
        self.user: Any = None

    def load(self) -> None:
        raise ModelLoadError("a custom model loads with aload()")

    async def aload(self) -> None:
        """Build the user's object and run its ``load()`` (sync or async).

        Raises:
            ModelLoadError: If the class cannot be found, built or loaded.
        """
        self.user = build_user_object(self.target, self.name, self.model_dir,
                                      what="custom model", option="--custom")
        if not callable(getattr(self.user, "predict", None)):
            raise ModelLoadError(f"custom model {self.target} has no predict() method")
        loader = getattr(self.user, "load", None)
        if callable(loader):
            try:
                result = await maybe_await(loader())
            except Exception as e:
                raise ModelLoadError(f"custom model {self.target} failed to load: "
                                     f"{type(e).__name__}: {e}") from None
            if result is False:
                raise ModelLoadError(f"custom model {self.target}: load() returned False")
        self.ready = bool(getattr(self.user, "ready", True))

    @property
    def async_predict(self) -> bool:
        """Whether the user's ``predict`` is a coroutine function (awaited on the loop)."""
        return inspect.iscoroutinefunction(self.user.predict)

    async def preprocess(self, payload: Any) -> Any:
        """The user's ``preprocess`` (if any) applied to one request's payload."""
        pre = getattr(self.user, "preprocess", None)
        return await maybe_await(pre(payload)) if callable(pre) else payload

    async def postprocess(self, result: Any) -> Any:
        """The user's ``postprocess`` (if any) applied to the model's result."""
        post = getattr(self.user, "postprocess", None)
        return await maybe_await(post(result)) if callable(post) else result

    async def infer(self, payload: Any) -> Any:
        """Run preprocess -> predict -> postprocess on one request's payload, all on the
        caller's event loop (the data plane runs a sync ``predict`` off it instead)."""
        payload = await self.preprocess(payload)
        result = await maybe_await(self.user.predict(payload))
        return await self.postprocess(result)

    def predict(self, data: Any) -> Any:
        return self.user.predict(data)

    @property
    def metadata(self) -> dict[str, Any]:
        meta = getattr(self.user, "metadata", None)
        if isinstance(meta, dict):
            return {"name": self.name, "versions": list(self.versions),
                    "platform": self.platform, "inputs": [], "outputs": [], **meta}
        return {"name": self.name, "versions": list(self.versions),
                "platform": self.platform, "inputs": [], "outputs": []}


FORMATS: dict[str, type[Runtime]] = {
    "sklearn": SKLearnRuntime,
    "xgboost": XGBoostRuntime,
    "lightgbm": LightGBMRuntime,
    "onnx": ONNXRuntime,
    "pytorch": TorchScriptRuntime,
}


def make_runtime(name: str, model_dir: str, fmt: str, custom: str | None = None) -> Runtime:
    """The runtime for ``--format`` (``custom`` needs ``--custom module:Class``).

    Raises:
        ModelLoadError: On an unknown format or a custom format without a class.
    """
    fmt = fmt.lower()
    if fmt == "custom" or custom:
        if not custom:
            raise ModelLoadError("--format custom needs --custom module:Class")
        return CustomRuntime(name, model_dir, custom)
    cls = FORMATS.get(fmt)
    if cls is None:
        raise ModelLoadError(f"unknown model format {fmt!r} "
                             f"(one of {', '.join([*FORMATS, 'custom'])})")
    return cls(name, model_dir)
