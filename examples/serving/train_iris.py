"""Train an iris classifier with scikit-learn and save it where the
InferenceService in iris.yaml looks for it.

    python examples/serving/train_iris.py /tmp/ketch-models/iris
    ketch apply -f examples/serving/iris.yaml   # storageUri: file:///tmp/ketch-models/iris
    ketch wait isvc iris --for=condition=Ready
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main(out_dir: str = "/tmp/ketch-models/iris") -> Path:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, target / "model.joblib")
    print(f"saved {target / 'model.joblib'} (training accuracy {model.score(X, y):.3f})")
    return target


if __name__ == "__main__":
    main(*sys.argv[1:])
