"""``kfp.v2``: kfp's deprecated alias of its own top-level modules."""

from __future__ import annotations

import warnings

from ketch.pipelines import compiler, dsl
from ketch.pipelines.dsl import components

__all__ = ["compiler", "components", "dsl"]

warnings.warn("The module `kfp.v2` is deprecated and will be removed in a future version. "
              "Please import directly from the `kfp` namespace, instead of `kfp.v2`.",
              category=DeprecationWarning, stacklevel=2)
