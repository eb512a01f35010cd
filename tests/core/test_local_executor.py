"""LocalExecutor against real subprocesses: no mocks, conditions waited on with timeouts.

What every backend must do is in test_executor_conformance.py (run over this backend
too); these cases hold what is the local backend's own: its handle fields and scratch
files, slots and GPU ids, run-as users, log caps, a unit started by another process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from conftest import wait_for, wait_unit_done
from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import ExecutorError
from ketch.core.executors import ResourceRequest, UnitState, UnitStatus, WorkUnit
from ketch.core.executors.local import LocalExecutor

PY = sys.executable
MB = 1024 * 1024


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def py(code: str, unit_id: str = "u1", **kwargs: object) -> WorkUnit:
    return WorkUnit(unit_id=unit_id, command=[PY, "-c", code], **kwargs)  # type: ignore[arg-type]


def wait_file(path: Path) -> str:
    """Python source that blocks until ``path`` exists (a gate the test opens)."""
    return (f"import os, time\nwhile not os.path.exists({str(path)!r}): time.sleep(0.01)\n")


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def make_executor(tmp_path: Path, store: ArtifactStore) -> Iterator[Callable[..., LocalExecutor]]:
    made: list[LocalExecutor] = []

    def make(**kwargs: object) -> LocalExecutor:
        kwargs.setdefault("kill_grace_seconds", 2.0)
        ex = LocalExecutor(tmp_path / "runs", store, **kwargs)  # type: ignore[arg-type]
        made.append(ex)
        return ex

    yield make
    # Leave no process behind, whatever the test did.
    runs = tmp_path / "runs"
    for ex in made:
        for directory in runs.iterdir() if runs.exists() else []:
            handle = ex.lookup(directory.name)
            if handle is not None:
                ex.cancel(handle, grace_seconds=0)
        ex.close()


@pytest.fixture
def ex(make_executor: Callable[..., LocalExecutor]) -> LocalExecutor:
    return make_executor()


def test_success_captures_stdout_and_stderr(ex: LocalExecutor) -> None:
    ended = threading.Event()
    ex.subscribe(lambda unit_id: ended.set() if unit_id == "u1" else None)
    handle = ex.submit(py("import sys; print('to-out'); print('to-err', file=sys.stderr)"))
    assert handle["backend"] == "local" and handle["unitId"] == "u1"
    assert ex.lookup("u1") == handle
    status = wait_unit_done(ex, handle)
    assert status == UnitStatus(UnitState.SUCCEEDED, exit_code=0, reason="Completed")
    assert ended.wait(5)
    text = b"".join(ex.logs(handle))
    assert b"to-out" in text and b"to-err" in text


def test_failing_exit_code(ex: LocalExecutor) -> None:
    status = wait_unit_done(ex, ex.submit(py("raise SystemExit(3)")))
    assert (status.state, status.exit_code, status.reason) == (UnitState.FAILED, 3, "Error")
    assert status.message == "exited with code 3"


def test_death_by_signal_is_named(ex: LocalExecutor) -> None:
    status = wait_unit_done(ex, ex.submit(py("import os; os.kill(os.getpid(), 9)")))
    assert (status.state, status.exit_code) == (UnitState.FAILED, 137)
    assert status.message == "killed by SIGKILL"


def test_command_not_found(ex: LocalExecutor, tmp_path: Path) -> None:
    with pytest.raises(ExecutorError) as err:
        ex.submit(WorkUnit(unit_id="u1", command=["no-such-cmd", "x"]))
    assert str(err.value) == "[Errno 2] No such file or directory: 'no-such-cmd'"
    with pytest.raises(ExecutorError, match=r"\[Errno 2\] No such file or directory"):
        ex.submit(WorkUnit(unit_id="u1", command=[str(tmp_path / "missing.sh")]))
    not_exec = tmp_path / "plain.txt"
    not_exec.write_text("hi")
    with pytest.raises(ExecutorError, match=r"\[Errno 13\] Permission denied"):
        ex.submit(WorkUnit(unit_id="u1", command=[str(not_exec)]))
    # Nothing started, nothing reserved.
    assert ex.fits(ex.capacity())
    assert ex.lookup("u1") is None


def test_command_resolved_with_the_units_path(ex: LocalExecutor, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "my-tool"
    tool.write_text("#!/bin/sh\necho tool-ran\n")
    tool.chmod(0o755)
    handle = ex.submit(WorkUnit(unit_id="u1", command=["my-tool"],
                                env={"PATH": f"{bindir}:{os.environ['PATH']}"}))
    assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
    assert b"tool-ran" in b"".join(ex.logs(handle))


def test_nonexistent_working_dir(ex: LocalExecutor, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ExecutorError, match="nowhere"):
        ex.submit(py("pass", working_dir=missing))


def test_env_and_working_dir(ex: LocalExecutor, tmp_path: Path) -> None:
    code = ("import os; print(os.environ['FOO'], os.environ['PYTHONUNBUFFERED'], os.getcwd())")
    handle = ex.submit(py(code, env={"FOO": "bar"}, working_dir=str(tmp_path)))
    assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
    assert b"".join(ex.logs(handle)).decode().split() == ["bar", "1", str(tmp_path)]


def test_cancel_kills_tree_including_setsid_grandchild(ex: LocalExecutor, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "g = subprocess.Popen([sys.executable, '-c', "
        "'import os, time; os.setsid(); time.sleep(60)'])\n"
        f"open({str(pidfile)!r} + '.tmp', 'w').write(str(g.pid))\n"
        f"import os; os.replace({str(pidfile)!r} + '.tmp', {str(pidfile)!r})\n"
        "time.sleep(60)\n"
    )
    handle = ex.submit(py(code))
    wait_for(pidfile.exists, message="grandchild pid")
    grandchild = int(pidfile.read_text())
    wait_for(lambda: os.getsid(grandchild) == grandchild, message="grandchild setsid")
    assert ex.poll(handle).state is UnitState.RUNNING
    ex.cancel(handle, grace_seconds=2)
    assert gone(handle["pid"]) and gone(grandchild)
    status = ex.poll(handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "Cancelled")
    ex.cancel(handle)  # idempotent on a dead unit
    assert ex.poll(handle).reason == "Cancelled"



def test_deadline_exceeded(ex: LocalExecutor) -> None:
    handle = ex.submit(py("import time; time.sleep(60)", timeout_seconds=0.5))
    status = wait_unit_done(ex, handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "DeadlineExceeded")
    assert status.message == "exceeded activeDeadlineSeconds (0.5 s)"
    assert gone(handle["pid"])


def test_memory_limit_oom_killed(make_executor: Callable[..., LocalExecutor]) -> None:
    ex = make_executor()
    code = "import time; data = b'x' * (200 * 1024 * 1024); time.sleep(60)"
    handle = ex.submit(py(code, resources=ResourceRequest(cpu=1, memory=50 * MB)))
    status = wait_unit_done(ex, handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "OOMKilled")
    assert status.message.startswith("used ") and status.message.endswith(f"limit {50 * MB}")
    assert gone(handle["pid"])



def test_finalize_moves_log_to_artifact_store(ex: LocalExecutor, store: ArtifactStore) -> None:
    handle = ex.submit(py("print('hello log')", log_key="logs/u1.log"))
    assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
    ex.finalize(handle)
    assert store.read_bytes("logs/u1.log") == b"hello log\n"
    assert not (Path(handle["dir"]) / "output.log").exists()
    assert b"".join(ex.logs(handle)) == b"hello log\n"
    assert b"".join(ex.logs(handle, follow=True)) == b"hello log\n"
    assert ex.poll(handle).state is UnitState.SUCCEEDED
    ex.finalize(handle)  # idempotent
    assert ex.poll(handle).exit_code == 0
    ex.forget(handle)
    assert ex.lookup("u1") is None
    assert not Path(handle["dir"]).exists()
    # Without a local log or a stored one there is nothing to yield.
    assert list(ex.logs({**handle, "logKey": None})) == []


def test_restarted_control_plane_adopts_running_unit(
        make_executor: Callable[..., LocalExecutor], tmp_path: Path, store: ArtifactStore) -> None:
    """A control plane in another process starts the unit and dies; a new one takes over."""
    gate = tmp_path / "go"
    unit_code = wait_file(gate) + "print('adopted'); raise SystemExit(0)\n"
    starter = (
        "import json, sys\nfrom pathlib import Path\n"
        "from ketch.core.artifacts import ArtifactStore\n"
        "from ketch.core.executors import WorkUnit, ResourceRequest\n"
        "from ketch.core.executors.local import LocalExecutor\n"
        f"ex = LocalExecutor(Path({str(tmp_path / 'runs')!r}), ArtifactStore({store.root_uri!r}))\n"
        f"h = ex.submit(WorkUnit(unit_id='u1', command=[sys.executable, '-c', {unit_code!r}],"
        " resources=ResourceRequest(cpu=1), timeout_seconds=60))\n"
        "print(json.dumps(h))\n"
    )
    out = subprocess.run([PY, "-c", starter], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    started = json.loads(out)

    ex = make_executor(cpus=1)
    ended = threading.Event()
    ex.subscribe(lambda unit_id: ended.set() if unit_id == "u1" else None)
    handle = ex.lookup("u1")
    assert handle is not None and handle == started
    assert ex.fits(ResourceRequest(cpu=1))
    assert ex.poll(handle).state is UnitState.RUNNING
    # Adopting took the unit's slot.
    assert not ex.fits(ResourceRequest(cpu=1))
    gate.touch()
    assert ended.wait(5), "the monitor should notice the adopted unit's exit"
    status = ex.poll(handle)
    assert status == UnitStatus(UnitState.SUCCEEDED, exit_code=0, reason="Completed")
    assert b"adopted" in b"".join(ex.logs(handle))
    ex.finalize(handle)
    assert ex.fits(ResourceRequest(cpu=1))


def test_adopted_unit_failure_code_survives(make_executor: Callable[..., LocalExecutor],
                                            tmp_path: Path) -> None:
    first = make_executor()
    gate = tmp_path / "go"
    handle = first.submit(py(wait_file(gate) + "raise SystemExit(7)\n"))
    first.close()
    second = make_executor()
    assert second.poll(second.lookup("u1") or {}).state is UnitState.RUNNING
    gate.touch()
    status = wait_unit_done(second, handle)
    assert (status.state, status.exit_code, status.reason) == (UnitState.FAILED, 7, "Error")


def test_lost_when_group_killed(ex: LocalExecutor) -> None:
    handle = ex.submit(py("import time; time.sleep(60)"))
    assert ex.poll(handle).state is UnitState.RUNNING
    os.killpg(handle["pid"], signal.SIGKILL)  # the sh wrapper dies too: no exit file
    status = wait_unit_done(ex, handle)
    assert (status.state, status.reason) == (UnitState.LOST, "ProcessLost")
    assert str(handle["pid"]) in status.message


def test_poll_never_raises(ex: LocalExecutor) -> None:
    handle = ex.submit(py("import time; time.sleep(60)"))
    foreign = {**handle, "host": "some-other-host"}
    status = ex.poll(foreign)
    assert status.state is UnitState.LOST and "some-other-host" in status.message
    assert ex.poll({"garbage": True}).state is UnitState.LOST
    assert ex.lookup("../etc") is None and ex.lookup("nope") is None


def test_slot_accounting(make_executor: Callable[..., LocalExecutor]) -> None:
    ex = make_executor(cpus=2, memory=4 * 1024 * MB, gpus=[])
    assert ex.capacity() == ResourceRequest(cpu=2, memory=4 * 1024 * MB, gpu=0)
    sleep = "import time; time.sleep(60)"
    one = ResourceRequest(cpu=1)
    first = ex.submit(py(sleep, "a", resources=one))
    ex.submit(py(sleep, "b", resources=one))
    assert not ex.fits(one)
    with pytest.raises(ExecutorError, match="insufficient cpu"):
        ex.submit(py(sleep, "c", resources=one))
    ex.cancel(first, grace_seconds=0)
    assert not ex.fits(one), "slots are held until finalize"
    ex.finalize(first)
    assert ex.fits(one)
    ex.submit(py(sleep, "c", resources=one))
    # Larger than the whole machine: never fits.
    assert not ex.fits(ResourceRequest(cpu=3))
    assert not ex.fits(ResourceRequest(cpu=0, memory=5 * 1024 * MB))
    assert not ex.fits(ResourceRequest(cpu=0, gpu=1))
    assert ex.fits(ResourceRequest(cpu=0, memory=1024 * MB))


def test_gpu_assignment(make_executor: Callable[..., LocalExecutor], tmp_path: Path) -> None:
    ex = make_executor(gpus=["0", "1"], cpus=8)
    gate = tmp_path / "go"
    show = "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))\n"
    first = ex.submit(py(show + wait_file(gate), "a", resources=ResourceRequest(gpu=1)))
    second = ex.submit(py(show, "b", resources=ResourceRequest(gpu=1)))
    none = ex.submit(py(show, "c", resources=ResourceRequest(gpu=0)))
    assert not ex.fits(ResourceRequest(gpu=1))
    with pytest.raises(ExecutorError, match="insufficient gpu"):
        ex.submit(py(show, "d", resources=ResourceRequest(gpu=1)))
    gate.touch()
    for handle in (first, second, none):
        assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
    assert first["resources"]["gpuIds"] == ["0"] and second["resources"]["gpuIds"] == ["1"]
    assert b"".join(ex.logs(first)).strip() == b"'0'"
    assert b"".join(ex.logs(second)).strip() == b"'1'"
    assert b"".join(ex.logs(none)).strip() == b"''"
    ex.finalize(first)
    assert ex.fits(ResourceRequest(gpu=1))



def test_resubmit_same_unit_id_after_end(ex: LocalExecutor) -> None:
    handle = ex.submit(py("raise SystemExit(1)"))
    assert wait_unit_done(ex, handle).state is UnitState.FAILED
    ex.finalize(handle)
    again = ex.submit(py("pass"))
    assert wait_unit_done(ex, again).state is UnitState.SUCCEEDED


def test_forget_running_unit(ex: LocalExecutor) -> None:
    handle = ex.submit(py("import time; time.sleep(60)"))
    ex.forget(handle)
    assert gone(handle["pid"])
    assert not Path(handle["dir"]).exists()
    assert ex.fits(ex.capacity())


@pytest.mark.parametrize("unit", [
    WorkUnit(unit_id="u1", command=["echo", "a\x00b"]),
    WorkUnit(unit_id="u1", command=["true"], env={"A": "x\x00"}),
    WorkUnit(unit_id="u1", command=["true"], env={"A=B": "x"}),
], ids=["nul-in-argv", "nul-in-env", "equals-in-env-name"])
def test_what_exec_refuses_is_a_start_error_and_leaves_nothing(
        ex: LocalExecutor, unit: WorkUnit) -> None:
    """exec refuses these before any syscall (ValueError): a start error like a missing
    command, with no scratch directory left behind that no lookup would ever find."""
    with pytest.raises(ExecutorError):
        ex.submit(unit)
    assert ex.fits(ex.capacity())
    assert ex.lookup("u1") is None
    assert not (ex.runs_dir / "u1").exists()


def test_a_log_is_capped_keeping_its_tail(make_executor: Callable[..., LocalExecutor],
                                          store: ArtifactStore, tmp_path: Path) -> None:
    """300 MB of output used to be kept whole; the cap keeps the latest part, while
    the unit runs (the live file) and in the artifact store."""
    cap = 1 << 20
    ex = make_executor(log_max_bytes=cap)
    gate = tmp_path / "gate"
    code = ("import sys\n"
            "for i in range(200_000): sys.stdout.write(f'line {i:07d} ' + 'x' * 40 + '\\n')\n"
            "sys.stdout.flush()\n" + wait_file(gate) +
            "for i in range(100_000): sys.stdout.write(f'late {i:07d} ' + 'y' * 40 + '\\n')\n"
            "print('LAST')\n")
    handle = ex.submit(py(code, log_key="logs/u1.log"))
    live = Path(handle["dir"]) / "output.log"
    # ~10 MB written, then the unit waits: the monitor trims the live file.
    wait_for(lambda: live.exists() and 0 < live.stat().st_size <= cap
             and b"line 0199999" in live.read_bytes(), message="the live log trimmed")
    gate.touch()
    assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
    ex.finalize(handle)
    stored = b"".join(store.iter_bytes("logs/u1.log"))
    assert len(stored) <= cap
    first, _, rest = stored.partition(b"\n")
    assert first.startswith(b"[ketch: earlier output dropped") and b"1048576" in first
    assert rest.startswith(b"late ") and rest.endswith(b"late 0099999 " + b"y" * 40 + b"\nLAST\n")
    assert b"line 0000000" not in stored


def test_log_cap_setting_is_checked(tmp_path: Path, store: ArtifactStore,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETCH_LOG_MAX_BYTES", "lots")
    with pytest.raises(ExecutorError, match="KETCH_LOG_MAX_BYTES must be an integer"):
        LocalExecutor(tmp_path / "runs", store)
    monkeypatch.setenv("KETCH_LOG_MAX_BYTES", "2097152")
    assert LocalExecutor(tmp_path / "runs", store).log_max_bytes == 2 << 20
    monkeypatch.delenv("KETCH_LOG_MAX_BYTES")
    assert LocalExecutor(tmp_path / "runs", store).log_max_bytes == 64 << 20


def test_units_get_neither_the_servers_secrets_nor_the_way_to_them(
        ex: LocalExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETCH_TOKEN", "do-not-leak")
    monkeypatch.setenv("KETCH_DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("KETCH_HOME", "/where/server.json/lives")
    handle = ex.submit(py("import os; print(sorted(k for k in os.environ if "
                          "k.startswith('KETCH_')))"))
    assert wait_unit_done(ex, handle).state is UnitState.SUCCEEDED
    assert b"".join(ex.logs(handle)) == b"[]\n"


@pytest.fixture
def reachable(tmp_path: Path) -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path sits under a 0700 one)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ketch-run-as-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="running units as another user needs root")
def test_run_as_user_runs_units_unprivileged_out_of_reach_of_root_files(
        reachable: Path, store: ArtifactStore) -> None:
    """KETCH_RUN_AS_USER: the unit is that user, cannot read the server's 0600 files,
    and cannot touch handle.json (whose pid the root control plane signals)."""
    secret = reachable / "server.json"
    secret.write_text("token")
    secret.chmod(0o600)
    ex = LocalExecutor(reachable / "runs", store, run_as_user="nobody")
    try:
        # /bin/sh and cat, not Python: this machine's Python may live under 0700 /root.
        script = (f'id -u; echo "$HOME $USER"; cat {secret} || echo denied;'
                  ' d=$(dirname "$1"); echo forged > "$d/../handle.json" || echo kept')
        handle = ex.submit(WorkUnit(unit_id="u1", log_key="logs/u1.log", command=[
            "/bin/sh", "-c", script, "sh", str(reachable / "runs/u1/unit/exit")]))
        status = wait_unit_done(ex, handle)
        assert status.state is UnitState.SUCCEEDED, status
        lines = b"".join(ex.logs(handle)).decode().splitlines()
        assert lines[0] == "65534" and lines[1].endswith(" nobody"), lines
        assert "denied" in lines and "kept" in lines and "token" not in lines, lines
        assert ex.lookup("u1") == handle
        ex.finalize(handle)
        ex.forget(handle)
        assert not Path(handle["dir"]).exists()
    finally:
        ex.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="running units as another user needs root")
def test_run_as_user_refuses_a_home_that_user_cannot_reach(tmp_path: Path,
                                                           store: ArtifactStore) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(ExecutorError, match=rf"cannot enter {tmp_path} \(mode 700\)"):
        LocalExecutor(tmp_path / "runs", store, run_as_user="nobody")


def test_run_as_user_names_an_unknown_user(tmp_path: Path, store: ArtifactStore) -> None:
    with pytest.raises(ExecutorError, match="KETCH_RUN_AS_USER='no-such-user-x': no such user"):
        LocalExecutor(tmp_path / "runs", store, run_as_user="no-such-user-x")


def test_running_units_as_root_is_said_at_start(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """As root without KETCH_RUN_AS_USER, units can read the server's secrets: the
    executor says so once at start (docs/security.md) instead of silently."""
    with caplog.at_level("WARNING", logger="ketch.core.executors.local"):
        ex = LocalExecutor(tmp_path / "runs", ArtifactStore(str(tmp_path / "a")),
                           run_as_user="")
    ex.close()
    warned = [r.getMessage() for r in caplog.records if "KETCH_RUN_AS_USER" in r.getMessage()]
    assert warned == (["units run as root and can read this server's token and database "
                       "(KETCH_HOME, /proc); set KETCH_RUN_AS_USER to run them as an "
                       "unprivileged user"] if os.geteuid() == 0 else [])


def test_a_unit_started_from_another_home_is_found_by_its_id(tmp_path: Path,
                                                             store: ArtifactStore) -> None:
    """Two control planes on one database, each with its own KETCH_HOME: one died after
    starting a unit and before writing its handle anywhere, so the other has only the
    unit id. Its lookup finds the unit through the shared index (and never starts the
    attempt a second time); forgetting it there drops the index entry."""
    index = tmp_path / "index"
    first = LocalExecutor(tmp_path / "home1" / "runs", store, unit_index=index)
    second = LocalExecutor(tmp_path / "home2" / "runs", store, unit_index=index)
    gate = tmp_path / "gate"
    try:
        started = first.submit(py(wait_file(gate), unit_id="adopted"))
        found = second.lookup("adopted")
        assert found == started
        assert second.poll(found).state is UnitState.RUNNING
        assert second.lookup("never-started") is None
        gate.touch()
        assert wait_unit_done(second, found).state is UnitState.SUCCEEDED
        second.finalize(found)
        second.forget(found)
        assert second.lookup("adopted") is None and not (index / "adopted").is_symlink()
    finally:
        first.close()
        second.close()


def test_a_unit_index_others_can_write_is_refused(tmp_path: Path, store: ArtifactStore) -> None:
    index = tmp_path / "shared"
    index.mkdir(mode=0o777)
    index.chmod(0o777)
    with pytest.raises(PermissionError, match="mode 0700"):
        LocalExecutor(tmp_path / "runs", store, unit_index=index)


def test_a_unit_started_but_never_recorded_is_adopted_not_run_again(
        make_executor: Callable[..., LocalExecutor], tmp_path: Path) -> None:
    """A control plane that died after starting a unit and before writing its
    handle.json: the next one, submitting the same unit id, adopts that process
    instead of starting the unit a second time."""
    gate, ledger = tmp_path / "gate", tmp_path / "ledger"
    code = (f"open({str(ledger)!r}, 'a').write('ran\\n')\n" + wait_file(gate) + "print('done')")
    first = make_executor()
    started = first.submit(py(code, unit_id="once"))
    wait_for(ledger.exists, message="the first run started")
    (Path(started["dir"]) / "handle.json").unlink()  # as if the plane died right there
    first.close()
    second = make_executor()
    assert second.lookup("once") is None
    adopted = second.submit(py(code, unit_id="once"))
    assert adopted["pid"] == started["pid"]
    gate.write_text("")
    ended = wait_unit_done(second, adopted)
    assert ended.state is UnitState.SUCCEEDED
    assert ledger.read_text() == "ran\n", "the unit ran once"
