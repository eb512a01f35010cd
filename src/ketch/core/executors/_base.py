"""The executor contract: where work units actually run.

One ABC, several backends (``local`` subprocesses today, ``ray`` next). The
controller above never assumes which one runs its work:

* ``submit(unit)`` starts one work unit and returns a ``Handle``;
  ``submit_gang(units)`` starts all of them or none (distributed training).
* A ``Handle`` is plain JSON. Controllers store it in the resource's status, so a
  control plane that restarts after a crash can ``poll`` work it did not start.
* ``lookup(unit_id)`` finds a unit by the id the caller chose, for the crash
  window between ``submit`` returning and the handle being written down.
* ``poll(handle)`` says Running, Succeeded, Failed or Lost (no process and no
  recorded exit: the work died with no word).
* ``logs(handle, follow=...)`` yields the combined stdout/stderr as bytes, live
  while the unit runs and from the artifact store after ``finalize``;
  ``cancel(handle)`` stops the whole process tree.
* ``finalize(handle)`` (after the unit ended) persists the log to the artifact
  store and releases slots; ``poll`` still answers the final state afterwards,
  so a crash between ``finalize`` and the caller's status write loses nothing.
  ``forget(handle)`` removes every local trace once the owner no longer needs it.
* ``fits(resources)`` / ``capacity()`` tell the scheduler whether a unit can
  start now; resource slots are taken by ``submit`` (or by ``poll`` of a running
  unit adopted from an earlier control plane) and given back by ``finalize``
  or ``forget``.
* ``endpoint(handle)`` is where a *server* unit (``WorkUnit.serves``) listens,
  ``host:port`` chosen by the backend and passed to the unit as ``KETCH_UNIT_HOST``
  and ``KETCH_UNIT_PORT``; callers connect there and assume no socket path.
* ``subscribe(callback)`` adds an exit subscriber (several may listen: Jobs,
  pipelines and serving share one executor); it returns the unsubscribe call.
* A unit is either a ``command`` (argv) or a ``python`` entry point
  (``PythonEntry``): the backend may start the latter from a warm interpreter
  (the local backend forks one, a Ray backend would use an actor), else from a
  fresh one. ``runtime_env`` (packages, a working directory shipped as an
  artifact URI, env) is resolved by the backend where the unit runs, as Ray's
  ``runtime_env`` is.
* Handles are opaque: callers store and pass them back, and read nothing in them
  but ``unitId``; ``is_handle`` tells a stored handle from a bare claim.

Thread safety: every method may be called from any thread. ``on_exit``
callbacks run on an executor thread and must not block.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Executor",
    "Handle",
    "PythonEntry",
    "ResourceRequest",
    "RuntimeEnv",
    "UnitState",
    "UnitStatus",
    "WorkUnit",
]


@dataclass(frozen=True)
class ResourceRequest:
    """What a unit reserves while it runs: CPU cores, memory bytes, GPU count, and
    ``custom`` resources by name (Kubernetes' extended resources, Ray's custom
    resources: ``{"example.com/fpga": 1}``), which only a backend whose nodes
    declare them can grant."""

    cpu: float = 1.0
    memory: int = 0
    gpu: int = 0
    custom: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PythonEntry:
    """A unit that is a Python call: ``module.function(argument)``.

    ``argument`` is JSON (it travels to another process or host); the function's
    return value, an int, is the unit's exit code (None is 0, an exception is 1
    with its traceback in the log). ``preload`` names modules a warm interpreter
    may import ahead of time, so a unit pays for none of them.
    """

    module: str
    function: str
    argument: Mapping[str, Any] = field(default_factory=dict)
    preload: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuntimeEnv:
    """What a unit needs around it, made ready by the backend where the unit runs.

    ``packages``: pip requirements installed into a virtualenv the backend builds
    (and caches by the requirement set) before the unit starts; ``index_urls``
    where pip looks for them. ``working_dir_uri``: an artifact-store URI whose
    files become the unit's working directory. A unit with packages runs from
    that venv's interpreter (never the warm one).
    """

    packages: tuple[str, ...] = ()
    index_urls: tuple[str, ...] = ()
    working_dir_uri: str | None = None


@dataclass(frozen=True)
class WorkUnit:
    """One process to run.

    ``unit_id`` is chosen by the caller and must be unique and stable across
    retries of the same attempt (the Job controller uses ``<uid>-<attempt>``);
    it names the unit's scratch directory and its log in the artifact store.
    ``log_key`` is the artifact-store key where ``finalize`` persists the log.
    Exactly one of ``command`` and ``python`` is set. ``serves``: the unit is a
    server; the backend chooses its address (see ``Executor.endpoint``).
    ``startup_timeout_seconds`` (a ``serves`` unit only): if nothing accepts a TCP
    connection at the endpoint within that many seconds of the start, the backend
    stops the unit, which ends Failed with reason ``EndpointUnreachable`` and a
    message naming the address (Kubernetes' startup probe); None: no limit, the
    unit is never failed for not listening.
    """

    unit_id: str
    command: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    timeout_seconds: float | None = None
    log_key: str | None = None
    python: PythonEntry | None = None
    runtime_env: RuntimeEnv | None = None
    serves: bool = False
    startup_timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        timeout = self.startup_timeout_seconds
        if timeout is not None and not timeout > 0:
            raise ValueError(f"startup_timeout_seconds must be more than 0, not {timeout!r}")
        if timeout is not None and not self.serves:
            raise ValueError("startup_timeout_seconds is for a unit that serves (serves=True)")


class UnitState(enum.StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    LOST = "Lost"


@dataclass(frozen=True)
class UnitStatus:
    """What ``poll`` observed. ``reason`` is a CamelCase word for conditions
    (``Completed``, ``Error``, ``DeadlineExceeded``, ``Cancelled``, ``OOMKilled``,
    ``EndpointUnreachable``, ``ProcessLost``, ``StartError``), ``message`` a sentence
    for people."""

    state: UnitState
    exit_code: int | None = None
    reason: str = ""
    message: str = ""

    @property
    def done(self) -> bool:
        return self.state is not UnitState.RUNNING


Handle = dict[str, Any]
"""A JSON-serializable description of a submitted unit, owned by the backend."""


class Executor(abc.ABC):
    """A place to run work units. See the module docstring for the contract."""

    name: str = "abstract"

    @abc.abstractmethod
    def submit(self, unit: WorkUnit) -> Handle:
        """Start ``unit`` and return its handle once the process exists.

        Raises ``ExecutorError`` when the unit cannot start (its message is the
        OS error, e.g. a command that does not exist); nothing is left running.
        """

    def submit_gang(self, units: Sequence[WorkUnit]) -> list[Handle]:
        """Start every unit or none: if one fails to start, cancel the started ones."""
        handles: list[Handle] = []
        try:
            for unit in units:
                handles.append(self.submit(unit))
        except BaseException:
            for handle in handles:
                self.cancel(handle, grace_seconds=0)
            raise
        return handles

    @abc.abstractmethod
    def lookup(self, unit_id: str) -> Handle | None:
        """The handle of a unit submitted earlier (even by another process), or None."""

    @abc.abstractmethod
    def poll(self, handle: Handle) -> UnitStatus:
        """The unit's state now. Never raises for a dead or unknown unit: it is LOST."""

    @abc.abstractmethod
    def logs(self, handle: Handle, *, follow: bool = False) -> Iterator[bytes]:
        """Combined stdout/stderr; with ``follow`` keep yielding until the unit ends."""

    @abc.abstractmethod
    def cancel(self, handle: Handle, *, grace_seconds: float = 5.0) -> None:
        """Stop the unit and every process it started: SIGTERM, then SIGKILL after
        ``grace_seconds``. Idempotent; returns once the processes are gone."""

    @abc.abstractmethod
    def finalize(self, handle: Handle) -> None:
        """Persist the log to the artifact store (at the unit's ``log_key``) and release
        the unit's resource slots. ``poll`` and ``logs`` keep working. Idempotent."""

    @abc.abstractmethod
    def forget(self, handle: Handle) -> None:
        """Remove the unit's local scratch files (cancelling it first if it runs)."""

    @abc.abstractmethod
    def fits(self, resources: ResourceRequest) -> bool:
        """Whether a unit asking for ``resources`` could start right now."""

    @abc.abstractmethod
    def capacity(self) -> ResourceRequest:
        """Total resources of this executor (used to report unschedulable requests)."""

    def unschedulable(self, resources: ResourceRequest) -> str | None:
        """Why a unit asking for ``resources`` could never start here, naming what the
        executor has, or None when it could once slots are free. A backend of several
        nodes overrides this: a unit must fit on one node."""
        total = self.capacity()
        over = [f"{n} {getattr(resources, n):g} > {getattr(total, n):g}"
                for n in ("cpu", "memory", "gpu") if getattr(resources, n) > getattr(total, n)]
        over += [f"{name} {amount:g} > {total.custom.get(name, 0):g}"
                 for name, amount in sorted(resources.custom.items())
                 if amount > total.custom.get(name, 0)]
        return "requests more than the executor has: " + ", ".join(over) if over else None

    def node(self, handle: Handle) -> str | None:
        """The node a unit runs (or ran) on, for status; None for a backend of one
        machine. The base class reads the handle's ``node`` field."""
        value = handle.get("node")
        return str(value) if value else None

    @abc.abstractmethod
    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(unit_id)`` soon after any unit ends (every subscriber is
        called; one that raises is logged and does not stop the others). Returns
        the call that unsubscribes."""

    def endpoint(self, handle: Handle) -> str | None:
        """``host:port`` where a ``serves`` unit listens, or None (not a server, or
        its address is not known yet)."""
        value = handle.get("endpoint")
        return str(value) if value else None

    @staticmethod
    def is_handle(stored: Mapping[str, Any] | None) -> bool:
        """Whether ``stored`` is a handle ``submit`` returned, not a claim that holds
        only the ``unitId`` (written before ``submit``; ``lookup`` completes it)."""
        return bool(stored) and "backend" in (stored or {})

    def close(self) -> None:  # noqa: B027
        """Stop background threads. Running units keep running (they are adoptable)."""
