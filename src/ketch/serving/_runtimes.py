"""Model runtimes: one small interface over sklearn, xgboost, lightgbm, ONNX, TorchScript
and user classes, chosen by the model server's ``--format``.

Each framework is imported inside its runtime's ``load()``, so a missing one is a
clear :class:`ModelLoadError` naming the extra to install, never an import error at
start-up. Tensor names follow KServe: a model takes ``input-0`` and returns ``output-0``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FORMATS", "CustomRuntime", "ModelLoadError", "Runtime", "build_user_object",
           "make_runtime", "maybe_await"]

NDArray = npt.NDArray[Any]
INPUT_NAME = "input-0"
OUTPUT_NAME = "output-0"


class ModelLoadError(Exception):
    """The model cannot be loaded; the message is one line meant for the user."""


def _need(module: str, framework: str, extra: str = "serving") -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelLoadError(f"{framework} model needs {framework}: "
                             f"pip install 'ketch[{extra}]' (or pip install {framework})"
                             ) from None


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
            if found:
                return found[0]
        raise ModelLoadError(f"no {self.platform} model file ({', '.join(self.suffixes)}) "
                             f"in {self.model_dir}")

    @abstractmethod
    def load(self) -> None:
        """Load the model; sets ``ready``.

        Raises:
            ModelLoadError: On a missing or corrupt file or a missing framework.
        """

    @abstractmethod
    def predict(self, data: NDArray | list[Any]) -> NDArray | list[Any]:
        """Run the model on a batch (rows first) and return its predictions."""

    def _output_datatype(self) -> str:
        return "FP64"

    @property
    def metadata(self) -> dict[str, Any]:
        """V2 model metadata: name, versions, platform, inputs and outputs."""
        in_shape = [-1, self.n_features] if self.n_features else [-1, -1]
        return {
            "name": self.name,
            "versions": list(self.versions),
            "platform": self.platform,
            "inputs": [{"name": INPUT_NAME, "datatype": "FP64", "shape": in_shape}],
            "outputs": [{"name": OUTPUT_NAME, "datatype": self._output_datatype(),
                         "shape": [-1]}],
        }

    def _load_error(self, path: Path, exc: BaseException) -> ModelLoadError:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ModelLoadError(f"cannot load {self.platform} model {path}: {text}")


class SKLearnRuntime(Runtime):
    """A scikit-learn estimator saved with joblib (``*.joblib``, ``*.pkl``)."""

    platform = "sklearn"
    suffixes = (".joblib", ".pkl", ".pickle")

    def load(self) -> None:
        path = self.model_file()
        _need("sklearn", "scikit-learn")
        joblib = _need("joblib", "joblib")
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

    def predict(self, data: NDArray | list[Any]) -> NDArray | list[Any]:
        if self._fast is not None:
            fast = self._fast(data)
            if fast is not None:
                return fast
        out: NDArray = self._model.predict(data)
        return out


class XGBoostRuntime(Runtime):
    """An XGBoost booster (``*.bst``, ``*.json``, ``*.ubj``)."""

    platform = "xgboost"
    suffixes = (".bst", ".json", ".ubj")

    def load(self) -> None:
        path = self.model_file()
        xgb = _need("xgboost", "xgboost")
        try:
            self._booster = xgb.Booster(model_file=str(path))
        except Exception as e:
            raise self._load_error(path, e) from None
        self._xgb = xgb
        self.n_features = int(self._booster.num_features()) or None
        self.ready = True

    def predict(self, data: NDArray | list[Any]) -> NDArray | list[Any]:
        out: NDArray = self._booster.predict(self._xgb.DMatrix(np.asarray(data)))
        return out


class LightGBMRuntime(Runtime):
    """A LightGBM booster saved as text (``*.txt``, ``*.lgb``)."""

    platform = "lightgbm"
    suffixes = (".lgb", ".txt")

    def load(self) -> None:
        path = self.model_file()
        lgb = _need("lightgbm", "lightgbm")
        try:
            self._booster = lgb.Booster(model_file=str(path))
        except Exception as e:
            raise self._load_error(path, e) from None
        self.n_features = int(self._booster.num_feature()) or None
        self.ready = True

    def predict(self, data: NDArray | list[Any]) -> NDArray | list[Any]:
        out: NDArray = self._booster.predict(np.asarray(data))
        return out


class ONNXRuntime(Runtime):
    """An ONNX model run by onnxruntime on CPU (the first ``*.onnx``)."""

    platform = "onnxruntime_onnx"
    suffixes = (".onnx",)

    def load(self) -> None:
        path = self.model_file()
        ort = _need("onnxruntime", "onnxruntime")
        try:
            self._session = ort.InferenceSession(str(path),
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:
            raise self._load_error(path, e) from None
        first = self._session.get_inputs()[0]
        self._input = first.name
        self._itype = np.float32 if "float)" in first.type else None
        self.ready = True

    def predict(self, data: NDArray | list[Any]) -> NDArray | list[Any]:
        arr = np.asarray(data)
        if self._itype is not None and arr.dtype != self._itype:
            arr = arr.astype(self._itype)
        out: NDArray = self._session.run(None, {self._input: arr})[0]
        return out

    def _output_datatype(self) -> str:
        return "FP32"


class TorchScriptRuntime(Runtime):
    """A TorchScript module (``*.pt``), run on CPU under ``torch.inference_mode``."""

    platform = "pytorch_libtorch"
    suffixes = (".pt", ".pth")

    def load(self) -> None:
        path = self.model_file()
        torch = _need("torch", "torch")
        try:
            self._module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as e:
            raise self._load_error(path, e) from None
        self._torch = torch
        self.ready = True

    def predict(self, data: NDArray | list[Any]) -> NDArray | list[Any]:
        arr = np.asarray(data)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        with self._torch.inference_mode():
            out = self._module(self._torch.from_numpy(np.ascontiguousarray(arr)))
        result: NDArray = out.detach().cpu().numpy()
        return result

    def _output_datatype(self) -> str:
        return "FP32"


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

    def predict(self, data: NDArray | list[Any]) -> NDArray | list[Any]:
        out: NDArray | list[Any] = self.user.predict(data)
        return out

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
