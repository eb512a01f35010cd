"""A fast path for scikit-learn's linear models (alone or after ``StandardScaler`` steps
in a ``Pipeline``), decision trees and random/extra-trees forests on small, clean inputs.

For a 1-row request, ``LogisticRegression.predict`` spends most of its ~60 µs in input
validation (dataframe detection, finiteness and feature-name checks), not in the dot
product. For linear models whose ``predict`` is sklearn's own (not overridden), the same
arithmetic (``X @ coef_.T + intercept_``, then the class with the highest score) is done
here directly, and only for inputs where sklearn's validation would pass them through
unchanged: a 2-D float64 (or integer, converted as sklearn does) array with the model's
feature count and only finite values. Anything else (NaN, a wrong shape, strings, a
DataFrame) returns ``None`` and takes sklearn's own path, with its own errors.

At load time the fast path is checked against ``estimator.predict`` on probe rows and
dropped if the results differ in any way.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["fast_predict"]

NDArray = npt.NDArray[Any]
FastPredict = Callable[[Any], "NDArray | None"]


def _clean(data: Any, n_features: int) -> NDArray | None:
    """``data`` as sklearn would validate it, or None where sklearn must see it."""
    if type(data) is not np.ndarray or data.ndim != 2 or data.shape[1] != n_features:
        return None
    kind = data.dtype.kind
    if kind == "f":
        if data.dtype != np.float64:
            return None  # sklearn keeps float32 as is: let it decide
    elif kind in "iub":
        data = data.astype(np.float64)
    else:
        return None
    if not np.isfinite(data).all():
        return None
    clean: NDArray = data
    return clean


def _linear_classifier(model: Any, n_features: int) -> FastPredict | None:
    coef, intercept, classes = model.coef_, model.intercept_, model.classes_
    if not (isinstance(coef, np.ndarray) and coef.ndim == 2
            and isinstance(classes, np.ndarray)):
        return None
    coef_t = coef.T  # the same view sklearn multiplies by, so BLAS sees the same call
    binary = coef.shape[0] == 1

    def predict(data: Any) -> NDArray | None:
        x = _clean(data, n_features)
        if x is None or not len(x):
            return None
        scores = x @ coef_t + intercept
        indices = (scores.reshape(-1) > 0).astype(np.intp) if binary else scores.argmax(axis=1)
        out: NDArray = classes.take(indices, axis=0)
        return out

    return predict


def _linear_regressor(model: Any, n_features: int) -> FastPredict | None:
    coef, intercept = model.coef_, model.intercept_
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2):
        return None
    weights = coef if coef.ndim == 1 else coef.T

    def predict(data: Any) -> NDArray | None:
        x = _clean(data, n_features)
        if x is None or not len(x):
            return None
        out: NDArray = x @ weights + intercept
        return out

    return predict


# sklearn regressors whose predict() only restates LinearModel.predict for its docstring.
_PASS_THROUGH_PREDICT = frozenset({"LinearModel.predict", "MultiOutputLinearModel.predict",
                                   "Ridge.predict"})


def _scaler(step: Any, n_features: int) -> Callable[[NDArray], NDArray] | None:
    """``StandardScaler.transform`` on a clean float64 array: the same two operations."""
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

    def transform(x: NDArray) -> NDArray:
        if mean is not None:
            x = x - mean
        if scale is not None:
            x = x / scale
        return x

    return transform


def _pipeline(model: Any) -> FastPredict | None:
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
    if any(t is None for t in transforms):
        return None
    chain = [t for t in transforms if t is not None]

    def predict(data: Any) -> NDArray | None:
        x = _clean(data, n_features)
        if x is None or not len(x):
            return None
        for transform in chain:
            x = transform(x)
        return final(x)

    return predict


def _classes(module: str, *names: str) -> tuple[type, ...]:
    try:
        mod = importlib.import_module(module)
        return tuple(getattr(mod, name) for name in names)
    except (ImportError, AttributeError):
        return ()


def _trees(model: Any) -> FastPredict | None:
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

    def predict(data: Any) -> NDArray | None:
        x = _clean(data, n_features)
        if x is None or not len(x):
            return None
        x32 = x.astype(np.float32)
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

    return predict


def _candidate(model: Any) -> FastPredict | None:
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


def fast_predict(model: Any) -> FastPredict | None:
    """A validated fast ``predict`` for ``model``, or None when it has none.

    The returned function gives the estimator's exact predictions for the inputs it
    accepts and None for the rest (the caller then uses ``model.predict``).
    """
    try:
        fast = _candidate(model)
        if fast is None:
            return None
        rng = np.random.default_rng(0)
        n = int(model.n_features_in_)
        for rows in (1, 3, 40):
            probe = rng.normal(scale=10.0, size=(rows, n))
            got = fast(probe)
            with warnings.catch_warnings():  # fitted on a DataFrame: "no feature names"
                warnings.simplefilter("ignore")
                want = np.asarray(model.predict(probe))
            if (got is None or got.dtype != want.dtype or got.shape != want.shape
                    or not np.array_equal(got, want)):
                return None
        return fast
    except Exception:  # any surprise in an estimator's attributes: use sklearn's path
        return None
