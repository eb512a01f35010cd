"""A fast path for scikit-learn's linear models (alone or after ``StandardScaler`` steps
in a ``Pipeline``), decision trees and random/extra-trees forests on small, clean inputs.

For a 1-row request, ``LogisticRegression.predict`` spends most of its time (60 µs to
500 µs, depending on the sklearn version and the machine) in input validation: dataframe
detection, array-API namespace dispatch, finiteness and feature-name checks, not in the
dot product. For estimators whose ``predict`` is sklearn's own (not overridden), the same
numpy operations are done here directly, on the same arrays, and only for inputs that
sklearn's validation passes through unchanged: a C-contiguous 2-D numpy array with the
model's feature count, at least one row and only finite values, of float64, float32
(tritonclient's usual ``FP32``), integer or bool dtype. Each step converts the dtype as
sklearn does:

- linear models keep the dtype (sklearn validates with ``dtype="numeric"``), so
  ``x @ coef_.T + intercept_`` is numpy's own mixed-type matmul, as in sklearn;
- ``StandardScaler`` keeps float64/float32 and makes anything else float64, then
  subtracts and divides by ``mean_``/``scale_`` cast to that dtype (as sklearn 1.9 does;
  a release that subtracts the float64 ``mean_`` in place computes in float64, and the
  load-time check below then leaves float32 to sklearn for that pipeline);
- trees cast to float32 (and sklearn refuses a float64 that overflows float32, so the
  fast path declines those).

Anything else (NaN, a wrong shape, strings, a DataFrame, float16) returns ``None`` and
takes sklearn's own path, with its own errors.

At load time every dtype family (float64, float32, integers) is checked against the
estimator on probe batches of 1, 3, 8 and 40 rows: the predictions, and bit for bit the
intermediate results (a scaler's ``transform``, a linear classifier's
``decision_function``), since a class label rarely shows a last-bit difference. A family
that differs in any way is left to sklearn; a model whose float64 differs gets no fast
path at all.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["fast_predict"]

NDArray = npt.NDArray[Any]
FastPredict = Callable[[Any], "NDArray | None"]
Step = Callable[[NDArray], NDArray]

_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)
# The probe families checked at load: which of them a request's dtype belongs to.
_FAMILIES: tuple[tuple[str, np.dtype[Any]], ...] = (
    ("f8", _F64), ("f4", _F32), ("int", np.dtype(np.int64)))


def _family(dtype: np.dtype[Any]) -> str | None:
    if dtype == _F64:
        return "f8"
    if dtype == _F32:
        return "f4"
    if dtype.kind in "iub":
        return "int"
    return None  # float16, complex, strings, objects: sklearn's path


@dataclass
class _Plan:
    """A fast predict for clean arrays, and what must match sklearn bit for bit.

    ``run`` takes a clean array (see :func:`_clean`) and returns the predictions, or
    None to decline it. ``parts`` pairs our intermediate steps with sklearn's, checked
    on the same probes at load.
    """

    run: Callable[[NDArray], NDArray | None]
    n_features: int
    parts: list[tuple[Step, Callable[[NDArray], Any]]] = field(default_factory=list)


def _clean(data: Any, n_features: int) -> NDArray | None:
    """``data`` when sklearn's validation would pass it through unchanged, else None."""
    if (type(data) is not np.ndarray or data.ndim != 2 or data.shape[1] != n_features
            or not data.shape[0] or not data.flags.c_contiguous):
        return None
    kind = data.dtype.kind
    if kind == "f":
        if data.dtype not in (_F64, _F32):
            return None
        if not np.isfinite(data).all():
            return None
    elif kind not in "iub":
        return None
    clean: NDArray = data
    return clean


def _linear_classifier(model: Any, n_features: int) -> _Plan | None:
    coef, intercept, classes = model.coef_, model.intercept_, model.classes_
    if not (isinstance(coef, np.ndarray) and coef.ndim == 2
            and isinstance(classes, np.ndarray)):
        return None
    coef_t = coef.T  # the same view sklearn multiplies by, so BLAS sees the same call
    binary = coef.shape[0] == 1

    def scores(x: NDArray) -> NDArray:
        # sklearn: safe_sparse_dot(X, coef_.T) (a plain ``@`` for dense arrays) + intercept_
        out: NDArray = x @ coef_t + intercept
        return out.reshape(-1) if binary else out

    def run(x: NDArray) -> NDArray:
        s = scores(x)
        indices = (s > 0).astype(np.intp) if binary else s.argmax(axis=1)
        out: NDArray = classes.take(indices, axis=0)
        return out

    return _Plan(run, n_features, [(scores, model.decision_function)])


def _linear_regressor(model: Any, n_features: int) -> _Plan | None:
    coef, intercept = model.coef_, model.intercept_
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2):
        return None
    weights = coef if coef.ndim == 1 else coef.T

    def run(x: NDArray) -> NDArray:
        out: NDArray = x @ weights + intercept
        return out

    return _Plan(run, n_features)


# sklearn regressors whose predict() only restates LinearModel.predict for its docstring.
_PASS_THROUGH_PREDICT = frozenset({"LinearModel.predict", "MultiOutputLinearModel.predict",
                                   "Ridge.predict"})


def _scaler(step: Any, n_features: int) -> Step | None:
    """``StandardScaler.transform`` on a clean array: the same dtype and two operations."""
    try:
        cls = importlib.import_module("sklearn.preprocessing").StandardScaler
    except (ImportError, AttributeError):
        return None
    if type(step) is not cls or getattr(step, "n_features_in_", None) != n_features:
        return None
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None
    if mean is not None and not isinstance(mean, np.ndarray):
        return None
    if scale is not None and not isinstance(scale, np.ndarray):
        return None
    # sklearn casts mean_/scale_ to X's dtype on every call; done once here.
    means = {dt: None if mean is None else mean.astype(dt) for dt in (_F64, _F32)}
    scales = {dt: None if scale is None else scale.astype(dt) for dt in (_F64, _F32)}

    def transform(x: NDArray) -> NDArray:
        if x.dtype not in (_F64, _F32):
            x = x.astype(_F64)  # validate_data's dtype=(float64, float32, float16)
        m, s = means[x.dtype], scales[x.dtype]
        if m is not None:
            x = x - m
        if s is not None:
            x = x / s
        return x

    return transform


def _pipeline(model: Any) -> _Plan | None:
    try:
        cls = importlib.import_module("sklearn.pipeline").Pipeline
    except (ImportError, AttributeError):
        return None
    if type(model) is not cls:  # exactly sklearn's Pipeline (a subclass may differ)
        return None
    steps = [step for _, step in model.steps if step not in (None, "passthrough")]
    if not steps:
        return None
    final = _candidate(steps[-1])
    n_features = getattr(steps[0], "n_features_in_", None)
    if final is None or not isinstance(n_features, int):
        return None
    transforms = [_scaler(step, n_features) for step in steps[:-1]]
    chain = [t for t in transforms if t is not None]
    if len(chain) != len(transforms):
        return None
    final_run = final.run

    def run(x: NDArray) -> NDArray | None:
        for transform in chain:
            x = transform(x)
        return final_run(x)

    parts = [(ours, step.transform) for ours, step in zip(chain, steps, strict=False)]
    return _Plan(run, n_features, [*parts, *final.parts])


def _classes(module: str, *names: str) -> tuple[type, ...]:
    try:
        mod = importlib.import_module(module)
        return tuple(getattr(mod, name) for name in names)
    except (ImportError, AttributeError):
        return ()


def _trees(model: Any) -> _Plan | None:
    """Decision trees and random/extra-trees forests with one output: each tree's
    ``tree_.predict`` on float32 rows, summed in the forest's order (as sklearn does with
    ``n_jobs`` unset), then averaged; skipping joblib's per-call dispatch is most of the
    gain (a 100-tree forest: ~10 ms -> ~0.3 ms for one row)."""
    cls = type(model)
    single_clf = _classes("sklearn.tree", "DecisionTreeClassifier")
    single_reg = _classes("sklearn.tree", "DecisionTreeRegressor")
    forest_clf = _classes("sklearn.ensemble", "RandomForestClassifier", "ExtraTreesClassifier")
    forest_reg = _classes("sklearn.ensemble", "RandomForestRegressor", "ExtraTreesRegressor")
    n_features = getattr(model, "n_features_in_", None)
    if (not isinstance(n_features, int) or getattr(model, "n_outputs_", None) != 1
            or cls not in single_clf + single_reg + forest_clf + forest_reg):
        return None
    classifier = cls in single_clf + forest_clf
    if cls in forest_clf + forest_reg:
        if getattr(model, "n_jobs", None) not in (None, 1):
            return None  # sklearn sums trees in thread order then: no fixed order to match
        trees = [e.tree_ for e in model.estimators_]
    else:
        trees = [model.tree_]
    forest = cls in forest_clf + forest_reg
    classes = model.classes_ if classifier else None
    width = int(model.n_classes_) if classifier else 1

    def run(x: NDArray) -> NDArray | None:
        if x.dtype == _F64:
            with np.errstate(over="ignore"):
                x32 = x.astype(_F32)  # validate_data(dtype=float32), then its checks:
            if not np.isfinite(x32).all():
                return None  # too large for float32: sklearn raises its own error
        else:
            x32 = x.astype(_F32)  # straight from x's dtype, as sklearn casts
        if not forest:
            values = trees[0].predict(x32)
            if classes is not None:
                picked: NDArray = classes.take(np.argmax(values, axis=1), axis=0)
                return picked
            single: NDArray = values[:, 0]
            return single
        total = np.zeros((len(x32), width) if classes is not None else len(x32))
        for tree in trees:
            values = tree.predict(x32)
            total += values[:, :width] if classes is not None else values[:, 0]
        total /= len(trees)
        if classes is not None:
            voted: NDArray = classes.take(np.argmax(total, axis=1), axis=0)
            return voted
        return total

    return _Plan(run, n_features)


def _candidate(model: Any) -> _Plan | None:
    if type(model).__name__ == "Pipeline":
        return _pipeline(model)
    trees = _trees(model)
    if trees is not None:
        return trees
    try:
        base = importlib.import_module("sklearn.linear_model._base")
        LinearClassifierMixin, LinearModel = base.LinearClassifierMixin, base.LinearModel
    except (ImportError, AttributeError):  # a future sklearn moved them: no fast path
        return None
    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, int) or n_features < 1:
        return None
    cls = type(model)
    if (isinstance(model, LinearClassifierMixin)
            and cls.predict is LinearClassifierMixin.predict
            and cls.decision_function is LinearClassifierMixin.decision_function):
        return _linear_classifier(model, n_features)
    predict = cls.predict
    if (isinstance(model, LinearModel) and not isinstance(model, LinearClassifierMixin)
            and getattr(cls, "_decision_function", None) is LinearModel._decision_function
            and predict.__module__.startswith("sklearn.")
            and predict.__qualname__ in _PASS_THROUGH_PREDICT):
        return _linear_regressor(model, n_features)
    return None


def _same(got: Any, want: Any) -> bool:
    """Equal in dtype, shape and every value (NaN equal to NaN, as a bit-for-bit check)."""
    got, want = np.asarray(got), np.asarray(want)
    return (got.dtype == want.dtype and got.shape == want.shape
            and np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"))


def _exact_for(model: Any, plan: _Plan, dtype: np.dtype[Any]) -> bool:
    """Whether ``plan`` gives sklearn's results, bit for bit, on probes of ``dtype``."""
    rng = np.random.default_rng(0)
    for rows in (1, 3, 8, 40):
        probe = rng.normal(scale=10.0, size=(rows, plan.n_features))
        if dtype.kind != "f":
            probe = np.rint(probe)
        probe = np.ascontiguousarray(probe.astype(dtype))
        with warnings.catch_warnings():  # fitted on a DataFrame: "no feature names"
            warnings.simplefilter("ignore")
            want = model.predict(probe)
            if not all(_same(ours(probe), theirs(probe)) for ours, theirs in plan.parts):
                return False
        got = plan.run(probe)
        if got is None or not _same(got, want):
            return False
    return True


def fast_predict(model: Any) -> FastPredict | None:
    """A validated fast ``predict`` for ``model``, or None when it has none.

    The returned function gives the estimator's exact predictions for the inputs it
    accepts and None for the rest (the caller then uses ``model.predict``).
    """
    try:
        plan = _candidate(model)
        if plan is None:
            return None
        exact = {name for name, dtype in _FAMILIES if _exact_for(model, plan, dtype)}
    except Exception:  # any surprise in an estimator's attributes: use sklearn's path
        return None
    if "f8" not in exact:
        return None
    run, n_features = plan.run, plan.n_features

    def predict(data: Any) -> NDArray | None:
        x = _clean(data, n_features)
        if x is None or _family(x.dtype) not in exact:
            return None
        return run(x)

    return predict
