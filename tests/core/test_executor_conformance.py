"""The executor conformance suite: one set of cases over every backend.

As Optuna runs one storage suite over every storage, these cases run over every
executor backend through the ``backend`` fixture, using only the contract
(``Executor`` methods, ``is_handle``, ``endpoint``, the ``KETCH_UNIT_HOST`` /
``KETCH_UNIT_PORT`` a server unit is given). Adding a backend is one entry in
``BACKENDS`` and one factory in ``_make_backend``; nothing below it changes.

What the cases observe from outside the executor (a pid the unit writes into a
file, ``psutil`` to see whether that process still exists) assumes the units run
on this machine, as every backend's test cluster does here (Ray's test cluster
runs its nodes on this machine too).

Only ``_make_backend`` knows a backend's internals: what a handle whose process
identity now belongs to someone else looks like (``impostor``) cannot be said
through the contract.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from conftest import wait_unit_done as wait_done
from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import ExecutorError
from ketch.core.executors import (
    Executor,
    Handle,
    PythonEntry,
    ResourceRequest,
    RuntimeEnv,
    UnitState,
    UnitStatus,
    WorkUnit,
)

PY = sys.executable
MB = 1 << 20
# The machine running the suite is shared and loaded: bounds are generous, and every
# wait is on a condition, never a fixed sleep.
TIMEOUT = 30.0

# "local-cold" is the local backend without its warm pool: Python units then start in
# a fresh interpreter, and the suite holds both paths to the same contract.
# "ray" runs the same cases on a real Ray cluster of three nodes on this machine
# (tests/_ray.py), its executor scoped to one worker node by a node label.
BACKENDS = ["local", "local-cold", pytest.param("ray", marks=pytest.mark.ray)]


@dataclass
class Backend:
    """One backend under test.

    ``make`` builds an executor instance on the backend's state (a second call is
    a control plane restarted on the same state); ``artifacts`` is the store that
    ``finalize`` writes logs to; ``impostor`` copies a handle so that it names a
    process identity the unit no longer has (a pid reused by another process).
    """

    name: str
    make: Callable[[], Executor]
    artifacts: ArtifactStore
    impostor: Callable[[Handle], Handle]
    cleanup: Callable[[], None] = lambda: None


def _make_backend(name: str, tmp_path: Path, made: list[Executor],
                  request: pytest.FixtureRequest) -> Backend:
    """Backend-specific: the only place that knows how a backend is built."""
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    if name in ("local", "local-cold"):
        from ketch.core.executors.local import LocalExecutor

        def make() -> Executor:
            ex = LocalExecutor(tmp_path / "runs", artifacts, cpus=4, memory=8 << 30, gpus=[],
                               kill_grace_seconds=2.0, warm_pool=name == "local")
            made.append(ex)
            return ex

        def impostor(handle: Handle) -> Handle:
            # The local handle names its process by pid and create time; a process with
            # that pid but another create time is someone else (the pid was reused).
            return {**handle, "createTime": handle["createTime"] - 3600}

        return Backend(name, make, artifacts, impostor)
    if name == "ray":
        from _ray import kill_agents
        from ketch.core.executors.ray import RayExecutor

        cluster = request.getfixturevalue("ray_cluster")

        def make_ray() -> Executor:
            ex = RayExecutor(artifacts, address=cluster.address,
                             node_labels={"ketch-test-pool": "a"}, kill_grace_seconds=2.0)
            made.append(ex)
            return ex

        def impostor_ray(handle: Handle) -> Handle:
            # The agent's own handle names the process by pid and create time.
            local = handle["local"]
            return {**handle, "local": {**local, "createTime": local["createTime"] - 3600}}

        return Backend(name, make_ray, artifacts, impostor_ray,
                       lambda: kill_agents(artifacts.root_uri))
    raise AssertionError(f"no factory for backend {name!r}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made: list[Executor] = []
    chosen = _make_backend(request.param, tmp_path, made, request)
    yield chosen
    # Leave nothing running, whatever the test did: every unit id the tests use is
    # recorded in _SUBMITTED by the helpers below.
    for ex in made:
        for unit_id in _SUBMITTED:
            handle = ex.lookup(unit_id)
            if handle is not None:
                ex.cancel(handle, grace_seconds=0)
                ex.finalize(handle)  # slots back: a cluster's outlive the instance
        ex.close()
    _SUBMITTED.clear()
    chosen.cleanup()


@pytest.fixture
def ex(backend: Backend) -> Executor:
    return backend.make()


_SUBMITTED: set[str] = set()


def unit(unit_id: str, code: str, **kwargs: object) -> WorkUnit:
    _SUBMITTED.add(unit_id)
    return WorkUnit(unit_id=unit_id, command=[PY, "-c", code], **kwargs)  # type: ignore[arg-type]


def wait_for(cond: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def gate_code(path: Path) -> str:
    """Python source that blocks until ``path`` exists (a gate the test opens)."""
    return f"import os, time\nwhile not os.path.exists({str(path)!r}): time.sleep(0.01)\n"


def pid_code(path: Path, expr: str = "os.getpid()") -> str:
    """Python source that writes ``expr`` (a pid) to ``path`` atomically."""
    return (f"import os\nopen({str(path)!r} + '.tmp', 'w').write(str({expr}))\n"
            f"os.replace({str(path)!r} + '.tmp', {str(path)!r})\n")


def read_pid(path: Path) -> int:
    wait_for(path.exists, f"the unit to write {path.name}")
    return int(path.read_text())


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie has: it only waits to be reaped). A unit
    reported ended may take a moment to finish dying below its top process."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ------------------------------------------------------------------ submit and poll


def test_submit_poll_lookup_and_exit_codes(ex: Executor) -> None:
    handle = ex.submit(unit("ok", "print('hi')"))
    assert ex.is_handle(handle) and handle["unitId"] == "ok"
    assert not ex.is_handle({"unitId": "ok"}) and not ex.is_handle(None)
    assert ex.lookup("ok") == handle
    assert ex.lookup("never-submitted") is None
    assert wait_done(ex, handle) == UnitStatus(UnitState.SUCCEEDED, exit_code=0,
                                               reason="Completed")
    failed = wait_done(ex, ex.submit(unit("bad", "raise SystemExit(3)")))
    assert (failed.state, failed.exit_code, failed.reason) == (UnitState.FAILED, 3, "Error")
    assert failed.message


def test_poll_of_a_handle_it_cannot_place_is_lost_not_an_error(ex: Executor) -> None:
    status = ex.poll({"unitId": "x", "backend": "no-such-backend"})
    assert status.state is UnitState.LOST


def test_a_start_error_raises_and_leaves_nothing(ex: Executor) -> None:
    capacity = ex.capacity()
    _SUBMITTED.add("missing")
    with pytest.raises(ExecutorError, match="no-such-command-x"):
        ex.submit(WorkUnit(unit_id="missing", command=["no-such-command-x", "arg"]))
    assert ex.lookup("missing") is None
    assert ex.fits(capacity), "a unit that never started holds no slots"
    # The same id can be used once the cause is fixed.
    assert wait_done(ex, ex.submit(unit("missing", "pass"))).state is UnitState.SUCCEEDED


def test_slots_are_held_until_finalize(ex: Executor, tmp_path: Path) -> None:
    whole = ex.capacity()
    handle = ex.submit(unit("all", gate_code(tmp_path / "go"), resources=whole))
    assert not ex.fits(ResourceRequest(cpu=whole.cpu))
    (tmp_path / "go").touch()
    assert wait_done(ex, handle).state is UnitState.SUCCEEDED
    ex.finalize(handle)
    assert ex.fits(whole)


# --------------------------------------------------------------------------- gangs


def test_a_gang_starts_all_or_nothing(ex: Executor, tmp_path: Path) -> None:
    pids = [tmp_path / f"member-{i}.pid" for i in range(2)]
    members = [unit(f"gang-{i}", pid_code(pids[i]) + "import time; time.sleep(60)")
               for i in range(2)]
    _SUBMITTED.add("gang-2")
    bad = WorkUnit(unit_id="gang-2", command=["no-such-command-x"])
    with pytest.raises(ExecutorError):
        ex.submit_gang([*members, bad])
    for i, member in enumerate(members):
        handle = ex.lookup(member.unit_id)
        assert handle is not None, "a started member stays inspectable"
        assert ex.poll(handle).done, "no member of a gang that failed to start runs"
        if pids[i].exists():
            member_pid = int(pids[i].read_text())
            wait_for(lambda: gone(member_pid), f"member {i} to be gone")  # noqa: B023
        ex.finalize(handle)
    assert ex.lookup("gang-2") is None
    assert ex.fits(ex.capacity()), "finalized, the cancelled members hold no slots"
    # A whole gang starts and every member runs.
    handles = ex.submit_gang([unit(f"ok-{i}", f"print({i})") for i in range(3)])
    assert [h["unitId"] for h in handles] == ["ok-0", "ok-1", "ok-2"]
    for handle in handles:
        assert wait_done(ex, handle).state is UnitState.SUCCEEDED


# ---------------------------------------------------------------------------- logs


def test_logs_stream_live_and_come_from_the_artifact_store_after_finalize(
        backend: Backend, ex: Executor, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    code = ("import sys\nprint('first')\nprint('to-err', file=sys.stderr)\n"
            + gate_code(gate) + "print('second')\n")
    handle = ex.submit(unit("logs", code, log_key="logs/logs.log"))
    received = b""
    for chunk in ex.logs(handle, follow=True):
        received += chunk
        if b"first" in received and b"to-err" in received and not gate.exists():
            assert ex.poll(handle).state is UnitState.RUNNING, "streamed while running"
            gate.touch()
    assert sorted(received.splitlines()) == [b"first", b"second", b"to-err"]
    assert ex.poll(handle).state is UnitState.SUCCEEDED
    ex.finalize(handle)
    assert backend.artifacts.read_bytes("logs/logs.log") == received
    assert b"".join(ex.logs(handle)) == received
    assert b"".join(ex.logs(handle, follow=True)) == received
    ex.finalize(handle)  # idempotent
    assert ex.poll(handle).state is UnitState.SUCCEEDED, "poll answers after finalize"
    ex.forget(handle)
    assert ex.lookup("logs") is None


# ----------------------------------------------------------------- cancel, limits


def test_cancel_kills_the_whole_tree_even_a_child_that_left_with_setsid(
        ex: Executor, tmp_path: Path) -> None:
    child_pid, grandchild_pid = tmp_path / "child.pid", tmp_path / "grandchild.pid"
    grandchild = pid_code(grandchild_pid) + "os.setsid()\nimport time; time.sleep(60)\n"
    child = ("import subprocess, sys, time\n"
             f"subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
             "time.sleep(60)\n")
    code = ("import subprocess, sys, time\n"
            f"c = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
            + pid_code(child_pid, "c.pid") + "time.sleep(60)\n")
    handle = ex.submit(unit("tree", code))
    pids = [read_pid(child_pid), read_pid(grandchild_pid)]
    wait_for(lambda: os.getsid(pids[1]) == pids[1], "the grandchild to leave with setsid")
    assert ex.poll(handle).state is UnitState.RUNNING
    ex.cancel(handle, grace_seconds=1)
    assert all(gone(pid) for pid in pids), "cancel returns once the processes are gone"
    status = ex.poll(handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "Cancelled")
    ex.cancel(handle)  # idempotent
    assert ex.poll(handle).reason == "Cancelled"


def test_cancel_after_the_end_keeps_the_end_state(ex: Executor) -> None:
    handle = ex.submit(unit("done", "pass"))
    assert wait_done(ex, handle).state is UnitState.SUCCEEDED
    ex.cancel(handle)
    assert ex.poll(handle).state is UnitState.SUCCEEDED


def test_a_unit_past_its_timeout_is_deadline_exceeded(ex: Executor, tmp_path: Path) -> None:
    pid = tmp_path / "slow.pid"
    handle = ex.submit(unit("slow", pid_code(pid) + "import time; time.sleep(60)",
                            timeout_seconds=1))
    status = wait_done(ex, handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "DeadlineExceeded")
    assert "1 s" in status.message
    wait_for(lambda: gone(read_pid(pid)), "the unit's process to be gone")


def test_a_unit_over_its_memory_is_oom_killed(ex: Executor, tmp_path: Path) -> None:
    pid = tmp_path / "hog.pid"
    code = pid_code(pid) + "import time\ndata = b'x' * (300 * 1024 * 1024)\ntime.sleep(60)\n"
    handle = ex.submit(unit("hog", code, resources=ResourceRequest(cpu=1, memory=64 * MB)))
    status = wait_done(ex, handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "OOMKilled")
    assert str(64 * MB) in status.message
    wait_for(lambda: gone(read_pid(pid)), "the unit's process to be gone")


# --------------------------------------------------------- restarts and pid reuse


def test_a_restarted_control_plane_adopts_a_running_unit_and_sees_its_exit(
        backend: Backend, tmp_path: Path) -> None:
    first = backend.make()
    gate = tmp_path / "go"
    started = first.submit(unit("adopt", gate_code(gate) + "print('adopted')\nraise "
                                "SystemExit(7)\n", resources=ResourceRequest(cpu=4),
                                log_key="logs/adopt.log"))
    first.close()  # the control plane goes; the unit keeps running

    second = backend.make()
    ended = threading.Event()
    second.subscribe(lambda unit_id: ended.set() if unit_id == "adopt" else None)
    handle = second.lookup("adopt")
    assert handle == started
    assert second.poll(handle).state is UnitState.RUNNING
    assert not second.fits(ResourceRequest(cpu=1)), "adopting took the unit's slots"
    gate.touch()
    assert ended.wait(TIMEOUT), "the new instance's subscribers hear the adopted unit end"
    status = second.poll(handle)
    assert (status.state, status.exit_code, status.reason) == (UnitState.FAILED, 7, "Error")
    assert b"adopted" in b"".join(second.logs(handle))
    second.finalize(handle)
    assert second.fits(ResourceRequest(cpu=4))
    assert backend.artifacts.read_bytes("logs/adopt.log") == b"adopted\n"


def test_a_handle_whose_process_is_now_someone_else_is_lost_and_not_signalled(
        backend: Backend, ex: Executor) -> None:
    handle = ex.submit(unit("reused", "import time; time.sleep(60)"))
    assert ex.poll(handle).state is UnitState.RUNNING
    impostor = backend.impostor(handle)
    status = ex.poll(impostor)
    assert (status.state, status.reason) == (UnitState.LOST, "ProcessLost")
    ex.cancel(impostor, grace_seconds=0)
    assert ex.poll(handle).state is UnitState.RUNNING, "the other process was not killed"
    ex.cancel(handle, grace_seconds=0)
    assert ex.poll(handle).reason == "Cancelled"


# ------------------------------------------------------------------- subscribers


def test_every_exit_subscriber_is_called_and_unsubscribe_stops_one(ex: Executor) -> None:
    heard: dict[str, list[str]] = {"a": [], "b": []}
    lock = threading.Condition()

    def listener(name: str) -> Callable[[str], None]:
        def hear(unit_id: str) -> None:
            with lock:
                heard[name].append(unit_id)
                lock.notify_all()
        return hear

    def broken(unit_id: str) -> None:
        raise RuntimeError("a subscriber that fails must not stop the others")

    unsubscribe_a = ex.subscribe(listener("a"))
    ex.subscribe(broken)
    ex.subscribe(listener("b"))
    ex.submit(unit("one", "pass"))
    with lock:
        assert lock.wait_for(lambda: "one" in heard["a"] and "one" in heard["b"], TIMEOUT)
    unsubscribe_a()
    unsubscribe_a()  # idempotent
    ex.submit(unit("two", "pass"))
    with lock:
        assert lock.wait_for(lambda: "two" in heard["b"], TIMEOUT)
    assert "two" not in heard["a"]


# --------------------------------------------------------------------- endpoints

SERVER = ("import os, socket, sys\n"
          "s = socket.socket()\n"
          "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind((os.environ['KETCH_UNIT_HOST'], int(os.environ['KETCH_UNIT_PORT'])))\n"
          "s.listen()\n"
          "while True:\n"
          "    c, _ = s.accept()\n"
          "    c.sendall(b'hello')\n"
          "    c.close()\n")


def connect(endpoint: str) -> bytes:
    host, _, port = endpoint.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        return conn.recv(16)


def test_a_server_unit_listens_at_the_endpoint_the_backend_chose(ex: Executor) -> None:
    handle = ex.submit(unit("srv", SERVER, serves=True))
    endpoint = ex.endpoint(handle)
    assert endpoint is not None and endpoint.rpartition(":")[2].isdigit()
    got: list[bytes] = []

    def answers() -> bool:
        try:
            got.append(connect(endpoint))
        except OSError:
            return False
        return True

    wait_for(answers, f"the server unit to listen at {endpoint}")
    assert got[-1] == b"hello"
    assert ex.poll(handle).state is UnitState.RUNNING
    assert ex.endpoint(ex.lookup("srv") or {}) == endpoint, "the stored handle says it too"
    plain = ex.submit(unit("plain", "pass"))
    assert ex.endpoint(plain) is None


def test_a_server_that_never_listens_fails_as_endpoint_unreachable(ex: Executor,
                                                                   tmp_path: Path) -> None:
    pid = tmp_path / "mute.pid"
    handle = ex.submit(unit("mute", pid_code(pid) + "import time; time.sleep(60)", serves=True,
                            startup_timeout_seconds=1))
    endpoint = ex.endpoint(handle)
    status = wait_done(ex, handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "EndpointUnreachable")
    assert f"at {endpoint} within 1 s" in status.message
    wait_for(lambda: gone(read_pid(pid)), "the unit's process to be gone")


def test_a_server_that_listens_within_its_startup_time_keeps_running(ex: Executor,
                                                                     tmp_path: Path) -> None:
    started = time.time()
    # A margin of seconds over the interpreter's start, for a loaded machine.
    handle = ex.submit(unit("late", SERVER, serves=True, startup_timeout_seconds=3))
    endpoint = ex.endpoint(handle)
    assert endpoint is not None

    def answers() -> bool:
        try:
            return connect(endpoint) == b"hello"
        except OSError:
            return False

    wait_for(answers, f"the server unit to listen at {endpoint}")
    # Past its startup limit (and a few of the backend's checks later) it still runs.
    wait_for(lambda: time.time() > started + 4.5, "the startup limit to pass")
    assert ex.poll(handle).state is UnitState.RUNNING
    assert answers()


def test_a_startup_limit_is_for_server_units_and_positive() -> None:
    with pytest.raises(ValueError, match="serves"):
        WorkUnit(unit_id="x", command=["true"], startup_timeout_seconds=5)
    with pytest.raises(ValueError, match="more than 0"):
        WorkUnit(unit_id="x", command=["true"], serves=True, startup_timeout_seconds=0)


# -------------------------------------------------------------------- python units

UNITS = """\
import os, sys, time


def returns(arg):
    print("argument", arg["word"])
    return arg.get("code")


def fails(arg):
    raise ValueError("a failure the log shows")


def gate(arg):
    print("waiting", flush=True)
    while not os.path.exists(arg["gate"]):
        time.sleep(0.01)
    print("gate open")


def reads(arg):
    print(open(arg["name"]).read())
"""


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    directory = tmp_path / "modules"
    directory.mkdir()
    (directory / "conformance_units.py").write_text(UNITS)
    return directory


def entry(modules: Path, unit_id: str, function: str, argument: dict[str, object],
          **kwargs: object) -> WorkUnit:
    _SUBMITTED.add(unit_id)
    return WorkUnit(unit_id=unit_id, env={"PYTHONPATH": str(modules)},
                    python=PythonEntry("conformance_units", function, argument),
                    **kwargs)  # type: ignore[arg-type]


def log_text(ex: Executor, handle: Handle) -> str:
    return b"".join(ex.logs(handle)).decode()


def test_a_python_entry_gets_its_argument_and_its_return_is_the_exit_code(
        ex: Executor, modules: Path) -> None:
    three = ex.submit(entry(modules, "py-3", "returns", {"word": "hello", "code": 3}))
    done = wait_done(ex, three)
    assert (done.state, done.exit_code, done.reason) == (UnitState.FAILED, 3, "Error")
    assert log_text(ex, three) == "argument hello\n"
    none = ex.submit(entry(modules, "py-0", "returns", {"word": "again"}))
    assert wait_done(ex, none) == UnitStatus(UnitState.SUCCEEDED, exit_code=0,
                                             reason="Completed")


def test_a_python_entry_that_raises_is_exit_1_with_its_traceback_in_the_log(
        ex: Executor, modules: Path) -> None:
    handle = ex.submit(entry(modules, "py-raise", "fails", {}))
    done = wait_done(ex, handle)
    assert (done.state, done.exit_code) == (UnitState.FAILED, 1)
    text = log_text(ex, handle)
    assert "Traceback" in text and "ValueError: a failure the log shows" in text


def test_a_python_entry_streams_logs_and_is_cancelled_like_a_command(
        ex: Executor, modules: Path, tmp_path: Path) -> None:
    handle = ex.submit(entry(modules, "py-gate", "gate", {"gate": str(tmp_path / "never")},
                             log_key="logs/py-gate.log"))
    received = b""
    for chunk in ex.logs(handle, follow=True):
        received += chunk
        if b"waiting" in received:
            break
    assert ex.poll(handle).state is UnitState.RUNNING
    ex.cancel(handle, grace_seconds=1)
    status = ex.poll(handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "Cancelled"), status
    ex.finalize(handle)
    text = b"".join(ex.logs(handle))
    assert text.startswith(b"waiting\n") and b"gate open" not in text, text


# ------------------------------------------------------------------- runtime_env


def test_working_dir_uri_ships_the_files_into_the_units_working_directory(
        backend: Backend, ex: Executor, modules: Path) -> None:
    backend.artifacts.put_bytes(b"shipped", "code/v1/data.txt")
    backend.artifacts.put_bytes(b"nested", "code/v1/sub/more.txt")
    shipped = RuntimeEnv(working_dir_uri=backend.artifacts.uri("code/v1"))
    command = ex.submit(unit("wd-cmd", "print(open('sub/more.txt').read())",
                             runtime_env=shipped))
    assert wait_done(ex, command).state is UnitState.SUCCEEDED, log_text(ex, command)
    assert log_text(ex, command) == "nested\n"
    python = ex.submit(entry(modules, "wd-py", "reads", {"name": "data.txt"},
                             runtime_env=shipped))
    assert wait_done(ex, python).state is UnitState.SUCCEEDED, log_text(ex, python)
    assert log_text(ex, python) == "shipped\n"
    _SUBMITTED.add("wd-missing")
    with pytest.raises(ExecutorError, match="working_dir_uri"):
        ex.submit(WorkUnit(unit_id="wd-missing", command=["true"], runtime_env=RuntimeEnv(
            working_dir_uri=backend.artifacts.uri("code/none"))))
    assert ex.lookup("wd-missing") is None
