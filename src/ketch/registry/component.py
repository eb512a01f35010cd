"""The registry component as the server assembles it (entry point ``ketch.components``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ketch.core.kinds import Component
from ketch.core.store import SchemaBranch
from ketch.registry._tables import metadata

__all__ = ["SCHEMA", "component"]

SCHEMA = SchemaBranch("registry", Path(__file__).parent / "migrations", head="registry_0001",
                      known=("registry_0001",), metadata=metadata)


def _router(runtime: Any) -> Any:
    from ketch.registry._api import registry_router

    return registry_router(runtime)


component = Component(
    name="registry",
    description="Model Registry: registered models, versions and artifacts "
                "(Kubeflow Model Registry API)",
    kinds=(),
    schema=SCHEMA,
    routers=(_router,),
)
