"""A small, real ML pipeline: train two classifiers in parallel, keep the better one.

load-data splits scikit-learn's wine dataset (it ships with the package, no download);
a ParallelFor trains a logistic regression and a random forest, each logging its
accuracy (Metrics) and confusion matrix (ClassificationMetrics); pick-best compares
them; when the best clears ``min_accuracy`` a condition registers it in ketch's model
registry, with this run recorded as the model's source.

    ketch run examples/pipelines/wine_classifier.py --wait
    ketch run examples/pipelines/wine_classifier.py -p min_accuracy=0.99 --wait

The same file runs on Kubeflow Pipelines by changing ``from ketch import dsl`` to
``from kfp import dsl`` (the register step then needs a reachable ketch registry).
"""

from typing import NamedTuple

from ketch import dsl
from ketch.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output


@dsl.component(packages_to_install=["scikit-learn"])
def load_data(train: Output[Dataset], test: Output[Dataset], test_size: float = 0.3,
              seed: int = 7):
    import numpy as np
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    features, labels = load_wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_size, random_state=seed, stratify=labels)
    np.savetxt(train.path, np.column_stack([x_train, y_train]), delimiter=",")
    np.savetxt(test.path, np.column_stack([x_test, y_test]), delimiter=",")
    train.metadata["rows"] = len(y_train)
    test.metadata["rows"] = len(y_test)


@dsl.component(packages_to_install=["scikit-learn"])
def train(kind: str, train: Input[Dataset], test: Input[Dataset], model: Output[Model],
          metrics: Output[Metrics], confusion: Output[ClassificationMetrics]) -> float:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, confusion_matrix
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_rows = np.loadtxt(train.path, delimiter=",")
    test_rows = np.loadtxt(test.path, delimiter=",")
    if kind == "logistic":
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    elif kind == "forest":
        estimator = RandomForestClassifier(n_estimators=50, random_state=0)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    estimator.fit(train_rows[:, :-1], train_rows[:, -1].astype(int))
    predicted = estimator.predict(test_rows[:, :-1])
    truth = test_rows[:, -1].astype(int)
    accuracy = float(accuracy_score(truth, predicted))
    joblib.dump(estimator, model.path)
    model.metadata.update({"framework": "sklearn", "kind": kind})
    metrics.log_metric("accuracy", accuracy)
    confusion.log_confusion_matrix(["class_0", "class_1", "class_2"],
                                   confusion_matrix(truth, predicted).tolist())
    print(f"{kind}: accuracy {accuracy:.3f}")
    return accuracy


@dsl.component
def pick_best(kinds: list[str], accuracies: list[float]) -> NamedTuple(
        "Best", [("kind", str), ("accuracy", float), ("index", int)]):
    from collections import namedtuple

    index = max(range(len(accuracies)), key=lambda i: accuracies[i])
    print(f"best: {kinds[index]} at {accuracies[index]:.3f}")
    return namedtuple("Best", ["kind", "accuracy", "index"])(
        kinds[index], accuracies[index], index)


@dsl.component
def register(models: Input[list[Model]], index: int, kind: str, accuracy: float,
             model_name: str) -> str:
    from ketch.registry.client import ModelRegistry

    chosen = models[index]
    version = f"{kind}-{accuracy:.3f}"
    registry = ModelRegistry(author="wine-pipeline")
    registry.register_model(model_name, chosen.uri, version=version,
                            model_format_name="sklearn", model_format_version="1",
                            metadata={"accuracy": accuracy, "kind": kind})
    print(f"registered {model_name} {version} from {chosen.uri}")
    return version


@dsl.pipeline(name="wine-classifier",
              description="Train two classifiers on the wine dataset; register the better.")
def wine_classifier(min_accuracy: float = 0.8, model_name: str = "wine"):
    data = load_data()
    kinds = ["logistic", "forest"]
    with dsl.ParallelFor(items=kinds) as kind:
        trained = train(kind=kind, train=data.outputs["train"], test=data.outputs["test"])
    best = pick_best(kinds=kinds, accuracies=dsl.Collected(trained.outputs["Output"]))
    with dsl.If(best.outputs["accuracy"] >= min_accuracy, name="good-enough"):
        register(models=dsl.Collected(trained.outputs["model"]), index=best.outputs["index"],
                 kind=best.outputs["kind"], accuracy=best.outputs["accuracy"],
                 model_name=model_name)
