"""What the ray backend asks of the cluster: connection, nodes, resources, reservations.

Kept apart from the executor so that it reads as the contract's methods only. Ray is
imported here and in ``ray.py`` alone, lazily: ``import ketch`` never pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ketch.core.errors import ExecutorError, InsufficientResourcesError
from ketch.core.executors._base import ResourceRequest

__all__ = [
    "NAMESPACE",
    "ClusterView",
    "Node",
    "bundle_of",
    "connect",
    "describe",
    "release",
    "reserve",
]

NAMESPACE = "ketch"
# Ray's smallest unit of a resource: a unit that asks for nothing still needs a node,
# and a placement group bundle cannot be empty.
_TINY_CPU = 0.0001
# Resources Ray keeps for itself, not for units to ask for.
_INTERNAL = ("node:", "object_store_memory", "accelerator_type:")
_NODES_TTL = 1.0
_FREE_TTL = 0.1


def connect(address: str, namespace: str = NAMESPACE) -> None:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:10001``,
    or ``local`` for a cluster of this process); once per process."""
    import ray

    if ray.is_initialized():
        return
    if address not in ("auto", "local"):
        _check_reachable(address)
    try:
        if address == "local":
            ray.init(namespace=namespace, log_to_driver=False, include_dashboard=False,
                     configure_logging=False)
        else:
            ray.init(address=address, namespace=namespace, log_to_driver=False,
                     configure_logging=False)
    except (ConnectionError, TimeoutError) as err:
        raise ExecutorError(f"cannot reach the Ray cluster at KETCH_RAY_ADDRESS={address!r}: "
                            f"{err}") from None
    except RuntimeError as err:
        # A cluster of another Ray version: Ray says which versions it saw.
        raise ExecutorError(f"cannot join the Ray cluster at KETCH_RAY_ADDRESS={address!r} "
                            f"with ray {ray.__version__}: {err}") from None


def _check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens at: ``ray.init`` retries for minutes."""
    import socket

    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"KETCH_RAY_ADDRESS={address!r} is not HOST:PORT, "
                            "ray://HOST:PORT, auto or local")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as err:
        raise ExecutorError(f"cannot reach the Ray cluster at KETCH_RAY_ADDRESS={address!r}: "
                            f"{err}") from None


@dataclass(frozen=True)
class Node:
    node_id: str
    ip: str
    total: Mapping[str, float]
    labels: Mapping[str, str]

    def offers(self, bundle: Mapping[str, float], free: Mapping[str, float]) -> bool:
        return all(free.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items())


def bundle_of(res: ResourceRequest) -> dict[str, float]:
    """A unit's request as a Ray resource bundle."""
    bundle: dict[str, float] = {}
    if res.cpu > 0:
        bundle["CPU"] = float(res.cpu)
    if res.memory > 0:
        bundle["memory"] = float(res.memory)
    if res.gpu > 0:
        bundle["GPU"] = float(res.gpu)
    bundle.update({k: float(v) for k, v in res.custom.items() if v > 0})
    return bundle or {"CPU": _TINY_CPU}


def _unit_resources(total: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in total.items() if not k.startswith(_INTERNAL)}


def describe(node: Node) -> str:
    """``<node id 8> (ip): CPU 4, memory 8Gi, wa 100`` for messages."""
    parts = []
    for name, amount in sorted(_unit_resources(node.total).items()):
        parts.append(f"{name} {_gib(amount) if name == 'memory' else f'{amount:g}'}")
    return f"{node.node_id[:8]} ({node.ip}): {', '.join(parts) or 'nothing'}"


def _gib(amount: float) -> str:
    return f"{amount / (1 << 30):.1f}Gi"


class ClusterView:
    """The alive nodes units may use (those whose labels match ``selector``), their
    totals and what is free on each now."""

    def __init__(self, selector: Mapping[str, str]) -> None:
        self.selector = dict(selector)
        self._nodes: list[Node] = []
        self._read_at = 0.0
        self._released_at = 0.0
        self._free_view: dict[str, dict[str, float]] = {}
        self._free_at = 0.0

    def nodes(self, *, fresh: bool = False) -> list[Node]:
        import ray

        if fresh or time.monotonic() - self._read_at > _NODES_TTL:
            found = []
            for info in ray.nodes():  # type: ignore[no-untyped-call]
                if not info.get("Alive"):
                    continue
                labels = info.get("Labels") or {}
                if any(labels.get(k) != v for k, v in self.selector.items()):
                    continue
                found.append(Node(info["NodeID"], info["NodeManagerAddress"],
                                  dict(info.get("Resources") or {}), dict(labels)))
            self._nodes, self._read_at = found, time.monotonic()
        return list(self._nodes)

    def alive(self, node_id: str) -> bool:
        return any(n.node_id == node_id for n in self.nodes(fresh=True))

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes() if n.node_id == node_id), None)

    def capacity(self) -> ResourceRequest:
        """The largest request one node could take, field by field."""
        best: dict[str, float] = {}
        for node in self.nodes():
            for name, amount in _unit_resources(node.total).items():
                best[name] = max(best.get(name, 0.0), amount)
        custom = {k: v for k, v in best.items() if k not in ("CPU", "memory", "GPU")}
        return ResourceRequest(cpu=best.get("CPU", 0.0), memory=int(best.get("memory", 0)),
                               gpu=int(best.get("GPU", 0)), custom=custom)

    def unschedulable(self, res: ResourceRequest) -> str | None:
        bundle = bundle_of(res)
        nodes = self.nodes()
        if not nodes:
            return ("no alive Ray node matches KETCH_RAY_NODE_LABELS "
                    f"{self.selector}" if self.selector else "the Ray cluster has no alive node")
        if any(n.offers(bundle, n.total) for n in nodes):
            return None
        asked = ", ".join(f"{k} {_gib(v) if k == 'memory' else f'{v:g}'}"
                          for k, v in sorted(bundle.items()))
        return (f"no node of the Ray cluster has {asked}; its nodes: "
                + "; ".join(describe(n) for n in nodes))

    def fits(self, res: ResourceRequest) -> bool:
        bundle = bundle_of(res)
        # Ray's view of what is free lags a released placement group by up to ~0.1 s
        # (a reservation shows at once): right after a release, wait for it briefly.
        wait_until = self._released_at + 1.0
        while True:
            free = self._free()
            if any(n.offers(bundle, free.get(n.node_id, {})) for n in self.nodes()):
                return True
            if time.monotonic() > wait_until:
                return False
            self._free_at = 0.0
            time.sleep(0.02)

    def _free(self) -> dict[str, dict[str, float]]:
        """What is free per node, read at most every 0.1 s (a call to Ray's control
        store costs about a millisecond, as much as a warm unit's own overhead). A
        reservation or release here reads it afresh; a view up to 0.1 s old can only
        let a warm task queue briefly in Ray, which is Ray's own way to wait."""
        if time.monotonic() - self._free_at > _FREE_TTL:
            self._free_view, self._free_at = _free_per_node(), time.monotonic()
        return self._free_view

    def reserved(self) -> None:
        self._free_at = 0.0

    def released(self) -> None:
        self._released_at = time.monotonic()
        self._free_at = 0.0


def _free_per_node() -> dict[str, dict[str, float]]:
    # Ray has no public per-node view of free resources (ray.available_resources()
    # sums the cluster); this is the call `ray status` itself makes.
    from ray._private.state import state

    return state.available_resources_per_node()  # type: ignore[no-untyped-call,no-any-return]


def reserve(name: str, bundles: Sequence[Mapping[str, float]], strategy: str,
            timeout: float, selector: Mapping[str, str]) -> tuple[Any, list[str]]:
    """A detached placement group ``name`` holding ``bundles``, and the node of each
    bundle. Raises InsufficientResourcesError when Ray cannot place it in ``timeout``
    seconds (nothing is left reserved)."""
    import ray
    from ray.util.placement_group import placement_group, placement_group_table

    label_selectors = [dict(selector) for _ in bundles] if selector else None
    try:
        pg = placement_group([dict(b) for b in bundles], strategy=strategy, name=name,
                             lifetime="detached", bundle_label_selector=label_selectors)
    except ValueError as err:
        raise ExecutorError(f"Ray refused the reservation {name!r}: {err}") from None
    ready, _ = ray.wait([pg.ready()], timeout=timeout)
    if not ready:
        release(name, pg)
        raise InsufficientResourcesError(
            f"the Ray cluster had no room for {list(bundles)} ({strategy}) within "
            f"{timeout:g} s")
    nodes = placement_group_table(pg)["bundles_to_node_id"]
    return pg, [nodes[i] for i in range(len(bundles))]


def release(name: str, pg: Any = None) -> bool:
    """Remove the placement group ``name`` if it exists; whether one was removed."""
    from ray.util.placement_group import get_placement_group, remove_placement_group

    if pg is None:
        try:
            pg = get_placement_group(name)
        except ValueError:
            return False
    try:
        remove_placement_group(pg)
    except Exception:  # already removed by someone else
        return False
    return True


def reserved(name: str) -> bool:
    from ray.util.placement_group import get_placement_group

    try:
        get_placement_group(name)
    except ValueError:
        return False
    return True
