"""Artifact classes with kfp's names, schema titles and path rules.

An artifact is a name, a URI and a metadata dict. ``.path`` is where a step reads or
writes it on local disk: for ketch's local runs the URI is an absolute path and
``.path == .uri`` (as in ``kfp.local``); remote URIs map to kfp's FUSE mount points
(``gs://b/x`` -> ``/gcs/b/x``) so a component written for a KFP cluster behaves the same.
When ketch stages a step's artifacts through a remote store it sets
``KETCH_ARTIFACT_MOUNT_ROOT`` to a directory of the step's own, and those mount points
(and ``/<scheme>/...`` for any other fsspec scheme) lie under it instead of ``/``.
"""

from __future__ import annotations

import os
from typing import Any

from ketch.pipelines._paths import under

__all__ = [
    "HTML",
    "MOUNT_ROOT_ENV",
    "SCHEMA_TITLE_TO_TYPE",
    "Artifact",
    "ClassificationMetrics",
    "Dataset",
    "Markdown",
    "Metrics",
    "Model",
    "SlicedClassificationMetrics",
    "local_path_for_uri",
    "uri_for_local_path",
]

# Remote scheme -> the local mount prefix kfp's launcher uses for it.
_MOUNTS = (("gs://", "/gcs/"), ("minio://", "/minio/"), ("s3://", "/s3/"))
MOUNT_ROOT_ENV = "KETCH_ARTIFACT_MOUNT_ROOT"


def _mount_root(mount_root: str | None) -> str:
    root = os.environ.get(MOUNT_ROOT_ENV, "") if mount_root is None else mount_root
    return root.rstrip("/")


def local_path_for_uri(uri: str, *, mount_root: str | None = None) -> str:
    """The local path a component reads/writes for ``uri`` (kfp's mount rules).

    Args:
        uri: The artifact's URI.
        mount_root: Where the mount points lie; by default ``KETCH_ARTIFACT_MOUNT_ROOT``
            if set (a staged step), else ``/`` as on a KFP cluster.
    """
    root = _mount_root(mount_root)
    for scheme, mount in _MOUNTS:
        if uri.startswith(scheme):
            return _in_mount(root, mount + uri[len(scheme):], uri)
    if uri.startswith("oci://"):
        return root + "/oci/" + uri[len("oci://"):].replace("/", "_")
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if root and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return _in_mount(root, f"/{scheme}/{rest}", uri)
    return uri


def _in_mount(root: str, rest: str, uri: str) -> str:
    """``root + rest``; under a mount root (a staged step), a URI with '..' in it may
    not reach outside it (the step downloads to, and uploads from, that path)."""
    if root:
        under(root, rest.lstrip("/"), where=f"artifact {uri}")
    return root + rest


def uri_for_local_path(path: str, *, mount_root: str | None = None) -> str:
    """Inverse of :func:`local_path_for_uri` for paths under a mount prefix."""
    root = _mount_root(mount_root)
    if root and not path.startswith(root + "/"):
        return path
    inside = path[len(root):]
    for scheme, mount in _MOUNTS:
        if inside.startswith(mount):
            return scheme + inside[len(mount):]
    if root and inside.count("/") >= 2:
        scheme, rest = inside[1:].split("/", 1)
        return f"{scheme}://{rest}"
    return path


class Artifact:
    """A generic ML artifact: ``name``, ``uri`` and ``metadata``.

    Use it inside ``Input[...]``/``Output[...]`` annotations; its subclasses say what
    kind of thing the artifact is (``Dataset``, ``Model``, ``Metrics``...).
    """

    schema_title = "system.Artifact"
    schema_version = "0.0.1"

    def __init__(self, name: str | None = None, uri: str | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self.name = name or ""
        self.uri = uri or ""
        self.metadata: dict[str, Any] = metadata or {}
        self._custom_path = ""

    @property
    def path(self) -> str:
        """The local file or directory path of the artifact."""
        if self._custom_path:
            return self._custom_path
        return local_path_for_uri(self.uri)

    @path.setter
    def path(self, path: str) -> None:
        self.uri = uri_for_local_path(path)

    @property
    def custom_path(self) -> str:
        """A path set with :meth:`set_path` that overrides the URI-derived one."""
        return self._custom_path

    @custom_path.setter
    def custom_path(self, value: str) -> None:
        self._custom_path = value

    def set_path(self, path: str) -> None:
        """Use ``path`` as the local path without changing the URI."""
        self._custom_path = path

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, uri={self.uri!r}, "
                f"metadata={self.metadata!r})")


class Model(Artifact):
    """A trained model."""

    schema_title = "system.Model"

    @property
    def path(self) -> str:
        base = Artifact.path.fget(self)  # type: ignore[attr-defined]
        return f"{base}/models" if self.uri.startswith("oci://") else str(base)

    @path.setter
    def path(self, path: str) -> None:
        self.uri = uri_for_local_path(path)

    @property
    def framework(self) -> str:
        """The ML framework, stored in ``metadata['framework']``."""
        return str(self.metadata.get("framework", ""))

    @framework.setter
    def framework(self, framework: str) -> None:
        self.metadata["framework"] = framework


class Dataset(Artifact):
    """A dataset."""

    schema_title = "system.Dataset"


class Metrics(Artifact):
    """Scalar metrics, kept in ``metadata``."""

    schema_title = "system.Metrics"

    def log_metric(self, metric: str, value: float) -> None:
        """Record ``metric`` = ``value``."""
        self.metadata[metric] = value


class ClassificationMetrics(Artifact):
    """ROC curve and confusion matrix in KFP's metadata schema."""

    schema_title = "system.ClassificationMetrics"

    def log_roc_data_point(self, fpr: float, tpr: float, threshold: float) -> None:
        """Append one ROC point."""
        self.metadata.setdefault("confidenceMetrics", []).append(
            {"confidenceThreshold": threshold, "recall": tpr, "falsePositiveRate": fpr})

    def log_roc_curve(self, fpr: list[float], tpr: list[float],
                      threshold: list[float]) -> None:
        """Record a whole ROC curve; the three lists must be the same length."""
        if not len(fpr) == len(tpr) == len(threshold):
            raise ValueError(f"log_roc_curve: fpr, tpr and threshold must be the same "
                             f"length (got {len(fpr)}, {len(tpr)} and {len(threshold)})")
        for f, t, th in zip(fpr, tpr, threshold, strict=True):
            self.log_roc_data_point(fpr=f, tpr=t, threshold=th)

    def set_confusion_matrix_categories(self, categories: list[str]) -> None:
        """Start an all-zero confusion matrix over ``categories``."""
        self._categories = list(categories)
        self._matrix: list[dict[str, list[Any]]] = [
            {"row": [0] * len(categories)} for _ in categories]
        self.metadata["confusionMatrix"] = {
            "annotationSpecs": [{"displayName": c} for c in categories],
            "rows": self._matrix}

    def _index(self, category: str) -> int:
        categories = getattr(self, "_categories", [])
        if category not in categories:
            raise ValueError(f"invalid category {category!r}: expected one of {categories}")
        return categories.index(category)

    def log_confusion_matrix_row(self, row_category: str, row: list[Any]) -> None:
        """Set one row of the confusion matrix."""
        index = self._index(row_category)
        if len(row) != len(self._categories):
            raise ValueError(f"invalid row: expected {len(self._categories)} values, "
                             f"got {len(row)}")
        self._matrix[index]["row"] = list(row)

    def log_confusion_matrix_cell(self, row_category: str, col_category: str,
                                  value: int) -> None:
        """Set one cell of the confusion matrix."""
        self._matrix[self._index(row_category)]["row"][self._index(col_category)] = value

    def log_confusion_matrix(self, categories: list[str], matrix: list[list[int]]) -> None:
        """Record a whole confusion matrix (one row per category)."""
        if len(matrix) != len(categories) or any(len(r) != len(categories) for r in matrix):
            raise ValueError(f"invalid matrix {matrix} for categories {categories}: it must "
                             f"be {len(categories)}x{len(categories)}")
        self.set_confusion_matrix_categories(categories)
        for category, row in zip(categories, matrix, strict=True):
            self.log_confusion_matrix_row(category, row)


class SlicedClassificationMetrics(Artifact):
    """Classification metrics per slice, in KFP's ``evaluationSlices`` schema."""

    schema_title = "system.SlicedClassificationMetrics"

    def _slice(self, slice_name: str) -> ClassificationMetrics:
        slices: dict[str, ClassificationMetrics] = self.__dict__.setdefault("_slices", {})
        if slice_name not in slices:
            slices[slice_name] = ClassificationMetrics()
        return slices[slice_name]

    def _sync(self) -> None:
        slices: dict[str, ClassificationMetrics] = self.__dict__.get("_slices", {})
        self.metadata["evaluationSlices"] = [
            {"slice": name, "sliceClassificationMetrics": m.metadata}
            for name, m in slices.items()]

    def log_roc_reading(self, slice: str, threshold: float, tpr: float,
                        fpr: float) -> None:
        """Append one ROC point to ``slice``."""
        self._slice(slice).log_roc_data_point(fpr=fpr, tpr=tpr, threshold=threshold)
        self._sync()

    def load_roc_readings(self, slice: str, readings: list[list[float]]) -> None:
        """Append ``[threshold, tpr, fpr]`` readings to ``slice``."""
        for threshold, tpr, fpr in readings:
            self._slice(slice).log_roc_data_point(fpr=fpr, tpr=tpr, threshold=threshold)
        self._sync()

    def set_confusion_matrix_categories(self, slice: str,
                                        categories: list[str]) -> None:
        """Start a confusion matrix for ``slice``."""
        self._slice(slice).set_confusion_matrix_categories(categories)
        self._sync()

    def log_confusion_matrix_row(self, slice: str, row_category: str,
                                 row: list[int]) -> None:
        """Set one confusion-matrix row of ``slice``."""
        self._slice(slice).log_confusion_matrix_row(row_category, row)
        self._sync()

    def log_confusion_matrix_cell(self, slice: str, row_category: str,
                                  col_category: str, value: int) -> None:
        """Set one confusion-matrix cell of ``slice``."""
        self._slice(slice).log_confusion_matrix_cell(row_category, col_category, value)
        self._sync()

    def load_confusion_matrix(self, slice: str, categories: list[str],
                              matrix: list[list[int]]) -> None:
        """Record a whole confusion matrix for ``slice``."""
        self._slice(slice).log_confusion_matrix(categories, matrix)
        self._sync()


class HTML(Artifact):
    """An HTML file (rendered by the dashboard)."""

    schema_title = "system.HTML"


class Markdown(Artifact):
    """A Markdown file (rendered by the dashboard)."""

    schema_title = "system.Markdown"


SCHEMA_TITLE_TO_TYPE: dict[str, type[Artifact]] = {
    cls.schema_title: cls
    for cls in (Artifact, Model, Dataset, Metrics, ClassificationMetrics,
                SlicedClassificationMetrics, HTML, Markdown)
}
