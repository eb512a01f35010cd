"""Which components make up this ketch: the ``ketch.components`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

from ketch.core.kinds import Component

__all__ = ["load_components"]


def load_components() -> list[Component]:
    """Every installed component, built-in and third-party, in a stable order."""
    found: dict[str, Component] = {}
    for ep in sorted(entry_points(group="ketch.components"), key=lambda e: e.name):
        component = ep.load()
        if not isinstance(component, Component):
            raise TypeError(f"entry point ketch.components:{ep.name} is not a Component")
        found.setdefault(component.name, component)
    if "jobs" not in found:  # running from a source tree without installed metadata
        from ketch.jobs import component as jobs

        found["jobs"] = jobs
    return list(found.values())
