"""The control plane runtime: store, executor, artifacts and controllers together.

One ``Runtime`` per control plane process. It holds a lease named after its
identity, renewed by a heartbeat, so other control planes on the same database
can tell whether the owner of some work is alive. It pumps the store's change
log into the controllers' queues (writes by other processes arrive this way;
writes made through this process are handed over at once by ``notify``) and
resyncs every object periodically, since reconciling is level-triggered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import psutil

from ketch.core.artifacts import ArtifactStore
from ketch.core.config import Settings
from ketch.core.controller import Controller, ObjectKey
from ketch.core.core_kinds import CORE_KINDS
from ketch.core.errors import GoneError, KetchError
from ketch.core.events import EventRecorder
from ketch.core.executors import Executor
from ketch.core.kinds import Component, KindRegistry
from ketch.core.store import ResourceStore, open_store

if TYPE_CHECKING:
    from ketch.core.kinds import KindInfo

__all__ = ["Runtime", "make_executor"]

log = logging.getLogger("ketch.runtime")

LEASE_TTL = 10.0
_PUMP_INTERVAL = 0.25
_RESYNC_INTERVAL = 30.0
# The change log is compacted to the last 5 minutes (kube-apiserver's default etcd
# compaction interval) and at most the last 1,000 revisions, so it stays bounded however
# fast objects change; a watch from before that gets 410 Gone and lists again.
EVENT_WINDOW = 1000
_PRUNE_INTERVAL = 5.0
# A control plane killed without releasing its lease leaves the row behind; an hour
# after expiry nobody asks about it any more (is_alive treats missing as expired).
LEASE_RETENTION = 3600.0


def make_executor(settings: Settings, artifacts: ArtifactStore) -> Executor:
    """The executor backend named by ``KETCH_EXECUTOR`` (``local`` or an entry point)."""
    if settings.executor == "local":
        from ketch.core.executors.local import LocalExecutor

        return LocalExecutor(settings.runs_dir, artifacts, cpus=settings.cpu_slots,
                             memory=settings.memory_slots, gpus=settings.gpu_ids,
                             unit_index=settings.unit_index_dir)
    if settings.executor == "ray":
        from ketch.core.executors.ray import make_executor as make_ray

        try:
            return make_ray(settings, artifacts)
        except ImportError as err:
            raise KetchError(f"KETCH_EXECUTOR=ray needs Ray: pip install 'ketch[ray]' "
                             f"({err})") from None
    from importlib.metadata import entry_points

    for ep in entry_points(group="ketch.executors"):
        if ep.name == settings.executor:
            factory: Callable[[Settings, ArtifactStore], Executor] = ep.load()
            return factory(settings, artifacts)
    names = ["local", "ray", *(ep.name for ep in entry_points(group="ketch.executors"))]
    raise KetchError(f"unknown executor {settings.executor!r} (KETCH_EXECUTOR); "
                     f"choose one of: {', '.join(names)}")


class Runtime:
    """A control plane: what controllers and API handlers share."""

    def __init__(self, settings: Settings, components: Iterable[Component], *,
                 store: ResourceStore | None = None, executor: Executor | None = None,
                 run_controllers: bool = True) -> None:
        self.settings = settings
        self.components = tuple(components)
        # Kubernetes' core kinds (ConfigMap, Secret, Namespace, Event, Pod) are in every
        # control plane, before any component's.
        self.registry = KindRegistry.of(
            [*CORE_KINDS, *(k for c in self.components for k in c.kinds)])
        settings.home.mkdir(parents=True, exist_ok=True)
        self.store = store or open_store(
            settings.database_url,
            schemas=[c.schema for c in self.components if c.schema is not None])
        self.artifacts = ArtifactStore(settings.artifacts_uri)
        self._executor = executor
        self.host = socket.gethostname()
        # Events from condition changes, whichever controller wrote them (core/events.py).
        EventRecorder(self.store, self.host, self.registry).install()
        self.id = f"{self.host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.run_controllers = run_controllers
        self.controllers: list[Controller] = []
        self._by_kind: dict[str, list[Controller]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._watchers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._watchers_lock = threading.Lock()
        self.store.add_listener(self._on_write)

    # -- local change notification ---------------------------------------------

    def _on_write(self, kind_key: str, namespace: str, name: str) -> None:
        for controller in self._by_kind.get(kind_key, ()):
            controller.enqueue(ObjectKey(namespace, name))
        with self._watchers_lock:
            watchers = list(self._watchers)
        for loop, event in watchers:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)

    def subscribe(self) -> asyncio.Event:
        """An event set after every write through this runtime (for watch streams,
        which otherwise only poll the change log for other processes' writes).
        Call from a running event loop; ``unsubscribe`` when done."""
        event = asyncio.Event()
        with self._watchers_lock:
            self._watchers.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        with self._watchers_lock:
            self._watchers = {(lp, ev) for lp, ev in self._watchers if ev is not event}

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = make_executor(self.settings, self.artifacts)
        return self._executor

    # -- liveness of control planes ------------------------------------------

    def lease_name(self, control_plane: str) -> str:
        return f"controlplane/{control_plane}"

    def is_alive(self, control_plane: str | None) -> bool:
        """Whether the control plane with this id still runs (its lease is fresh and,
        if it ran on this host, its process exists)."""
        if not control_plane:
            return False
        if control_plane == self.id:
            return True
        lease = self.store.get_lease(self.lease_name(control_plane))
        if lease is None or lease.expires_at < time.time():
            return False
        # A control plane on this host that was killed is dead now, not in LEASE_TTL.
        if lease.data.get("host") == self.host:
            pid = int(lease.data.get("pid", 0))
            try:
                proc = psutil.Process(pid)
                return abs(proc.create_time() - float(lease.data.get("started", 0))) < 1.0
            except (psutil.Error, ValueError):
                return False
        return True

    def _heartbeat(self) -> bool:
        proc = psutil.Process()
        return self.store.acquire_lease(
            self.lease_name(self.id), self.id, LEASE_TTL,
            {"host": self.host, "pid": os.getpid(), "started": proc.create_time()})

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Take this control plane's lease and start the controllers."""
        if self._started:
            return
        self._started = True
        if not self.run_controllers:
            return
        self._heartbeat()
        for component in self.components:
            for factory in component.controllers:
                controller = factory(self)
                self.controllers.append(controller)
                self._by_kind.setdefault(controller.kind.key, []).append(controller)
        for controller in self.controllers:
            controller.start()
        self._spawn(self._heartbeat_loop, "ketch-heartbeat")
        self._spawn(self._pump_loop, "ketch-pump")

    def stop(self) -> None:
        """Stop controllers; running work keeps running and is adopted on restart."""
        self._stop.set()
        self._wake.set()
        for controller in self.controllers:
            controller.stop()
        for thread in self._threads:
            thread.join(5)
        if self._executor is not None:
            self._executor.close()
        if self.run_controllers and self._started:
            try:
                self.store.release_lease(self.lease_name(self.id), self.id)
            except KetchError:
                log.warning("could not release the control-plane lease", exc_info=True)
        self.store.close()

    def notify(self, info: KindInfo, namespace: str, name: str) -> None:
        """Hand a change to the kind's controllers at once (writes through this
        runtime's store do this by themselves)."""
        self._on_write(info.key, namespace, name)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(LEASE_TTL / 4):
            try:
                self._heartbeat()
            except KetchError:
                log.warning("control-plane heartbeat failed", exc_info=True)

    def _resync(self) -> None:
        for key, controllers in self._by_kind.items():
            info = controllers[0].kind
            for obj in self.store.list(info).items:
                for controller in controllers:
                    controller.enqueue(ObjectKey(obj.namespace, obj.name))
            log.debug("resynced %s", key)

    def _pump_loop(self) -> None:
        since = self.store.revision()
        self._resync()
        last_resync = last_prune = time.monotonic()
        kinds = set(self._by_kind)
        while not self._stop.is_set():
            try:
                # Keys only: a controller reads the object itself, and decoding every
                # body written (a pipeline run's on each of its steps) is O(object).
                events = self.store.changed_keys(since, kind_keys=kinds)
                for ev in events:
                    since = ev.revision
                    for controller in self._by_kind.get(ev.kind_key, ()):
                        controller.enqueue(ObjectKey(ev.namespace, ev.name))
                stamp = time.monotonic()
                if stamp - last_resync > _RESYNC_INTERVAL:
                    self._resync()
                    last_resync = stamp
                if stamp - last_prune > _PRUNE_INTERVAL:
                    self.store.prune_events(self.settings.change_log_seconds,
                                           keep_revisions=EVENT_WINDOW)
                    self.store.prune_leases(LEASE_RETENTION)
                    last_prune = stamp
                if len(events) == 500:
                    continue
            except GoneError:
                since = self.store.revision()
                self._resync()
            except KetchError:
                log.warning("change-log pump failed; retrying", exc_info=True)
            self._stop.wait(_PUMP_INTERVAL)
