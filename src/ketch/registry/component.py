"""The registry component's slice (entry point ``ketch.components``).

References, not imports: the CLI and ``ketch.Client`` read this declaration without
loading SQLAlchemy or the API.
"""

from __future__ import annotations

from typing import Any

from ketch.core.component import CliVerb, Component, DashboardRoute, Facade

__all__ = ["component"]


def _router(runtime: Any) -> Any:
    from ketch.registry._api import registry_router

    return registry_router(runtime)


component = Component(
    name="registry",
    description="Model Registry: registered models, versions and artifacts "
                "(Kubeflow Model Registry API)",
    schema="ketch.registry._tables:SCHEMA",
    routers=(_router,),
    cli=(CliVerb("models", "ketch.registry.cli:app",
                 "Model registry: register, list, get, archive and delete models.", group=True),),
    sdk=Facade("registry", "ketch.registry.client:ModelRegistry.from_client"),
    dashboard=(DashboardRoute("/models", "Models"),),
)
