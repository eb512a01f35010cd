"""The typed base of every component's status: conditions, observedGeneration and the
control plane that owns the object's work.

A kind's status model subclasses ``BaseStatus`` and adds its own fields (``phase``,
``attempts``...); what every controller writes the same way lives here once, so
``ketch wait``, kstatus readers and the claim helper (``ketch.core.component_claim``)
read every kind alike.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field

from ketch.core.resources import KetchModel, Resource, find_condition, set_condition

__all__ = ["BaseStatus"]


class BaseStatus(KetchModel):
    """``status.conditions``, ``status.observedGeneration``, ``status.controlPlane``."""

    conditions: list[dict[str, Any]] = Field(default_factory=list)
    # The spec generation this status describes (kstatus: an older one's verdict says
    # nothing about the current spec).
    observed_generation: int | None = None
    # The control plane running this object's work (``Runtime.id``); another control
    # plane adopts the work only once this one is dead.
    control_plane: str | None = None

    def set_condition(self, type_: str, value: bool | str, reason: str = "",
                      message: str = "") -> None:
        """Add or update a condition; its transition time moves only on a change."""
        holder: dict[str, Any] = {"conditions": self.conditions}
        set_condition(holder, type_, value, reason, message)
        self.conditions = holder["conditions"]

    def condition(self, type_: str) -> dict[str, Any] | None:
        return find_condition({"conditions": self.conditions}, type_)

    def is_true(self, type_: str) -> bool:
        found = self.condition(type_)
        return bool(found and found.get("status") == "True")

    def observe(self, obj: Resource) -> None:
        """Say this status is about ``obj``'s current spec."""
        self.observed_generation = obj.metadata.generation or 1

    @classmethod
    def of(cls, obj: Resource) -> Self:
        """The status of ``obj`` as this model (validated; unknown fields refused)."""
        return cls.model_validate(obj.status or {})
