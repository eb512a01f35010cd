"""Model runtimes: one small interface over sklearn, xgboost, lightgbm, ONNX, TorchScript
and user classes, chosen by the model server's ``--format``.

Each framework is imported inside its runtime's ``load()``, so a missing one is a
clear :class:`ModelLoadError` naming the package to install, never an import error at
start-up. Tensor names follow the server KServe runs each format on: its Python servers
(sklearn, xgboost, lightgbm) take ``input-0`` and return ``output-0``; Triton (ONNX,
TorchScript) uses the ONNX model's own input and output names, and ``INPUT__0`` /
``OUTPUT__0`` for TorchScript.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ketch.serving._tensors import DTYPES, TensorError, datatype_of

__all__ = ["FORMATS", "CustomRuntime", "InvalidInput", "ModelLoadError", "Runtime",
           "build_user_object", "make_runtime", "maybe_await"]

NDArray = npt.NDArray[Any]
INPUT_NAME = "input-0"
OUTPUT_NAME = "output-0"


class ModelLoadError(Exception):
    """The model cannot be loaded; the message is one line meant for the user."""


class InvalidInput(ValueError):
    """The request's input does not fit the model (an HTTP 400); the message names it."""


def _need(module: str, framework: str, package: str, extra: str = "serving-frameworks"
          ) -> Any:
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


def _first_line(exc: BaseException, *, last: bool = False) -> str:
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


class SKLearnRuntime(Runtime):
    """A scikit-learn estimator saved with joblib (``*.joblib``, ``*.pkl``)."""

    platform = "sklearn"
    format = "sklearn"
    suffixes = (".joblib", ".pkl", ".pickle")

    def load(self) -> None:
        path = self.model_file()
        _need("sklearn", "scikit-learn", "scikit-learn", extra="serving")
        joblib = _need("joblib", "joblib", "joblib", extra="serving")
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
        out: NDArray = self._model.predict(data)
        return out


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Drop what native code writes to fd 2 meanwhile: LightGBM writes "[LightGBM]
    [Fatal] ..." there itself before raising the same text, and a load failure must stay
    one line on stderr. Only for loading, before the server runs anything else."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _BoosterRuntime(Runtime):
    """xgboost and lightgbm: rows of numbers in, one array out (``output-0``), as
    KServe's xgbserver and lgbserver. Both run one thread per predict, as KServe's
    servers do by default (``--nthread 1``): a replica is scaled out, not up."""

    def _rows(self, data: Any) -> NDArray:
        arr = np.asarray(data)
        if arr.ndim != 2:
            raise InvalidInput(f"model {self.name} takes rows of features (a 2-D array), "
                               f"got shape {list(arr.shape)}")
        if arr.dtype.kind not in "biuf":
            raise InvalidInput(f"model {self.name} takes numbers, got {arr.dtype} values")
        return arr

    def _probe(self) -> None:
        """Learn the output's datatype and shape from one row of zeros (for metadata)."""
        self._out: tuple[str, list[int]] = ("FP64", [-1])
        if self.n_features:
            out = np.asarray(self.predict(np.zeros((1, self.n_features))))
            self._out = (datatype_of(out), [-1, *out.shape[1:]])

    def _outputs_meta(self) -> list[dict[str, Any]]:
        datatype, shape = self._out
        return [{"name": OUTPUT_NAME, "datatype": datatype, "shape": shape}]


class XGBoostRuntime(_BoosterRuntime):
    """An XGBoost booster (``*.bst``, ``*.json``, ``*.ubj``), as KServe's xgbserver: the
    booster's ``predict`` (probabilities for ``multi:softprob``), FP32."""

    platform = "xgboost"
    format = "xgboost"
    suffixes = (".bst", ".json", ".ubj")

    def load(self) -> None:
        path = self.model_file()
        xgb = _need("xgboost", "xgboost", "xgboost-cpu")
        try:
            # From bytes, as KServe's server loads it: xgboost then tells JSON from UBJSON
            # by content (from a path ending .bst it only guesses, with a warning).
            self._booster = xgb.Booster(params={"nthread": 1},
                                        model_file=bytearray(path.read_bytes()))
        except Exception as e:
            raise self._load_error(path, e) from None
        self.n_features = int(self._booster.num_features()) or None
        self._probe()
        self.ready = True

    def predict(self, data: Any) -> Any:
        rows = self._rows(data)
        # Booster.predict(DMatrix(rows))'s answer without building a DMatrix per request
        # (the runtime tests check the two agree exactly).
        out: NDArray = self._booster.inplace_predict(rows)
        return out


class LightGBMRuntime(_BoosterRuntime):
    """A LightGBM booster saved by ``save_model`` (``*.bst`` as KServe's lgbserver names
    it, ``*.txt``, ``*.lgb``): the booster's ``predict``, FP64."""

    platform = "lightgbm"
    format = "lightgbm"
    suffixes = (".bst", ".txt", ".lgb")

    def load(self) -> None:
        path = self.model_file()
        lgb = _need("lightgbm", "lightgbm", "lightgbm")
        # Its info lines through a logger that passes warnings only, not chatter.
        lgb.register_logger(logging.getLogger("ketch.serving.lightgbm"))
        try:
            with _quiet_native_stderr():
                self._booster = lgb.Booster(model_file=str(path))
        except Exception as e:
            raise self._load_error(path, e) from None
        self.n_features = int(self._booster.num_feature()) or None
        self._probe()
        self.ready = True

    def predict(self, data: Any) -> Any:
        out: NDArray = self._booster.predict(self._rows(data), num_threads=1)
        return out


# onnxruntime's type strings for the tensors it can take and give, as V2 datatypes.
_ONNX_TYPES = {f"tensor({t})": d for t, d in (
    ("float", "FP32"), ("double", "FP64"), ("float16", "FP16"), ("int64", "INT64"),
    ("int32", "INT32"), ("int16", "INT16"), ("int8", "INT8"), ("uint64", "UINT64"),
    ("uint32", "UINT32"), ("uint16", "UINT16"), ("uint8", "UINT8"), ("bool", "BOOL"),
    ("string", "BYTES"))}


def _dims(shape: Any) -> list[int]:
    """A model's declared shape with every dynamic dimension (None, a name) as -1."""
    return [d if isinstance(d, int) and d >= 0 else -1 for d in (shape or [])]


def _check_tensor(model: str, name: str, arr: NDArray, datatype: str,
                  dims: list[int]) -> None:
    """Raise InvalidInput unless ``arr`` has the declared datatype, rank and fixed dims."""
    try:
        got = datatype_of(arr)
    except TensorError:
        got = str(arr.dtype)
    if got != datatype:
        raise InvalidInput(f"input '{name}': model {model} expects datatype {datatype}, "
                           f"got {got}")
    if dims and (len(dims) != arr.ndim or any(
            want not in (-1, have) for want, have in zip(dims, arr.shape, strict=True))):
        raise InvalidInput(f"input '{name}': model {model} expects shape {dims}, got "
                           f"{list(arr.shape)}")


def _cast(model: str, name: str, arr: NDArray, datatype: str) -> NDArray:
    """A V1 (JSON) array in the model's datatype: float64 to float32 and the like, but
    never a float to an integer or a string to a number."""
    want = DTYPES[datatype]
    if arr.dtype == want:
        return arr
    if np.can_cast(arr.dtype, want, casting="same_kind"):
        return arr.astype(want)
    raise InvalidInput(f"input '{name}': model {model} expects {datatype}, got "
                       f"{arr.dtype} values")


class ONNXRuntime(Runtime):
    """An ONNX model run by onnxruntime on CPU (``*.onnx``), named as Triton serves it:
    inputs and outputs by the model's own names, datatypes as the model declares them.

    V2: every input by name, with the declared datatype, rank and fixed dimensions
    (else 400); all tensor outputs come back (non-tensor ones, such as skl2onnx's ZipMap
    dictionaries, cannot be V2 tensors and are left out). V1: ``instances`` feed the only
    input, cast to its datatype; ``predictions`` are the first output.
    """

    platform = "onnxruntime_onnx"
    format = "onnx"
    suffixes = (".onnx",)

    def load(self) -> None:
        path = self.model_file()
        ort = _need("onnxruntime", "ONNX", "onnxruntime")
        options = ort.SessionOptions()
        # One thread per predict, as the other runtimes; onnxruntime's default pool
        # spin-waits on every core, which on a small machine starves the event loop.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:
            raise self._load_error(path, e) from None
        self._inputs: list[tuple[str, str, list[int]]] = []
        for spec in self._session.get_inputs():
            if spec.type not in _ONNX_TYPES:
                raise ModelLoadError(f"cannot serve ONNX model {path}: input {spec.name!r} "
                                     f"is a {spec.type}, not a tensor")
            self._inputs.append((spec.name, _ONNX_TYPES[spec.type], _dims(spec.shape)))
        self._outputs = [(o.name, _ONNX_TYPES[o.type], _dims(o.shape))
                         for o in self._session.get_outputs() if o.type in _ONNX_TYPES]
        if not self._outputs:
            raise ModelLoadError(f"cannot serve ONNX model {path}: it has no tensor output "
                                 "(skl2onnx: convert with options={'zipmap': False})")
        self._output_names = [name for name, _, _ in self._outputs]
        first = self._inputs[0][2] if len(self._inputs) == 1 else []
        if len(first) == 2 and first[1] > 0:
            self.n_features = first[1]
        self.ready = True

    def model_input(self, names: list[str], arrays: list[NDArray]) -> Any:
        declared = {name: (datatype, dims) for name, datatype, dims in self._inputs}
        listing = ", ".join(declared)
        for name in names:
            if name not in declared:
                raise InvalidInput(f"model {self.name} has no input '{name}' (its inputs: "
                                   f"{listing})")
        if len(set(names)) != len(names):
            raise InvalidInput(f"model {self.name}: an input is given twice ({', '.join(names)})")
        missing = [name for name in declared if name not in names]
        if missing:
            raise InvalidInput(f"model {self.name} needs input '{missing[0]}' (its inputs: "
                               f"{listing})")
        for name, arr in zip(names, arrays, strict=True):
            _check_tensor(self.name, name, arr, *declared[name])
        if len(arrays) == 1:
            return arrays[0]  # one array: the batcher can stack it with others
        return dict(zip(names, arrays, strict=True))

    def predict(self, data: Any) -> Any:
        if isinstance(data, dict):
            feeds = data
        else:
            name, datatype, _ = self._inputs[0]
            if len(self._inputs) != 1:
                raise InvalidInput(f"model {self.name} takes {len(self._inputs)} named "
                                   f"inputs ({', '.join(n for n, _, _ in self._inputs)}): "
                                   "send them as V2 input tensors")
            feeds = {name: _cast(self.name, name, np.asarray(data), datatype)}
        try:
            outs = self._session.run(self._output_names, feeds)
        except Exception as e:
            line = _first_line(e).split(" : ")[-1]
            if type(e).__name__ == "InvalidArgument":  # onnxruntime's word for bad input
                raise InvalidInput(f"model {self.name}: {line}") from None
            raise RuntimeError(line) from None
        return dict(zip(self._output_names, outs, strict=True))

    def _inputs_meta(self) -> list[dict[str, Any]]:
        return [{"name": n, "datatype": d, "shape": s} for n, d, s in self._inputs]

    def _outputs_meta(self) -> list[dict[str, Any]]:
        return [{"name": n, "datatype": d, "shape": s} for n, d, s in self._outputs]


class TorchScriptRuntime(Runtime):
    """A TorchScript module (``*.pt``, from ``torch.jit.script`` or ``torch.jit.trace``),
    run on CPU under ``torch.inference_mode``, named as Triton's PyTorch backend names
    tensors: inputs ``INPUT__0``, ``INPUT__1``, ... (or ``forward``'s argument names),
    outputs ``OUTPUT__0``, ... (or the keys of a returned dict).

    A module with one argument takes one input of any name. TorchScript declares no
    dtypes, so floats are given in the dtype of the module's floating parameters
    (float32 unless it was converted); integers and booleans pass as they are.
    """

    platform = "pytorch_libtorch"
    format = "pytorch"
    suffixes = (".pt", ".pth")

    def load(self) -> None:
        path = self.model_file()
        torch = _need("torch", "PyTorch", "torch")
        torch.set_num_threads(1)  # one thread per predict, as the other runtimes
        try:
            with warnings.catch_warnings():
                # PyTorch 2.13 deprecates TorchScript for torch.export; Triton, and so
                # KServe, serve TorchScript files, and so does ketch.
                warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
                self._module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as e:
            raise ModelLoadError(f"cannot load {self.format} model {path}: {_first_line(e)} "
                                 "(ketch serves TorchScript: save the model with "
                                 "torch.jit.script(model).save(path) or torch.jit.trace)"
                                 ) from None
        self._torch = torch
        arguments = self._module.forward.schema.arguments[1:]  # [0] is self
        self._args = [a.name for a in arguments] or ["INPUT__0"]
        floats = [p.dtype for p in self._module.parameters() if p.is_floating_point()]
        self._float = (np.dtype(np.float64) if floats and floats[0] == torch.float64
                       else np.dtype(np.float32))
        self.ready = True

    def model_input(self, names: list[str], arrays: list[NDArray]) -> Any:
        if len(arrays) == 1 and len(self._args) == 1:
            return arrays[0]
        by_index: dict[int, NDArray] = {}
        for name, arr in zip(names, arrays, strict=True):
            if name in self._args:
                index = self._args.index(name)
            elif name.startswith("INPUT__") and name[7:].isdigit():
                index = int(name[7:])
            else:
                index = -1
            if not 0 <= index < len(self._args) or index in by_index:
                raise InvalidInput(f"model {self.name}: unexpected input '{name}' (it takes "
                                   f"{', '.join(f'INPUT__{i}' for i in range(len(self._args)))}"
                                   f" or {', '.join(self._args)})")
            by_index[index] = arr
        if len(by_index) != len(self._args):
            raise InvalidInput(f"model {self.name} takes {len(self._args)} inputs "
                               f"({', '.join(self._args)}), got {len(by_index)}")
        return tuple(by_index[i] for i in range(len(self._args)))

    def _tensor(self, arr: NDArray) -> Any:
        if arr.dtype.kind == "f" and arr.dtype != self._float:
            arr = arr.astype(self._float)
        elif arr.dtype.kind not in "biuf":
            raise InvalidInput(f"model {self.name} takes numeric tensors, got {arr.dtype} "
                               "values")
        if not arr.flags.writeable or not arr.flags.c_contiguous:
            arr = np.array(arr, order="C")  # torch wants memory it may write to
        return self._torch.from_numpy(arr)

    def predict(self, data: Any) -> Any:
        arrays = data if isinstance(data, tuple) else (np.asarray(data),)
        if len(arrays) != len(self._args):
            raise InvalidInput(f"model {self.name} takes {len(self._args)} inputs "
                               f"({', '.join(self._args)}): send them as V2 input tensors")
        tensors = [self._tensor(a) for a in arrays]
        try:
            with self._torch.inference_mode():
                out = self._module(*tensors)
        except RuntimeError as e:  # TorchScript's own traceback: its last line is the cause
            raise RuntimeError(_first_line(e, last=True).removeprefix("RuntimeError: ")
                               ) from None
        if isinstance(out, dict):
            named = {str(k): v for k, v in out.items()}
        elif isinstance(out, list | tuple):
            named = {f"OUTPUT__{i}": v for i, v in enumerate(out)}
        else:
            named = {"OUTPUT__0": out}
        if not all(isinstance(v, self._torch.Tensor) for v in named.values()):
            raise TypeError(f"model {self.name} returned {type(out).__name__} that is not "
                            "a tensor, a tuple or a dict of tensors")
        return {k: v.detach().cpu().numpy() for k, v in named.items()}

    def _inputs_meta(self) -> list[dict[str, Any]]:
        datatype = datatype_of(np.zeros(0, self._float))
        return [{"name": f"INPUT__{i}", "datatype": datatype, "shape": [-1, -1]}
                for i in range(len(self._args))]

    def _outputs_meta(self) -> list[dict[str, Any]]:
        datatype = datatype_of(np.zeros(0, self._float))
        return [{"name": "OUTPUT__0", "datatype": datatype, "shape": [-1, -1]}]


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
