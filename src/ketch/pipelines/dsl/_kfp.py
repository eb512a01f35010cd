"""What ``import kfp`` gives when the real kfp is absent and ketch stands in for it."""

from __future__ import annotations

from ketch.pipelines import dsl

__all__ = ["__version__", "dsl"]  # also Client, client, compiler, components: loaded on use
__version__ = "2.16.1"
__ketch_alias__ = True


def __getattr__(name: str) -> object:
    if name == "compiler":
        from ketch.pipelines import compiler

        return compiler
    if name == "components":
        from ketch.pipelines.dsl import components

        return components
    if name == "client":
        import ketch.client

        return ketch.client
    if name == "Client":
        # ketch's client speaks kfp.Client's calls (create_run_from_pipeline_func...).
        from ketch import Client

        return Client
    raise AttributeError(f"module 'kfp' (ketch's stand-in) has no attribute {name!r}")
