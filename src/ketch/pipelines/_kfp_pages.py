"""The list responses of the kfp-shaped client, as ``kfp.Client`` 2.16.1 returns them.

kfp returns ``V2beta1ListRunsResponse`` (``.runs``, ``.total_size``,
``.next_page_token``) and one such class per list call; code written for kfp reads
those attributes and pages with ``page_token``. Each response here has the same
attribute names, and is also a sequence of its items, so code that iterated the plain
list this client returned before keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ketch.core.errors import FieldError, InvalidError

if TYPE_CHECKING:
    from ketch.core.resources import Resource

__all__ = [
    "ListExperimentsResponse", "ListPipelineVersionsResponse", "ListPipelinesResponse",
    "ListRecurringRunsResponse", "ListRunsResponse", "page",
]


@dataclass
class _Page(Sequence["Resource"]):
    total_size: int = 0
    next_page_token: str | None = None
    _items: list[Resource] = field(default_factory=list, repr=False)

    @overload
    def __getitem__(self, index: int) -> Resource: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Resource]: ...

    def __getitem__(self, index: int | slice) -> Resource | Sequence[Resource]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._items)


class ListRunsResponse(_Page):
    """``kfp.Client.list_runs``'s answer: ``.runs`` (None when empty, as kfp's)."""

    @property
    def runs(self) -> list[Resource] | None:
        return self._items or None


class ListExperimentsResponse(_Page):
    @property
    def experiments(self) -> list[Resource] | None:
        return self._items or None


class ListPipelinesResponse(_Page):
    @property
    def pipelines(self) -> list[Resource] | None:
        return self._items or None


class ListPipelineVersionsResponse(_Page):
    @property
    def pipeline_versions(self) -> list[Resource] | None:
        return self._items or None


class ListRecurringRunsResponse(_Page):
    @property
    def recurring_runs(self) -> list[Resource] | None:
        return self._items or None


# kfp's sort keys (``'created_at desc'``) and the resource field each reads.
_SORT_KEYS = {"created_at": lambda r: str(r.metadata.creation_timestamp or ""),
              "name": lambda r: r.name, "display_name": lambda r: r.name,
              "id": lambda r: r.name}
# kfp's filter operations on display_name (the only key a ketch resource has by that name).
_FILTER_KEYS = ("display_name", "name")


def _matches(resource: Resource, predicate: dict[str, Any]) -> bool:
    value = resource.name
    op = predicate.get("operation")
    if op == "EQUALS":
        return bool(value == predicate.get("stringValue"))
    if op == "NOT_EQUALS":
        return bool(value != predicate.get("stringValue"))
    if op == "IS_SUBSTRING":
        return str(predicate.get("stringValue")) in value
    if op == "IN":
        return value in ((predicate.get("stringValues") or {}).get("values") or [])
    raise InvalidError("invalid list filter", [FieldError(
        "filter", f"operation {op!r} is not supported here; use EQUALS, NOT_EQUALS, "
                  "IS_SUBSTRING or IN")])


def _filtered(items: list[Resource], text: str | None) -> list[Resource]:
    if not text:
        return items
    try:
        doc = json.loads(text)
        predicates = list(doc.get("predicates") or [])
    except (ValueError, AttributeError, TypeError):
        raise InvalidError("invalid list filter", [FieldError(
            "filter", "expected a JSON Filter such as {\"predicates\": [{\"operation\": "
                      "\"EQUALS\", \"key\": \"display_name\", \"stringValue\": \"x\"}]}")]
                           ) from None
    for predicate in predicates:
        if not isinstance(predicate, dict) or predicate.get("key") not in _FILTER_KEYS:
            key = predicate.get("key") if isinstance(predicate, dict) else predicate
            raise InvalidError("invalid list filter", [FieldError(
                "filter", f"key {key!r} is not supported here; use display_name")])
        items = [r for r in items if _matches(r, predicate)]
    return items


_P = TypeVar("_P", bound=_Page)


def page(cls: type[_P], items: list[Resource], *, page_token: str = "", page_size: int = 10,
         sort_by: str = "", filter: str | None = None) -> _P:
    """One page of ``items`` as kfp's ``cls``: filtered, sorted (newest first unless
    ``sort_by`` says otherwise), ``page_size`` long, from ``page_token`` (an offset)."""
    items = _filtered(items, filter)
    key, _, order = (sort_by or "created_at desc").strip().partition(" ")
    if key not in _SORT_KEYS or order not in ("", "asc", "desc"):
        raise InvalidError("invalid sort", [FieldError(
            "sort_by", f"expected '<field>' or '<field> desc' with field one of "
                       f"{', '.join(sorted(_SORT_KEYS))}; got {sort_by!r}")])
    # Stable, then reversed: creation times have one-second resolution, and ties keep
    # the store's order (creation order), exactly reversed for "desc".
    items = sorted(items, key=_SORT_KEYS[key])
    if order == "desc":
        items.reverse()
    try:
        start = int(page_token or 0)
    except ValueError:
        start = -1
    if start < 0 or start > len(items):
        raise InvalidError("invalid page token", [FieldError(
            "page_token", f"{page_token!r} is not a token this client returned")])
    if page_size < 1:
        raise InvalidError("invalid page size", [FieldError(
            "page_size", f"expected a positive number, got {page_size}")])
    end = start + page_size
    return cls(total_size=len(items), next_page_token=str(end) if end < len(items) else None,
               _items=items[start:end])
