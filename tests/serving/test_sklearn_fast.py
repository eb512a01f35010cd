"""The sklearn fast path: which inputs it takes (float64, float32, integers, bool, any
number of rows), that it gives ``estimator.predict``'s exact results there, and that
it leaves everything else to sklearn, through the runtime that serves the model."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ketch.serving._runtimes import Runtime, make_runtime
from ketch.serving._sklearn_fast import fast_predict

X, Y = load_iris(return_X_y=True)
LABELS = np.array(["setosa", "versicolor", "virginica"])[Y]

MODELS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression(max_iter=1000).fit(X, Y),
    "logistic-binary": lambda: LogisticRegression(max_iter=1000).fit(X, Y == 1),
    "logistic-labels": lambda: LogisticRegression(max_iter=1000).fit(X, LABELS),
    "logistic-fit-f32": lambda: LogisticRegression(max_iter=1000).fit(X.astype(np.float32), Y),
    "sgd": lambda: SGDClassifier(random_state=0).fit(X, Y),
    "linear": lambda: LinearRegression().fit(X, X[:, 0] * 2),
    "ridge-2-targets": lambda: Ridge().fit(X, np.c_[X[:, 0], X[:, 1]]),
    "scaler-logistic": lambda: make_pipeline(StandardScaler(),
                                             LogisticRegression(max_iter=1000)).fit(X, Y),
    "scalers-linear": lambda: make_pipeline(StandardScaler(with_mean=False), "passthrough",
                                            StandardScaler(), LinearRegression()).fit(X, X[:, 0]),
    "tree": lambda: DecisionTreeClassifier(random_state=0).fit(X, LABELS),
    "tree-regressor": lambda: DecisionTreeRegressor(random_state=0).fit(X, X[:, 0]),
    "forest": lambda: RandomForestClassifier(n_estimators=15, random_state=0).fit(X, Y),
    "extra-trees": lambda: ExtraTreesRegressor(n_estimators=15, random_state=0).fit(X, X[:, 0]),
}

RNG = np.random.default_rng(1)
BATCHES = {"1 row": X[:1], "8 rows": X[50:58], "150 rows": X,
           "50 wide-ranged rows": RNG.normal(size=(50, 4)) * 50}
DTYPES = [np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_]


def _served(model: Any, tmp_path: Path) -> Runtime:
    """The runtime the model server builds for ``model`` saved with joblib."""
    joblib.dump(model, tmp_path / "model.joblib")
    runtime = make_runtime("m", str(tmp_path), "sklearn")
    runtime.load()
    return runtime


@pytest.mark.parametrize("name", MODELS)
def test_fast_path_takes_float32_integer_and_multi_row_inputs_exactly(name: str) -> None:
    model = MODELS[name]()
    fast = fast_predict(model)
    assert fast is not None
    for batch_name, batch in BATCHES.items():
        for dtype in DTYPES:
            rows = batch.astype(dtype)
            got, want = fast(rows), model.predict(rows)
            assert got is not None, f"{batch_name} of {np.dtype(dtype)} left to sklearn"
            assert got.dtype == want.dtype, f"{batch_name} of {np.dtype(dtype)}"
            np.testing.assert_array_equal(got, want, err_msg=f"{batch_name} {dtype}")


def _odd_inputs() -> dict[str, Any]:
    nan32 = X[:2].astype(np.float32)
    nan32[0, 0] = math.nan
    inf64 = X[:2].copy()
    inf64[1, 3] = math.inf
    return {
        "NaN in float32": nan32,
        "inf in float64": inf64,
        "float16": X[:2].astype(np.float16),
        "Fortran order": np.asfortranarray(X[:3]),
        "a strided view": X[::2],
        "3 features": X[:2, :3],
        "1-D": X[0],
        "a list": X[:2].tolist(),
        "strings": X[:2].astype(str),
        "no rows": X[:0],
    }


@pytest.mark.parametrize("name", ["logistic", "scaler-logistic", "forest"])
def test_fast_path_leaves_odd_inputs_to_sklearn(name: str, tmp_path: Path) -> None:
    model = MODELS[name]()
    fast = fast_predict(model)
    assert fast is not None
    runtime = _served(model, tmp_path)
    for what, data in _odd_inputs().items():
        assert fast(data) is None, what
        # ... and the runtime answers what sklearn answers, or raises what it raises.
        try:
            want = model.predict(data)
        except ValueError as e:
            with pytest.raises(ValueError, match=re.escape(str(e).splitlines()[0])):
                runtime.predict(data)
            continue
        np.testing.assert_array_equal(runtime.predict(data), want, err_msg=what)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # sklearn's
def test_trees_leave_float64_too_large_for_float32_to_sklearn(tmp_path: Path) -> None:
    """sklearn casts a tree's input to float32 and refuses what overflows there."""
    model = MODELS["tree"]()
    fast = fast_predict(model)
    assert fast is not None
    big = X[:2].copy()
    big[0, 0] = 1e39
    assert fast(big) is None
    with pytest.raises(ValueError, match="too large for dtype"):
        _served(model, tmp_path).predict(big)


def test_models_without_a_fast_path_are_served_by_sklearn(tmp_path: Path) -> None:
    assert fast_predict(KNeighborsClassifier().fit(X, Y)) is None
    assert fast_predict(RandomForestClassifier(n_estimators=3, n_jobs=2).fit(X, Y)) is None
    scaled = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000)).fit(X, Y)
    assert fast_predict(scaled) is None
    runtime = _served(scaled, tmp_path)
    for dtype in DTYPES:
        rows = X[40:60].astype(dtype)
        np.testing.assert_array_equal(runtime.predict(rows), scaled.predict(rows))

