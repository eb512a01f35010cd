"""Python-entry units and runtime_env on the local backend, warm (forked from the
worker) and cold (a fresh ``_entry`` interpreter): real processes, no mocks; every wait
is on a condition with a timeout."""

from __future__ import annotations

import fcntl
import json
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from conftest import wait_for
from conftest import wait_unit_done as wait_done
from ketch.core.artifacts import ArtifactStore
from ketch.core.errors import ExecutorError
from ketch.core.executors import (
    Handle,
    PythonEntry,
    ResourceRequest,
    RuntimeEnv,
    UnitState,
    UnitStatus,
    WorkUnit,
)
from ketch.core.executors._venvs import Requirements
from ketch.core.executors.local import LocalExecutor

UNITS = textwrap.dedent('''
    import os, sys, time

    def returns(arg):
        print("pid", os.getpid())
        print("argument", sorted(arg.items()))
        print("to-err", file=sys.stderr)
        return arg.get("code")

    def fails(arg):
        raise ValueError("a failure the log shows")

    def exits(arg):
        sys.exit(arg["code"])

    def env(arg):
        print("env", {k: os.environ.get(k) for k in arg["names"]})
        print("cwd", os.getcwd())

    def gate(arg):
        print("waiting", flush=True)
        while not os.path.exists(arg["gate"]):
            time.sleep(0.01)
        print("gate open")

    def preloaded(arg):
        print("pid", os.getpid())
        print("preloaded before import:", "unit_preload" in sys.modules)
        import unit_preload  # noqa: F401

    def spawns(arg):
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(arg["pidfile"], "w") as f:
            f.write(str(child.pid))
        time.sleep(60)

    def holds(arg):
        print("holding", flush=True)
        block = bytearray(arg.get("mb", 0) << 20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page: resident
        time.sleep(arg["seconds"])

    def reads(arg):
        print(open(arg["name"]).read())
''')
# Preloaded by the worker: 150 MB resident that every child shares.
BIG = textwrap.dedent('''
    BLOCK = bytearray(150 << 20)
    BLOCK[::4096] = b"x" * len(BLOCK[::4096])
''')
# Importing it appends a line to a file: the test counts how often it was imported.
PRELOAD = textwrap.dedent('''
    import os
    with open(os.environ.get("PRELOAD_COUNT", "/dev/null"), "a") as f:
        f.write("imported\\n")
''')




def log_of(ex: LocalExecutor, handle: Handle) -> str:
    return b"".join(ex.logs(handle)).decode()


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    root = tmp_path / "mods"
    root.mkdir()
    (root / "unit_mod.py").write_text(UNITS)
    (root / "unit_preload.py").write_text(PRELOAD)
    (root / "unit_big.py").write_text(BIG)
    return root


@pytest.fixture
def make_executor(tmp_path: Path) -> Iterator[Callable[..., LocalExecutor]]:
    made: list[LocalExecutor] = []

    def make(**kwargs: object) -> LocalExecutor:
        kwargs.setdefault("kill_grace_seconds", 2.0)
        kwargs.setdefault("cpus", 8)
        ex = LocalExecutor(tmp_path / "runs", ArtifactStore(str(tmp_path / "artifacts")),
                           **kwargs)  # type: ignore[arg-type]
        made.append(ex)
        return ex

    yield make
    runs = tmp_path / "runs"
    for ex in made:
        for directory in runs.iterdir() if runs.exists() else []:
            handle = ex.lookup(directory.name)
            if handle is not None:
                ex.cancel(handle, grace_seconds=0)
        ex.close()


@pytest.fixture(params=["warm", "cold"])
def ex(request: pytest.FixtureRequest,
       make_executor: Callable[..., LocalExecutor]) -> LocalExecutor:
    return make_executor(warm_pool=request.param == "warm")


def unit(modules: Path, function: str, unit_id: str = "u1", argument: dict[str, object]
         | None = None, **kwargs: object) -> WorkUnit:
    env = {"PYTHONPATH": str(modules), **kwargs.pop("env", {})}  # type: ignore[dict-item]
    return WorkUnit(unit_id=unit_id, env=env,
                    python=PythonEntry("unit_mod", function, argument or {},
                                       **kwargs.pop("entry", {})),  # type: ignore[arg-type]
                    **kwargs)  # type: ignore[arg-type]


def forked(ex: LocalExecutor, handle: Handle) -> bool:
    """Whether the unit ran warm: a forked child is the handle's pid itself, where a
    cold unit's handle pid is its sh exit wrapper, the Python process's parent."""
    wait_done(ex, handle)
    return f"pid {handle['pid']}\n" in log_of(ex, handle)


def test_return_value_is_the_exit_code(ex: LocalExecutor, modules: Path) -> None:
    done = wait_done(ex, ex.submit(unit(modules, "returns", argument={"code": 3, "x": "y"})))
    assert (done.state, done.exit_code, done.message) == (UnitState.FAILED, 3,
                                                          "exited with code 3")
    handle = ex.submit(unit(modules, "returns", "u2", {"x": [1, 2]}))
    assert wait_done(ex, handle) == UnitStatus(UnitState.SUCCEEDED, exit_code=0,
                                               reason="Completed")
    text = log_of(ex, handle)
    assert "argument [('x', [1, 2])]" in text and "to-err" in text
    assert forked(ex, handle) is ex.warm_pool


def test_exception_is_exit_1_with_its_traceback_in_the_log(ex: LocalExecutor,
                                                           modules: Path) -> None:
    handle = ex.submit(unit(modules, "fails"))
    status = wait_done(ex, handle)
    assert (status.state, status.exit_code) == (UnitState.FAILED, 1)
    text = log_of(ex, handle)
    assert "Traceback (most recent call last)" in text
    assert "ValueError: a failure the log shows" in text
    exited = wait_done(ex, ex.submit(unit(modules, "exits", "u2", {"code": 7})))
    assert exited.exit_code == 7


def test_a_missing_module_or_function_fails_the_unit(ex: LocalExecutor,
                                                     modules: Path) -> None:
    gone = ex.submit(WorkUnit(unit_id="u1", python=PythonEntry("no_such_mod_xyz", "f")))
    assert wait_done(ex, gone).exit_code == 1
    assert "ModuleNotFoundError: No module named 'no_such_mod_xyz'" in log_of(ex, gone)
    missing = ex.submit(unit(modules, "nope", "u2"))
    assert wait_done(ex, missing).exit_code == 1
    assert "has no attribute 'nope'" in log_of(ex, missing)


def test_exactly_one_of_command_and_python(ex: LocalExecutor) -> None:
    with pytest.raises(ExecutorError, match="both command and python"):
        ex.submit(WorkUnit(unit_id="u1", command=["true"], python=PythonEntry("m", "f")))
    with pytest.raises(ExecutorError, match="neither command nor python"):
        ex.submit(WorkUnit(unit_id="u1"))
    with pytest.raises(ExecutorError, match=r"WorkUnit\.python\.function must be"):
        ex.submit(WorkUnit(unit_id="u1", python=PythonEntry("m", "")))
    with pytest.raises(ExecutorError, match=r"WorkUnit\.python\.argument is not JSON"):
        ex.submit(WorkUnit(unit_id="u1", python=PythonEntry("m", "f", {"x": object()})))
    assert ex.lookup("u1") is None and ex.fits(ex.capacity())


def test_the_argument_is_never_on_a_command_line(ex: LocalExecutor, modules: Path,
                                                 tmp_path: Path) -> None:
    secret = "s3cr3t-argument-value"
    gate = tmp_path / "gate"
    handle = ex.submit(unit(modules, "gate", argument={"gate": str(gate), "token": secret}))
    wait_for(lambda: "waiting" in log_of(ex, handle), timeout=15.0, message="the unit to start")
    root = psutil.Process(handle["pid"])
    for process in [root, *root.children(recursive=True)]:
        assert secret not in " ".join(process.cmdline())
    gate.touch()
    assert wait_done(ex, handle).state is UnitState.SUCCEEDED


def test_warm_units_fork_from_the_worker_and_share_its_preloads(
        make_executor: Callable[..., LocalExecutor], modules: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "preload-count"
    # The worker starts with the control plane's environment: there it finds the module.
    monkeypatch.setenv("PYTHONPATH", str(modules))
    monkeypatch.setenv("PRELOAD_COUNT", str(counter))
    ex = make_executor(warm_pool=True)
    handles = [ex.submit(unit(modules, "preloaded", f"u{i}",
                              entry={"preload": ("unit_preload",)})) for i in range(3)]
    for handle in handles:
        assert forked(ex, handle)
        assert wait_done(ex, handle).state is UnitState.SUCCEEDED
        assert "preloaded before import: True" in log_of(ex, handle)
    assert counter.read_text().splitlines() == ["imported"]  # once, in the worker
    cold = make_executor(warm_pool=False)
    handle = cold.submit(unit(modules, "preloaded", "c1",
                              entry={"preload": ("unit_preload",)}))
    assert not forked(cold, handle)
    assert "preloaded before import: False" in log_of(cold, handle)
    assert counter.read_text().splitlines() == ["imported", "imported"]


def test_a_warm_units_memory_limit_counts_only_what_it_grew(
        make_executor: Callable[..., LocalExecutor], modules: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker preloads 150 MB; a child forked from it starts with those pages
    resident but shared, so a 100 MB limit holds for a unit that adds nothing and
    kills one that adds 200 MB."""
    monkeypatch.setenv("PYTHONPATH", str(modules))
    ex = make_executor(warm_pool=True)
    limit = ResourceRequest(memory=100 << 20)
    small = ex.submit(unit(modules, "holds", "small", {"seconds": 1.5}, resources=limit,
                           entry={"preload": ("unit_big",)}))
    hog = ex.submit(unit(modules, "holds", "hog", {"seconds": 60, "mb": 200},
                         resources=limit, entry={"preload": ("unit_big",)}))
    stored = ex.lookup("small")
    assert stored is not None and stored["warm"] is True
    status = wait_done(ex, hog)
    assert (status.state, status.reason) == (UnitState.FAILED, "OOMKilled")
    assert wait_done(ex, small) == UnitStatus(UnitState.SUCCEEDED, exit_code=0,
                                              reason="Completed")


def test_units_get_their_env_and_cwd_and_never_the_servers_secrets(
        make_executor: Callable[..., LocalExecutor], modules: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETCH_TOKEN", "the-servers-token")
    monkeypatch.setenv("KETCH_DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("KETCH_HOME", str(tmp_path / "home"))
    names = ["KETCH_TOKEN", "KETCH_DATABASE_URL", "KETCH_HOME", "MINE"]
    for warm in (True, False):
        ex = make_executor(warm_pool=warm)
        handle = ex.submit(unit(modules, "env", f"u-{warm}", {"names": names},
                                env={"MINE": "yes"}, working_dir=str(tmp_path)))
        assert wait_done(ex, handle).state is UnitState.SUCCEEDED
        text = log_of(ex, handle)
        assert ("env {'KETCH_TOKEN': None, 'KETCH_DATABASE_URL': None, 'KETCH_HOME': None, "
                "'MINE': 'yes'}") in text
        assert f"cwd {tmp_path}" in text
        ex.finalize(handle)
        ex.close()


def test_cancel_stops_the_whole_tree(ex: LocalExecutor, modules: Path,
                                     tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    handle = ex.submit(unit(modules, "spawns", argument={"pidfile": str(pidfile)}))
    wait_for(lambda: pidfile.exists() and pidfile.read_text() != "", timeout=15.0,
             message="the grandchild")
    grandchild = psutil.Process(int(pidfile.read_text()))
    ex.cancel(handle, grace_seconds=1)
    assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE
    status = ex.poll(handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "Cancelled")


def test_deadline_kills_a_python_unit(ex: LocalExecutor, modules: Path,
                                      tmp_path: Path) -> None:
    handle = ex.submit(unit(modules, "gate", argument={"gate": str(tmp_path / "never")},
                            timeout_seconds=0.5))
    status = wait_done(ex, handle)
    assert (status.state, status.reason) == (UnitState.FAILED, "DeadlineExceeded")


def test_every_subscriber_hears_a_python_unit_end(ex: LocalExecutor, modules: Path) -> None:
    heard: list[tuple[str, str]] = []
    both = threading.Event()

    def listener(name: str) -> Callable[[str], None]:
        def hear(unit_id: str) -> None:
            heard.append((name, unit_id))
            if {n for n, _ in heard} == {"a", "b"}:
                both.set()
        return hear

    ex.subscribe(listener("a"))
    ex.subscribe(listener("b"))
    ex.submit(unit(modules, "returns"))
    assert both.wait(15)
    assert ("a", "u1") in heard and ("b", "u1") in heard


def test_a_running_python_unit_is_adopted_after_the_control_plane_goes(
        make_executor: Callable[..., LocalExecutor], modules: Path, tmp_path: Path) -> None:
    for warm in (True, False):
        gate = tmp_path / f"gate-{warm}"
        first = make_executor(warm_pool=warm)
        handle = first.submit(unit(modules, "gate", f"u-{warm}", {"gate": str(gate)}))
        wait_for(lambda: "waiting" in log_of(first, handle), timeout=15.0, message="the unit")  # noqa: B023
        first.close()  # the warm worker reads EOF and exits; the child carries on
        second = make_executor(warm_pool=warm)
        adopted = second.lookup(f"u-{warm}")
        assert adopted == handle
        assert second.poll(adopted).state is UnitState.RUNNING
        ended = threading.Event()

        def hear(uid: str, mine: str = f"u-{warm}", event: threading.Event = ended) -> None:
            if uid == mine:
                event.set()

        second.subscribe(hear)
        gate.touch()
        assert wait_done(second, adopted) == UnitStatus(UnitState.SUCCEEDED, exit_code=0,
                                                        reason="Completed")
        assert ended.wait(15)
        assert "gate open" in log_of(second, adopted)


def test_gpu_units_and_run_as_users_start_cold(make_executor: Callable[..., LocalExecutor],
                                               modules: Path) -> None:
    ex = make_executor(warm_pool=True, gpus=["0"])
    handle = ex.submit(unit(modules, "returns", resources=ResourceRequest(gpu=1)))
    assert not forked(ex, handle)
    assert wait_done(ex, handle).state is UnitState.SUCCEEDED


def test_working_dir_uri_files_are_in_the_units_cwd(ex: LocalExecutor, modules: Path,
                                                   tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    store.put_bytes(b"shipped-content", "code/v1/data.txt")
    store.put_bytes(b"nested", "code/v1/sub/more.txt")
    uri = store.uri("code/v1")
    handle = ex.submit(unit(modules, "reads", argument={"name": "data.txt"},
                            runtime_env=RuntimeEnv(working_dir_uri=uri)))
    assert wait_done(ex, handle).state is UnitState.SUCCEEDED, log_of(ex, handle)
    assert "shipped-content" in log_of(ex, handle)
    command = ex.submit(WorkUnit(unit_id="u2", command=["cat", "sub/more.txt"],
                                 runtime_env=RuntimeEnv(working_dir_uri=uri)))
    assert wait_done(ex, command).state is UnitState.SUCCEEDED
    assert "nested" in log_of(ex, command)
    with pytest.raises(ExecutorError, match=r"runtime_env\.working_dir_uri .* does not exist"):
        ex.submit(WorkUnit(unit_id="u3", command=["true"],
                           runtime_env=RuntimeEnv(working_dir_uri=store.uri("nope"))))
    with pytest.raises(ExecutorError, match="not both"):
        ex.submit(WorkUnit(unit_id="u3", command=["true"], working_dir=str(tmp_path),
                           runtime_env=RuntimeEnv(working_dir_uri=uri)))


def test_handle_json_is_the_handle(ex: LocalExecutor, modules: Path) -> None:
    handle = ex.submit(unit(modules, "returns"))
    wait_done(ex, handle)
    stored = json.loads((Path(handle["dir"]) / "handle.json").read_text())
    assert stored == handle and ex.is_handle(stored)


def local_index(root: Path, name: str = "ketch_probe_pkg", version: str = "1.0") -> str:
    """A PEP 503 index on disk holding one pure-Python wheel, written by hand (a wheel
    is a zip of the package plus its dist-info): pip installs from it with no network."""
    import base64
    import hashlib
    import zipfile

    dist = f"{name}-{version}"
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n",
             f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\n"
                                          f"Version: {version}\n",
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\n"
                                       "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        record.append(f"{path},sha256={digest.decode().rstrip('=')},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    project = root / "simple" / name.replace("_", "-")
    project.mkdir(parents=True)
    wheel = f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(project / wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    (project / "index.html").write_text(f'<a href="{wheel}">{wheel}</a>\n')
    (root / "simple" / "index.html").write_text(
        f'<a href="{name.replace("_", "-")}/">{name}</a>\n')
    return (root / "simple").as_uri()


PROBE = textwrap.dedent('''
    import sys

    def probe(arg):
        import ketch_probe_pkg
        print("probe", ketch_probe_pkg.VERSION, "from venv:", sys.prefix != sys.base_prefix)
''')


@pytest.mark.slow
def test_runtime_env_packages_run_in_a_venv_built_once(
        make_executor: Callable[..., LocalExecutor], modules: Path, tmp_path: Path) -> None:
    """The package is not in ketch's environment; a unit that asks for it runs in a
    venv built (by the unit's own process, pip's output in its log) from a local index,
    and a second unit with the same requirements reuses it."""
    (modules / "probe_mod.py").write_text(PROBE)
    index = local_index(tmp_path / "index")
    ex = make_executor(warm_pool=True, venvs_dir=tmp_path / "venvs")
    env = RuntimeEnv(packages=("ketch-probe-pkg==1.0",), index_urls=(index,))
    # Hold the venv's build lock: submit must return all the same (the unit's own
    # process builds the venv, or waits for whoever builds it).
    (tmp_path / "venvs").mkdir()
    key = Requirements(env.packages, env.index_urls).key
    with open(tmp_path / "venvs" / f"{key}.lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        first = ex.submit(WorkUnit(unit_id="v1", env={"PYTHONPATH": str(modules)},
                                   python=PythonEntry("probe_mod", "probe"), runtime_env=env))
        wait_for(lambda: "waiting for another unit to build the venv" in log_of(ex, first),
                 timeout=15.0, message="the unit to wait for the lock")
        assert ex.poll(first).state is UnitState.RUNNING
        fcntl.flock(lockf, fcntl.LOCK_UN)
    status = wait_done(ex, first, timeout=240)
    assert status.state is UnitState.SUCCEEDED, log_of(ex, first)
    text = log_of(ex, first)
    assert "probe 1.0 from venv: True" in text
    assert "ketch: building a venv for ketch-probe-pkg==1.0" in text
    venvs = sorted(p.name for p in (tmp_path / "venvs").iterdir() if p.is_dir())
    assert len(venvs) == 1
    second = ex.submit(WorkUnit(unit_id="v2", command=["python", "-c",
                                                       "import ketch_probe_pkg; print('cmd ok')"],
                                runtime_env=env))
    assert wait_done(ex, second, timeout=120).state is UnitState.SUCCEEDED, log_of(ex, second)
    assert "cmd ok" in log_of(ex, second) and "building" not in log_of(ex, second)
    assert sorted(p.name for p in (tmp_path / "venvs").iterdir() if p.is_dir()) == venvs


@pytest.mark.slow
def test_a_failed_venv_build_fails_the_unit_as_runtime_env_failed(
        make_executor: Callable[..., LocalExecutor], tmp_path: Path) -> None:
    index = local_index(tmp_path / "index")
    ex = make_executor(venvs_dir=tmp_path / "venvs")
    handle = ex.submit(WorkUnit(unit_id="bad", python=PythonEntry("json", "dumps"),
                                runtime_env=RuntimeEnv(packages=("no-such-package-xyz",),
                                                       index_urls=(index,))))
    status = wait_done(ex, handle, timeout=240)
    assert (status.state, status.reason) == (UnitState.FAILED, "RuntimeEnvFailed")
    assert "installing no-such-package-xyz failed" in status.message
    assert "No matching distribution found for no-such-package-xyz" in log_of(ex, handle)
