"""Server-side apply's field ownership (``metadata.managedFields``), over plain dicts.

What kube-apiserver does with sigs.k8s.io/structured-merge-diff, without a schema:

* A *path* is a tuple of FieldsV1 keys, ``("f:spec", "f:replicas")``; an item of an
  associative list is ``'k:{"name":"a"}'``, and the item's own membership is ``.`` in
  the FieldsV1 form.
* The fields a value *sets* (``field_set``): every scalar, every atomic list, every
  empty map; each item of an associative list and the item's fields. A non-empty map
  is a member only through its fields, as a structural schema's properties are.
* Lists: a list of objects that each carry a string ``name``, unique in the list
  (containers, env, ports, volumes), is associative, keyed by ``name``, as the
  Kubernetes types mark such lists ``listType=map, listMapKey=name``. Every other list
  (args, command, finalizers, numbers, objects without a name) is atomic: owned and
  replaced whole. Kubernetes makes ``finalizers`` a set (``v:`` items); here it is
  atomic, so two managers sharing finalizers conflict on the whole list.
* Tracked: for the main resource every top-level field but apiVersion, kind, metadata
  and status, and metadata's labels, annotations, finalizers and ownerReferences
  (name, namespace, uid, resourceVersion and the rest are the URL's or the server's, as
  kube-apiserver strips them); for the status subresource, ``status``.
* A ``null`` in an applied configuration is not a value: it is dropped before the
  apply, so it neither sets nor owns the field.

An apply (``apply``) sets exactly the applied fields for its manager: fields it applied
before and now omits are removed unless another manager owns them (or something under
them), and a map or list left empty by a removal goes too unless someone owns it. A
field another manager owns and the apply changes is a conflict (``ApplyConflictError``,
409) unless ``force``, which moves it to the applier. A non-apply write (``update``)
gives its manager the fields it changed and takes them from the others.

Where this differs from kube-apiserver: an object without managedFields (written before
ketch kept them, or cleared with ``[]``) has no owners, so a first apply conflicts with
nobody (kube-apiserver hands its fields to a ``before-first-apply`` manager); a
finalizer the server's admission adds is owned by nobody; the platform's own writes
(controllers, the KFP API) record no entry; and a write to ``/status`` records none
either, since the status is stored apart from the rest of the object.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from ketch.core.errors import ApplyConflictError

__all__ = [
    "FieldSet",
    "Manager",
    "Path",
    "apply",
    "check_fields_v1",
    "decode",
    "encode",
    "field_set",
    "from_fields_v1",
    "index",
    "merge",
    "path_string",
    "remove_paths",
    "strip_nulls",
    "to_fields_v1",
    "tracked",
    "update",
]

Path = tuple[str, ...]
FieldSet = frozenset[Path]

MISSING: Any = object()
TRACKED_META = ("labels", "annotations", "finalizers", "ownerReferences")
_UNTRACKED_ROOT = frozenset({"apiVersion", "kind", "metadata", "status"})


@dataclass(frozen=True)
class Manager:
    """One managedFields entry, its FieldsV1 decoded to a set of paths."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: FieldSet
    subresource: str = ""

    def same_slot(self, manager: str, operation: str, subresource: str) -> bool:
        # kube-apiserver keys entries by manager, operation and subresource: "x" applying
        # and "x" updating are two owners, and can conflict.
        return (self.manager, self.operation, self.subresource) == (manager, operation,
                                                                    subresource)


# -- paths and field sets ------------------------------------------------------------

def _keyed(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    names = [item.get("name") if isinstance(item, dict) else None for item in value]
    return all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


def item_key(name: str) -> str:
    """The FieldsV1 key of an associative-list item, as kube-apiserver writes it."""
    return "k:" + json.dumps({"name": name}, separators=(",", ":"))


def _key_name(elem: str) -> str | None:
    try:
        key = json.loads(elem[2:])
    except ValueError:
        return None
    name = key.get("name") if isinstance(key, dict) and len(key) == 1 else None
    return name if isinstance(name, str) else None


def tracked(body: dict[str, Any], subresource: str = "") -> dict[str, Any]:
    """The part of a wire-form object whose fields have owners."""
    if subresource == "status":
        status = body.get("status")
        return {"status": status} if isinstance(status, dict) and status else {}
    out = {k: v for k, v in body.items() if k not in _UNTRACKED_ROOT}
    meta = body.get("metadata")
    if isinstance(meta, dict):
        kept = {k: meta[k] for k in TRACKED_META if k in meta}
        if kept:
            out["metadata"] = kept
    return out


def strip_nulls(value: Any) -> Any:
    """``value`` without ``None`` map values (an applied null sets nothing)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def field_set(value: dict[str, Any]) -> FieldSet:
    """Every path ``value`` sets (see the module docstring)."""
    out: set[Path] = set()
    _walk(value, (), out)
    out.discard(())
    return frozenset(out)


def _walk(value: Any, prefix: Path, out: set[Path]) -> None:
    if isinstance(value, dict):
        if not value:
            out.add(prefix)
        for key, child in value.items():
            _walk(child, (*prefix, f"f:{key}"), out)
    elif _keyed(value):
        for item in value:
            path = (*prefix, item_key(item["name"]))
            out.add(path)
            for key, child in item.items():
                _walk(child, (*path, f"f:{key}"), out)
    else:
        out.add(prefix)


def _child(node: Any, elem: str) -> Any:
    if elem.startswith("f:") and isinstance(node, dict):
        return node.get(elem[2:], MISSING)
    if elem.startswith("k:") and _keyed(node):
        name = _key_name(elem)
        return next((item for item in node if item["name"] == name), MISSING)
    return MISSING


def index(value: Any) -> dict[Path, Any]:
    """Every path that exists in ``value`` (maps, items and leaves), with its value: one
    walk, so that many lookups cost no more than it."""
    out: dict[Path, Any] = {}

    def walk(node: Any, prefix: Path) -> None:
        out[prefix] = node
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*prefix, f"f:{key}"))
        elif _keyed(node):
            for item in node:
                walk(item, (*prefix, item_key(item["name"])))

    walk(value, ())
    return out


def path_string(path: Path) -> str:
    """A path as kube-apiserver prints it: ``.spec.containers[name="a"].image``."""
    out = []
    for elem in path:
        if elem.startswith("f:"):
            out.append(f".{elem[2:]}")
        elif elem.startswith("k:"):
            try:
                key = json.loads(elem[2:])
            except ValueError:
                key = {}
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]")
        elif elem.startswith("v:"):
            out.append(f"[={elem[2:]}]")
        elif elem.startswith("i:"):
            out.append(f"[{elem[2:]}]")
    return "".join(out)


# -- the FieldsV1 wire form --------------------------------------------------------------

def to_fields_v1(fields: Iterable[Path]) -> dict[str, Any]:
    """A field set as the FieldsV1 tree: a member with members below it gets ``.``."""
    root: dict[str, Any] = {}
    paths = sorted(fields)  # a path sorts before those under it
    members = set(paths)
    dotted = members & {p[:i] for p in paths for i in range(1, len(p))}
    for path in paths:
        node = root
        for depth, elem in enumerate(path, start=1):
            if elem not in node:
                node[elem] = {".": {}} if path[:depth] in dotted else {}
            node = node[elem]
    return root


def from_fields_v1(tree: dict[str, Any]) -> FieldSet:
    """The set a FieldsV1 tree holds (``check_fields_v1`` first for one from a client)."""
    out: set[Path] = set()

    def walk(node: dict[str, Any], prefix: Path) -> None:
        for elem, child in node.items():
            if elem == ".":
                out.add(prefix)
            elif child:
                walk(child, (*prefix, elem))
            else:
                out.add((*prefix, elem))

    walk(tree, ())
    return frozenset(out)


def check_fields_v1(tree: Any, where: str = "fieldsV1") -> None:
    """Raise ``ValueError`` unless ``tree`` is a FieldsV1 tree kube-apiserver would decode."""
    if not isinstance(tree, dict):
        raise ValueError(f"{where} must be an object")
    for elem, child in tree.items():
        here = f"{where}[{elem!r}]"
        if elem == ".":
            if child != {}:
                raise ValueError(f"{here} must be {{}}")
            continue
        if elem[:2] not in ("f:", "k:", "v:", "i:") or len(elem) < 3:
            raise ValueError(f"{here}: a key must start with f:, k:, v: or i:")
        if elem[:2] in ("k:", "v:"):
            try:
                payload = json.loads(elem[2:])
            except ValueError:
                raise ValueError(f"{here}: not JSON after {elem[:2]}") from None
            if elem[:2] == "k:" and not isinstance(payload, dict):
                raise ValueError(f"{here}: a k: key must be a JSON object")
        if elem[:2] == "i:" and not elem[2:].isdigit():
            raise ValueError(f"{here}: an i: key must be an index")
        check_fields_v1(child, here)


def decode(entries: Iterable[dict[str, Any]]) -> list[Manager]:
    """Wire managedFields entries (already validated by ``ObjectMeta``) as ``Manager``s."""
    return [Manager(manager=e.get("manager", ""), operation=e.get("operation", ""),
                    api_version=e.get("apiVersion", ""), time=e.get("time"),
                    fields=from_fields_v1(e.get("fieldsV1") or {}),
                    subresource=e.get("subresource") or "") for e in entries]


def encode(managers: Iterable[Manager]) -> list[dict[str, Any]]:
    """``Manager``s as wire managedFields entries."""
    out = []
    for m in managers:
        entry: dict[str, Any] = {"manager": m.manager, "operation": m.operation,
                                 "apiVersion": m.api_version}
        if m.time:
            entry["time"] = m.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = to_fields_v1(m.fields)
        if m.subresource:
            entry["subresource"] = m.subresource
        out.append(entry)
    return out


# -- merging and removing ------------------------------------------------------------

def merge(live: Any, config: Any) -> Any:
    """``config`` laid over ``live``: maps merge, associative lists merge by name (new
    items appended), everything else is replaced."""
    if isinstance(config, dict):
        out = dict(live) if isinstance(live, dict) else {}
        for key, value in config.items():
            out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    if _keyed(config) and _keyed(live):
        items = list(live)
        where = {item["name"]: i for i, item in enumerate(items)}
        for item in config:
            if item["name"] in where:
                items[where[item["name"]]] = merge(items[where[item["name"]]], item)
            else:
                items.append(copy.deepcopy(item))
        return items
    return copy.deepcopy(config)


def remove_paths(obj: dict[str, Any], paths: Iterable[Path],
                 owned: FieldSet = frozenset()) -> dict[str, Any]:
    """``obj`` without ``paths``; a map or list a removal empties goes as well unless it
    is in ``owned``. The ``name`` of an associative item that stays is kept."""
    result = copy.deepcopy(obj)
    for path in sorted(paths, key=len, reverse=True):
        if len(path) >= 2 and path[-1] == "f:name" and path[-2].startswith("k:"):
            continue  # the item's key: the item goes by its own path, or stays named
        chain: list[tuple[Any, str]] = []
        node: Any = result
        for elem in path:
            chain.append((node, elem))
            node = _child(node, elem)
            if node is MISSING:
                break
        if node is MISSING:
            continue
        for depth in range(len(chain) - 1, -1, -1):
            container, elem = chain[depth]
            if isinstance(container, dict):
                container.pop(elem[2:], None)
            else:
                name = _key_name(elem)
                container[:] = [i for i in container if i.get("name") != name]
            if depth == 0 or container or path[:depth] in owned:
                break
    return result


# -- apply and update ----------------------------------------------------------------

def _differs(before: dict[Path, Any], after: dict[Path, Any], path: Path) -> bool:
    old, new = before.get(path, MISSING), after.get(path, MISSING)
    if (isinstance(old, dict) and isinstance(new, dict)) or (_keyed(old) and _keyed(new)):
        return False  # a map, an item or an associative list changes through its parts
    return bool(old != new)


def _roots(fields: FieldSet, roots: frozenset[Path]) -> set[Path]:
    """The ``roots`` that some path of ``fields`` is at or under (one pass over
    ``fields``, each path's prefixes looked up: no roots x fields product)."""
    return {q[:i] for q in fields for i in range(1, len(q) + 1)} & roots


def _covered(fields: FieldSet, roots: frozenset[Path]) -> FieldSet:
    """The paths of ``fields`` at or under one of ``roots``."""
    return frozenset(q for q in fields if any(q[:i] in roots for i in range(1, len(q) + 1)))


def _existing(managers: Iterable[Manager], obj: dict[str, Any]) -> list[Manager]:
    # Owners of fields that no longer exist lose them; an owner of nothing goes.
    out = []
    parts = {sub: index(tracked(obj, sub)) for sub in ("", "status")}
    for m in managers:
        part = parts["status" if m.subresource == "status" else ""]
        fields = frozenset(p for p in m.fields if p in part)
        if fields:
            out.append(replace(m, fields=fields) if fields != m.fields else m)
    return out


def _display(m: Manager) -> str:
    text = json.dumps(m.manager)
    if m.subresource:
        text += f" with subresource {json.dumps(m.subresource)}"
    if m.operation == "Update":
        text += f" using {m.api_version}" + (f" at {m.time}" if m.time else "")
    return text


def _conflict_error(conflicts: list[tuple[Manager, Path]]) -> ApplyConflictError:
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {_display(m)}",
               "field": path_string(p)} for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {_display(m)}: {path_string(p)}"
    else:
        lines = []
        for shown in sorted({_display(m) for m, _ in conflicts}):
            lines.append(f"conflicts with {shown}:")
            lines += [f"- {path_string(p)}" for m, p in conflicts if _display(m) == shown]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApplyConflictError(message, causes)


def apply(live: dict[str, Any], config: dict[str, Any], managers: list[Manager], *,
          manager: str, api_version: str, time: str, force: bool = False,
          subresource: str = "",
          normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
          ) -> tuple[dict[str, Any], list[Manager]]:
    """Apply ``config`` (wire form, nulls stripped) for ``manager`` over ``live`` (wire
    form, ``{}`` when the object is new): the new object and its owners.

    ``normalize`` turns the merged object into what would be stored (the kind's
    validation: defaults filled, unknown fields dropped), so that conflicts compare
    stored values, and the applier owns only what survives it.
    Raises ``ApplyConflictError`` naming each field another manager owns and this apply
    changes, unless ``force``.
    """
    merged = merge(live, tracked(config, subresource))
    if normalize is not None:
        merged = normalize(merged)
    before, after = index(live), index(merged)
    applied = frozenset(p for p in field_set(tracked(config, subresource)) if p in after)
    mine = next((m for m in managers if m.same_slot(manager, "Apply", subresource)), None)
    others = [m for m in managers if m is not mine]
    # A changed field conflicts with whoever owns it or something under it (a scalar
    # that replaces a map); an ancestor counts where it is atomic (a list replaced).
    checked = applied | {p[:i] for p in applied for i in range(1, len(p))}
    changed = frozenset(p for p in checked if _differs(before, after, p))
    hit = {id(m): _roots(m.fields, changed) for m in others} if changed else {}
    conflicts = [(m, p) for m in others for p in sorted(hit.get(id(m), ()))]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    narrowed = {id(m): replace(m, fields=m.fields - _covered(m.fields, frozenset(hit[id(m)])))
                for m in others if hit.get(id(m))}
    others = [narrowed.get(id(m), m) for m in others]
    keep = applied.union(*(m.fields for m in others))
    prefixes = {q[:i] for q in keep for i in range(1, len(q) + 1)}
    dropped = (mine.fields if mine else frozenset()) - applied
    result = remove_paths(merged, [p for p in dropped if p not in prefixes], keep)
    entry = Manager(manager=manager, operation="Apply", api_version=api_version,
                    time=time, fields=applied, subresource=subresource)
    if mine is not None and mine.fields == applied and result == live:
        entry = mine  # nothing changed: keep the entry's time, so no new resourceVersion
    owners = [entry if m is mine else narrowed.get(id(m), m) for m in managers]
    if mine is None:
        owners.append(entry)
    return result, _existing(owners, result)


def update(old: dict[str, Any] | None, new: dict[str, Any], managers: list[Manager], *,
           manager: str, api_version: str, time: str,
           subresource: str = "") -> list[Manager]:
    """The owners after a non-apply write (create, replace, merge or JSON patch) by
    ``manager`` took ``old`` (``None``: created) to ``new``: it owns what it changed,
    and the other managers lose those fields."""
    before = tracked(old, subresource) if old is not None else {}
    after = tracked(new, subresource)
    old_fs, new_fs = field_set(before), field_set(after)
    old_at, new_at = index(before), index(after)
    changed = frozenset(p for p in new_fs if p not in old_fs or _differs(old_at, new_at, p))
    if not changed and old_fs <= new_fs:
        return _existing(managers, new)
    mine = next((m for m in managers if m.same_slot(manager, "Update", subresource)), None)
    owners = []
    for m in managers:
        if m is mine:
            continue
        lost = _covered(m.fields, changed)
        owners.append(replace(m, fields=m.fields - lost) if lost else m)
    entry = Manager(manager=manager, operation="Update", api_version=api_version, time=time,
                    fields=(mine.fields if mine else frozenset()) | changed,
                    subresource=subresource)
    if mine is not None:
        owners.insert(managers.index(mine), entry)
    else:
        owners.append(entry)
    return _existing(owners, new)
