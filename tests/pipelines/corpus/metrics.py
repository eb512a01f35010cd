"""Metrics artifacts: scalar Metrics, ClassificationMetrics (confusion matrix, ROC curve)
and SlicedClassificationMetrics."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Metrics, Output, SlicedClassificationMetrics


@dsl.component
def evaluate(metrics: Output[Metrics], classification: Output[ClassificationMetrics],
             sliced: Output[SlicedClassificationMetrics]):
    metrics.log_metric("accuracy", 0.9)
    metrics.log_metric("loss", 0.25)
    classification.log_confusion_matrix(["cat", "dog"], [[8, 2], [1, 9]])
    classification.log_roc_curve(fpr=[0.0, 0.5, 1.0], tpr=[0.0, 0.8, 1.0],
                                 threshold=[1.0, 0.5, 0.0])
    sliced.load_confusion_matrix("night", ["cat", "dog"], [[3, 1], [0, 4]])


@dsl.pipeline(name="metrics")
def metrics_pipeline():
    evaluate()


EXPECTED = {
    "arguments": {},
    "phase": "Succeeded",
    "tasks": {
        "evaluate": {"phase": "Succeeded", "outputs": {"artifacts": {
            "metrics": {"metadata": {"accuracy": 0.9, "loss": 0.25}},
            "classification": {"metadata": {
                "confusionMatrix": {
                    "annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
                    "rows": [{"row": [8, 2]}, {"row": [1, 9]}]},
                "confidenceMetrics": [
                    {"confidenceThreshold": 1.0, "recall": 0.0, "falsePositiveRate": 0.0},
                    {"confidenceThreshold": 0.5, "recall": 0.8, "falsePositiveRate": 0.5},
                    {"confidenceThreshold": 0.0, "recall": 1.0, "falsePositiveRate": 1.0}]}},
            "sliced": {"metadata": {"evaluationSlices": [{
                "slice": "night",
                "sliceClassificationMetrics": {"confusionMatrix": {
                    "annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
                    "rows": [{"row": [3, 1]}, {"row": [0, 4]}]}}}]}},
        }}},
    },
}
