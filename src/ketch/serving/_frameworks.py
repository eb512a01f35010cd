"""The xgboost, lightgbm, ONNX and TorchScript runtimes, each importing its framework
only when a model of its format loads.

Tensor names follow the server KServe runs each format on: its Python servers for
xgboost and lightgbm (``input-0`` in, ``output-0`` out), Triton for ONNX (the model's own
input and output names) and TorchScript (``INPUT__0``/``OUTPUT__0``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ketch.serving._runtime_base import (
    OUTPUT_NAME,
    InvalidInput,
    ModelLoadError,
    NDArray,
    Runtime,
    first_line,
    need_framework,
)
from ketch.serving._tensors import DTYPES, TensorError, datatype_of

__all__ = ["LightGBMRuntime", "ONNXRuntime", "TorchScriptRuntime", "XGBoostRuntime"]


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

    feature_names: list[str] | None = None

    def _rows(self, data: Any) -> NDArray:
        arr = np.asarray(data)
        if arr.dtype == object and arr.ndim == 1 and all(isinstance(r, dict) for r in arr):
            return self._records(arr.tolist())
        if arr.ndim != 2:
            raise InvalidInput(f"model {self.name} takes rows of features (a 2-D array), "
                               f"got shape {list(arr.shape)}")
        if arr.dtype.kind not in "biuf":
            raise InvalidInput(f"model {self.name} takes numbers, got {arr.dtype} values")
        return arr

    def _records(self, records: list[dict[str, Any]]) -> NDArray:
        """Rows from V1 instances given by feature name, as KServe's lgbserver takes
        them: ``{"petal_length_(cm)": 1.4, ...}``, each value a number, ``[number]`` or
        pandas' ``{index: number}``; one row per instance, a missing feature is NaN."""
        names = self.feature_names
        if not names:
            raise InvalidInput(f"model {self.name} has no feature names: send rows of "
                               "numbers")
        column = {name: i for i, name in enumerate(names)}
        rows = np.full((len(records), len(names)), np.nan)
        for r, record in enumerate(records):
            for key, given in record.items():
                if key not in column:
                    raise InvalidInput(f"instance {r}: model {self.name} has no feature "
                                       f"{key!r} (its features: {', '.join(names)})")
                value = list(given.values()) if isinstance(given, dict) else given
                if isinstance(value, list):
                    if len(value) != 1:
                        raise InvalidInput(f"instance {r}, feature {key!r}: one value per "
                                           f"instance, got {len(value)}")
                    value = value[0]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InvalidInput(f"instance {r}, feature {key!r}: expected a "
                                       f"number, got {value!r}")
                rows[r, column[key]] = value
        return rows

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
        xgb = need_framework("xgboost", "xgboost", "xgboost-cpu")
        try:
            # From bytes, as KServe's server loads it: xgboost then tells JSON from UBJSON
            # by content (from a path ending .bst it only guesses, with a warning).
            self._booster = xgb.Booster(params={"nthread": 1},
                                        model_file=bytearray(path.read_bytes()))
        except Exception as e:
            raise self._load_error(path, e) from None
        self.n_features = int(self._booster.num_features()) or None
        self.feature_names = list(self._booster.feature_names or []) or None
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
        lgb = need_framework("lightgbm", "lightgbm", "lightgbm")
        # Its info lines through a logger that passes warnings only, not chatter.
        lgb.register_logger(logging.getLogger("ketch.serving.lightgbm"))
        try:
            with _quiet_native_stderr():
                self._booster = lgb.Booster(model_file=str(path))
        except Exception as e:
            raise self._load_error(path, e) from None
        self.n_features = int(self._booster.num_feature()) or None
        self.feature_names = list(self._booster.feature_name()) or None
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
        ort = need_framework("onnxruntime", "ONNX", "onnxruntime")
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
            line = first_line(e).split(" : ")[-1]
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
        torch = need_framework("torch", "PyTorch", "torch")
        torch.set_num_threads(1)  # one thread per predict, as the other runtimes
        try:
            with warnings.catch_warnings():
                # PyTorch 2.13 deprecates TorchScript for torch.export; Triton, and so
                # KServe, serve TorchScript files, and so does ketch.
                warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
                self._module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as e:
            raise ModelLoadError(f"cannot load {self.format} model {path}: {first_line(e)} "
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
            raise RuntimeError(first_line(e, last=True).removeprefix("RuntimeError: ")
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
