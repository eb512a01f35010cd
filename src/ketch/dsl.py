"""``from ketch import dsl``: the KFP v2 DSL (same names as ``kfp.dsl``)."""

from __future__ import annotations

from ketch.pipelines.dsl import *  # noqa: F403
from ketch.pipelines.dsl import __all__ as __all__  # noqa: PLC0414
