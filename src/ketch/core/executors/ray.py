"""The ``ray`` executor: work units on a Ray cluster's nodes (``KETCH_EXECUTOR=ray``).

Ray places and reserves, ketch runs. Each unit's resources (CPU, memory, GPUs,
custom resources) are a detached placement group named ``ketch-<unit id>``, so
Ray's own scheduler picks the node, a gang is one placement group of several
bundles (PACK, SPREAD, STRICT_SPREAD, STRICT_PACK) that is placed all or nothing,
and the reservation outlives the control plane until ``finalize``. The unit's
process is then started on that node by the node's agent (``_ray_agent``), a
detached actor that runs the local backend's process machinery there.

Handles carry the node, the placement group and the agent's own (local) handle:
a restarted control plane polls the same agent by name, so adoption works as it
does locally. A unit whose node is gone is ``Lost`` with reason ``NodeLost``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ketch.core.artifacts import ArtifactStore
from ketch.core.config import Settings
from ketch.core.errors import ExecutorError, InsufficientResourcesError, NotFoundError
from ketch.core.executors import _ray_cluster as cluster
from ketch.core.executors._base import (
    Executor,
    Handle,
    ResourceRequest,
    UnitState,
    UnitStatus,
    WorkUnit,
)
from ketch.core.executors._ray_agent import NodeAgent, agent_name
from ketch.core.executors._ray_warm import WarmTasks, takes_warm_path
from ketch.core.executors._subscribers import ExitSubscribers
from ketch.core.executors.local import LocalExecutor

__all__ = ["RayExecutor", "make_executor"]

log = logging.getLogger(__name__)

STRATEGIES = ("PACK", "SPREAD", "STRICT_SPREAD", "STRICT_PACK")
_CALL_TIMEOUT = 60.0
_FOLLOW_INTERVAL = 0.1
_FINAL_KEPT = 10_000


def make_executor(settings: Settings, artifacts: ArtifactStore) -> Executor:
    """The ``ketch.executors`` entry point: a RayExecutor from ``Settings``."""
    return RayExecutor(artifacts, address=settings.ray_address,
                       node_labels=settings.ray_labels)


class RayExecutor(Executor):
    """Runs work units on the nodes of the Ray cluster at ``address``.

    Args:
        artifacts: The artifact store; every node must reach it (checked per node).
        address: ``auto``, ``HOST:PORT``, ``ray://HOST:10001`` or ``local``.
        node_labels: Only nodes with these labels take units.
        reserve_timeout: How long ``submit`` waits for Ray to place a unit that
            looked like it fit, before it raises ``InsufficientResourcesError``.
        kill_grace_seconds: SIGTERM-to-SIGKILL grace for ``forget``.
    """

    name = "ray"

    def __init__(self, artifacts: ArtifactStore, *, address: str = "auto",
                 node_labels: Mapping[str, str] | None = None, reserve_timeout: float = 5.0,
                 kill_grace_seconds: float = 5.0) -> None:
        cluster.connect(address)
        import ray

        self._ray = ray
        self.artifacts = artifacts
        self.view = cluster.ClusterView(node_labels or {})
        self._reserve_timeout = reserve_timeout
        self._grace = kill_grace_seconds
        self._lock = threading.Lock()
        self._agents: dict[str, Any] = {}
        self._cursors: dict[str, int | None] = {}
        self._live: dict[str, str] = {}  # unit id -> node, for units seen running
        self._final: dict[tuple[Any, ...], UnitStatus] = {}
        self._subscribers = ExitSubscribers()
        self._stop = threading.Event()
        self._probe_key = f".ketch/ray-probe/{uuid.uuid4().hex}"
        self._probed = False
        self._actor_class = ray.remote(NodeAgent)
        self._warm = WarmTasks(artifacts, self.view.selector, self._known_agents, self._call,
                               lambda unit_id: self._notify([unit_id]))
        # The store's reach is checked at start, on every node there is now.
        self._start_agents([n.node_id for n in self.view.nodes(fresh=True)])
        self._watcher = threading.Thread(target=self._watch, name="ketch-ray-watch",
                                         daemon=True)
        self._watcher.start()

    # --------------------------------------------------------------- agents

    def _agent(self, node_id: str) -> Any:
        """The agent of ``node_id``, started (and its reach of the store checked)
        the first time a unit lands there."""
        with self._lock:
            agent = self._agents.get(node_id)
        if agent is not None:
            return agent
        self._start_agents([node_id])
        with self._lock:
            return self._agents[node_id]

    def _start_agents(self, node_ids: Sequence[str]) -> None:
        """Find or start the agents of ``node_ids`` together, then check together that
        each reaches the artifact store (refused with the reason if one does not)."""
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        started: dict[str, tuple[Any, int | None]] = {}
        for node_id in node_ids:
            name = agent_name(node_id, self.artifacts.root_uri)
            try:
                # Running already: its past exits are not this control plane's news.
                started[node_id] = (ray.get_actor(name, namespace=cluster.NAMESPACE), None)
                continue
            except ValueError:
                pass
            node = self.view.node(node_id)
            agent = self._actor_class.options(
                name=name, namespace=cluster.NAMESPACE, lifetime="detached",
                get_if_exists=True, num_cpus=0, max_concurrency=64, max_restarts=-1,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote(node_id, node.ip if node is not None else "127.0.0.1",
                     self.artifacts.root_uri)
            started[node_id] = (agent, 0)
        if not self._probed:
            self.artifacts.put_bytes(b"ketch", self._probe_key)
            self._probed = True
        probes = {n: a.can_read.remote(self._probe_key) for n, (a, _) in started.items()}
        for node_id, ref in probes.items():
            why = self._call(ref)
            if why is not None:
                node = self.view.node(node_id)
                where = cluster.describe(node) if node is not None else node_id
                raise ExecutorError(
                    f"the artifact store KETCH_ARTIFACTS_URI={self.artifacts.root_uri!r} is "
                    f"not reachable from Ray node {where} ({why}); units there could not "
                    "read their inputs or keep their logs: use an object store (s3://, "
                    "gs://) or a directory every node mounts")
        with self._lock:
            for node_id, (agent, cursor) in started.items():
                self._agents.setdefault(node_id, agent)
                self._cursors.setdefault(node_id, cursor)

    def _call(self, ref: Any, timeout: float = _CALL_TIMEOUT) -> Any:
        """``ray.get`` with the task's own exception (an ExecutorError, say) raised."""
        try:
            return self._ray.get(ref, timeout=timeout)
        except self._ray.exceptions.RayTaskError as err:
            cause = err.cause
            if isinstance(cause, BaseException):
                raise cause from None
            raise

    def _agent_of(self, handle: Handle) -> Any | None:
        """The agent that runs ``handle``'s unit, or None when its node is gone."""
        node_id = str(handle.get("node") or "")
        with self._lock:
            agent = self._agents.get(node_id)
        if agent is not None:
            return agent
        if not self.view.alive(node_id):
            return None
        try:
            return self._agent(node_id)
        except ExecutorError:
            return None

    # --------------------------------------------------------------- submit

    def submit(self, unit: WorkUnit) -> Handle:
        LocalExecutor._check_entry(unit)
        if takes_warm_path(unit):
            self._check_room(unit.resources)
            return self._warm.submit(unit)
        name = f"ketch-{unit.unit_id}"
        self._claim_name(name, unit.unit_id)
        self._check_room(unit.resources)
        pg, nodes = cluster.reserve(name, [cluster.bundle_of(unit.resources)], "PACK",
                                    self._reserve_timeout, self.view.selector)
        self.view.reserved()
        try:
            return self._start(unit, pg, 0, nodes[0], {"pg": name, "bundle": 0})
        except BaseException:
            cluster.release(name, pg)
            self.view.released()
            raise

    def _check_room(self, res: ResourceRequest) -> None:
        """Raise InsufficientResourcesError unless a node could take ``res`` now."""
        never = self.view.unschedulable(res)
        if never is not None:
            raise InsufficientResourcesError(never)
        if not self.view.fits(res):
            raise InsufficientResourcesError(
                f"no node of the Ray cluster has {cluster.bundle_of(res)} free now")

    def submit_gang(self, units: Sequence[WorkUnit], *,
                    placement: str = "PACK") -> list[Handle]:
        """Every unit or none, in one placement group (``placement``: PACK, SPREAD,
        STRICT_SPREAD or STRICT_PACK), placed by Ray all or nothing."""
        if placement not in STRATEGIES:
            raise ExecutorError(f"placement must be one of {', '.join(STRATEGIES)}, "
                                f"not {placement!r}")
        if not units:
            return []
        for unit in units:
            LocalExecutor._check_entry(unit)
            never = self.view.unschedulable(unit.resources)
            if never is not None:
                raise InsufficientResourcesError(f"gang member {unit.unit_id}: {never}")
        name = f"ketch-gang-{units[0].unit_id}"
        self._claim_name(name, units[0].unit_id)
        members = [u.unit_id for u in units]
        pg, nodes = cluster.reserve(name, [cluster.bundle_of(u.resources) for u in units],
                                    placement, self._reserve_timeout, self.view.selector)
        self.view.reserved()
        handles: list[Handle] = []
        try:
            for index, unit in enumerate(units):
                handles.append(self._start(unit, pg, index, nodes[index],
                                           {"pg": name, "bundle": index, "gang": members}))
        except BaseException:
            for handle in handles:
                self.cancel(handle, grace_seconds=0)
            cluster.release(name, pg)
            self.view.released()
            raise
        return handles

    def _claim_name(self, name: str, unit_id: str) -> None:
        if not cluster.reserved(name):
            return
        if self.lookup(unit_id) is not None:
            raise ExecutorError(f"unit {unit_id!r} still holds slots; finalize it first")
        # A reservation whose unit never started: a control plane died in between.
        cluster.release(name)

    def _start(self, unit: WorkUnit, pg: Any, index: int, node_id: str,
               meta: dict[str, Any]) -> Handle:
        node = self.view.node(node_id)
        gpu_ids: list[str] | None = None
        if unit.resources.gpu > 0:
            gpu_ids = self._gpu_ids(pg, index, unit.resources.gpu)
        elif node is not None and node.total.get("GPU", 0) > 0:
            gpu_ids = []
        agent = self._agent(node_id)
        meta = {**meta, "node": node_id}
        local = self._call(agent.submit.remote(unit, gpu_ids, meta))
        with self._lock:
            self._live[unit.unit_id] = node_id
        return _handle(local, meta)

    def _gpu_ids(self, pg: Any, index: int, count: int) -> list[str]:
        """The GPU ids Ray gives the bundle: asked of Ray by a task inside it."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        task = self._ray.remote(_assigned_gpus).options(
            num_cpus=0, num_gpus=count,
            scheduling_strategy=PlacementGroupSchedulingStrategy(pg, index))
        return list(self._call(task.remote()))

    # ------------------------------------------------------------ inspection

    def lookup(self, unit_id: str) -> Handle | None:
        warm = self._warm.lookup(unit_id)
        if warm is not None:
            return warm
        agents = self._known_agents()
        refs = [(node, agent.lookup.remote(unit_id)) for node, agent in agents.items()]
        for _node, ref in refs:
            try:
                found = self._call(ref)
            except Exception:  # a node that went away holds nothing we can run
                continue
            if found is not None:
                local, meta = found
                return _handle(local, meta)
        return None

    def _known_agents(self) -> dict[str, Any]:
        with self._lock:
            missing = [n.node_id for n in self.view.nodes() if n.node_id not in self._agents]
        if missing:
            try:
                self._start_agents(missing)
            except Exception:
                log.warning("no agent on Ray nodes %s", missing, exc_info=True)
        alive = {n.node_id for n in self.view.nodes()}
        with self._lock:
            return {k: v for k, v in self._agents.items() if k in alive}

    def poll(self, handle: Handle) -> UnitStatus:
        if handle.get("backend") == self.name and "task" in handle:
            return self._warm.poll(handle)
        local = handle.get("local")
        if handle.get("backend") != self.name or not isinstance(local, dict):
            return UnitStatus(UnitState.LOST, reason="ProcessLost",
                              message=f"handle belongs to backend {handle.get('backend')!r}")
        key = (handle.get("unitId"), local.get("pid"), local.get("createTime"))
        with self._lock:
            final = self._final.get(key)
        if final is not None:
            return final
        status = self._poll(handle, local)
        with self._lock:
            if status.done:
                if len(self._final) >= _FINAL_KEPT:
                    self._final.pop(next(iter(self._final)))
                self._final[key] = status
            elif status.state is UnitState.RUNNING:
                self._live[str(handle["unitId"])] = str(handle.get("node"))
        return status

    def _poll(self, handle: Handle, local: Handle) -> UnitStatus:
        agent = self._agent_of(handle)
        if agent is None:
            return self._node_lost(handle)
        try:
            status: UnitStatus = self._call(agent.poll.remote(local))
        except (self._ray.exceptions.RayActorError, self._ray.exceptions.GetTimeoutError):
            return self._node_lost(handle)
        except Exception as err:
            return UnitStatus(UnitState.LOST, reason="ProcessLost",
                              message=f"cannot inspect unit: {err}")
        return status

    def _node_lost(self, handle: Handle) -> UnitStatus:
        node_id = str(handle.get("node"))
        with self._lock:
            self._agents.pop(node_id, None)
        return UnitStatus(UnitState.LOST, reason="NodeLost",
                          message=f"Ray node {node_id} that ran the unit is gone")

    def logs(self, handle: Handle, *, follow: bool = False) -> Iterator[bytes]:
        if "task" in handle:
            yield from self._warm.logs(handle, follow=follow)
            return
        local = handle.get("local")
        if not isinstance(local, dict):
            return
        offset = 0
        while True:
            agent = self._agent_of(handle)
            try:
                got = (self._call(agent.read_log.remote(local, offset))
                       if agent is not None else None)
            except Exception:
                got = None
            if got is None:  # finalized (or its node is gone): the artifact store's copy
                yield from self._stored_log(handle, offset)
                return
            chunk, done = got
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            if done or not follow:
                return
            time.sleep(_FOLLOW_INTERVAL)

    def _stored_log(self, handle: Handle, offset: int) -> Iterator[bytes]:
        key = handle.get("local", {}).get("logKey")
        if not key:
            return
        try:
            data = self.artifacts.read_bytes(key)
        except NotFoundError:
            return
        if data[offset:]:
            yield data[offset:]

    # -------------------------------------------------------------- stopping

    def cancel(self, handle: Handle, *, grace_seconds: float = 5.0) -> None:
        if "task" in handle:
            self._warm.cancel(handle, grace_seconds)
            return
        agent = self._agent_of(handle)
        if agent is None or not isinstance(handle.get("local"), dict):
            return
        try:
            self._call(agent.cancel.remote(handle["local"], grace_seconds),
                       timeout=grace_seconds + _CALL_TIMEOUT)
        except self._ray.exceptions.RayActorError:
            return  # the node went, and the unit with it

    def finalize(self, handle: Handle) -> None:
        if "task" in handle:
            self._warm.finalize(handle)
            return
        agent = self._agent_of(handle)
        if agent is not None and isinstance(handle.get("local"), dict):
            # Its node may be gone, and the live log with it.
            with contextlib.suppress(self._ray.exceptions.RayActorError):
                self._call(agent.finalize.remote(handle["local"]))
        self._release(handle)

    def forget(self, handle: Handle) -> None:
        if "task" in handle:
            self._warm.forget(handle, self._grace)
            return
        agent = self._agent_of(handle)
        if agent is not None and isinstance(handle.get("local"), dict):
            with contextlib.suppress(self._ray.exceptions.RayActorError):
                self._call(agent.forget.remote(handle["local"]),
                           timeout=self._grace + _CALL_TIMEOUT)
        self._release(handle)
        with self._lock:
            self._live.pop(str(handle.get("unitId")), None)

    def _release(self, handle: Handle) -> None:
        """Give the unit's reservation back; a gang's once no member runs."""
        name = handle.get("pg")
        if not name:
            return
        for member in handle.get("gang") or ():
            if member == handle["unitId"]:
                continue
            other = self.lookup(member)
            if other is not None and not self.poll(other).done:
                return  # the last member to end gives the gang's reservation back
        if cluster.release(str(name)):
            self.view.released()

    def node(self, handle: Handle) -> str | None:
        if "task" in handle:
            return self._warm.node(handle)
        return super().node(handle)

    # ------------------------------------------------------------- capacity

    def fits(self, resources: ResourceRequest) -> bool:
        return self.view.unschedulable(resources) is None and self.view.fits(resources)

    def capacity(self) -> ResourceRequest:
        return self.view.capacity()

    def unschedulable(self, resources: ResourceRequest) -> str | None:
        return self.view.unschedulable(resources)

    # ----------------------------------------------------------- subscribers

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        return self._subscribers.add(callback)

    def _notify(self, unit_ids: Sequence[str]) -> None:
        for unit_id in unit_ids:
            self._subscribers.notify(unit_id)

    def _watch(self) -> None:
        """Hear every agent's exits (one outstanding wait per agent), and a lost
        node's units as ended, so subscribers never poll."""
        ray = self._ray
        pending: dict[Any, str] = {}
        while not self._stop.is_set():
            with self._lock:
                agents = dict(self._agents)
                waiting = set(pending.values())
                for node_id, agent in agents.items():
                    if node_id not in waiting:
                        pending[agent.wait_ended.remote(self._cursors.get(node_id), 1.0)] = node_id
            if not pending:
                self._stop.wait(0.5)
                continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                node_id = pending.pop(ref)
                try:
                    cursor, ended = ray.get(ref)
                except Exception:
                    ended = self._forget_node(node_id)
                else:
                    with self._lock:
                        self._cursors[node_id] = cursor
                        for unit_id in ended:
                            self._live.pop(unit_id, None)
                self._notify(ended)

    def _forget_node(self, node_id: str) -> list[str]:
        """A node's agent is gone: its units, as far as this control plane knows them."""
        with self._lock:
            self._agents.pop(node_id, None)
            self._cursors.pop(node_id, None)
            lost = [u for u, n in self._live.items() if n == node_id]
            for unit_id in lost:
                self._live.pop(unit_id, None)
        return lost

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)


def _handle(local: Handle, meta: Mapping[str, Any]) -> Handle:
    """The ray handle of an agent's local handle: the same from submit and lookup."""
    handle: Handle = {"backend": RayExecutor.name, "unitId": local["unitId"],
                      "node": meta.get("node"), "pg": meta.get("pg"),
                      "bundle": meta.get("bundle", 0), "local": local}
    if meta.get("gang"):
        handle["gang"] = list(meta["gang"])
    if local.get("endpoint"):
        handle["endpoint"] = local["endpoint"]
    return handle


def _assigned_gpus() -> list[str]:
    import ray

    return [str(i) for i in ray.get_gpu_ids()]
