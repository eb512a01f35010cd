"""The Job controller end to end in-process: real store (SQLite and PostgreSQL),
real local executor, real processes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from ketch.core.config import Settings
from ketch.core.errors import NotFoundError
from ketch.core.resources import Resource
from ketch.core.runtime import Runtime
from ketch.core.service import ResourceService
from ketch.jobs import JOB, component

PY = sys.executable


def make_runtime(home: Path, database_url: str) -> Runtime:
    settings = Settings.from_env({"KETCH_HOME": str(home), "KETCH_DATABASE_URL": database_url,
                                  "KETCH_CPUS": "4"})
    return Runtime(settings, [component])


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path / "home", database_url)
    rt.start()
    yield rt
    rt.stop()


def submit(rt: Runtime, name: str, **spec: object) -> Resource:
    return ResourceService(rt).create(JOB, {
        "apiVersion": "ketch.dev/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec})


def wait_job(rt: Runtime, name: str, until: Callable[[Resource], bool],
             timeout: float = 30.0) -> Resource:
    deadline = time.monotonic() + timeout
    while True:
        obj = rt.store.get(JOB, "default", name)
        if until(obj):
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"job {name} never reached the state; last: {obj.status}")
        time.sleep(0.05)


def phase_is(*phases: str) -> Callable[[Resource], bool]:
    return lambda obj: obj.status.get("phase") in phases


def condition(obj: Resource, type_: str) -> dict[str, str]:
    return next(c for c in obj.status["conditions"] if c["type"] == type_)


def read_log(rt: Runtime, obj: Resource, attempt: int | None = None) -> str:
    from ketch.core.kinds import LogOptions
    from ketch.jobs._logs import read_job_log

    return b"".join(read_job_log(rt, obj, LogOptions(attempt=attempt))).decode()


def test_job_succeeds_with_env_working_dir_and_log(runtime: Runtime, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    submit(runtime, "ok", command=[PY, "-c",
                                   "import os,sys; print(os.environ['GREETING'], os.getcwd());"
                                   "print('to stderr', file=sys.stderr)"],
           env=[{"name": "GREETING", "value": "hello"}], workingDir=str(workdir))
    obj = wait_job(runtime, "ok", phase_is("Succeeded", "Failed"))
    assert obj.status["phase"] == "Succeeded", obj.status
    assert obj.status["exitCode"] == 0 and obj.status["attempts"] == 1
    assert obj.status["startTime"] and obj.status["completionTime"]
    assert condition(obj, "Succeeded")["status"] == "True"
    log = read_log(runtime, obj)
    assert f"hello {workdir}" in log and "to stderr" in log
    # The log was persisted to the artifact store.
    assert Path(obj.status["logUri"]).read_text() == log


def test_failures_are_retried_up_to_backoff_limit(runtime: Runtime) -> None:
    submit(runtime, "flaky", command=[PY, "-c", "import sys; print('boom'); sys.exit(3)"],
           backoffLimit=2)
    obj = wait_job(runtime, "flaky", phase_is("Succeeded", "Failed"), timeout=60)
    assert obj.status["phase"] == "Failed"
    assert obj.status["attempts"] == 3
    assert obj.status["exitCode"] == 3
    failed = condition(obj, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "code 3" in failed["message"]
    for attempt in (1, 2, 3):
        assert read_log(runtime, obj, attempt) == "boom\n"


def test_retry_can_succeed(runtime: Runtime, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    script = (f"import os,sys; p={str(marker)!r}\n"
              "if not os.path.exists(p): open(p,'w').close(); sys.exit(1)\n")
    submit(runtime, "second-time", command=[PY, "-c", script], backoffLimit=1)
    obj = wait_job(runtime, "second-time", phase_is("Succeeded", "Failed"), timeout=60)
    assert obj.status["phase"] == "Succeeded" and obj.status["attempts"] == 2


def test_missing_command_fails_with_the_os_error(runtime: Runtime) -> None:
    submit(runtime, "nocmd", command=["ketch-no-such-command", "x"], backoffLimit=3)
    obj = wait_job(runtime, "nocmd", phase_is("Succeeded", "Failed"))
    assert obj.status["phase"] == "Failed"
    failed = condition(obj, "Failed")
    assert failed["reason"] == "StartError"
    assert "No such file or directory" in failed["message"]
    assert "ketch-no-such-command" in failed["message"]
    assert obj.status["attempts"] == 1  # a missing executable is not retried


def test_deadline_kills_and_fails(runtime: Runtime) -> None:
    submit(runtime, "slow", command=[PY, "-c", "import time; time.sleep(60)"],
           activeDeadlineSeconds=1, backoffLimit=2)
    obj = wait_job(runtime, "slow", phase_is("Succeeded", "Failed"))
    assert obj.status["phase"] == "Failed"
    assert condition(obj, "Failed")["reason"] == "DeadlineExceeded"
    assert obj.status["attempts"] == 1


def test_python_entry_point_runs_function_with_args(runtime: Runtime, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "mytask.py").write_text(
        "def main(a, b):\n    print('sum', int(a) + int(b))\n")
    submit(runtime, "py", python="mytask:main", args=["2", "3"], workingDir=str(tmp_path / "work"))
    obj = wait_job(runtime, "py", phase_is("Succeeded", "Failed"))
    assert obj.status["phase"] == "Succeeded", read_log(runtime, obj)
    assert read_log(runtime, obj) == "sum 5\n"


def _pid_from_log(rt: Runtime, name: str) -> int:
    def pid() -> int | None:
        obj = rt.store.get(JOB, "default", name)
        text = read_log(rt, obj) if obj.status.get("attempts") else ""
        return int(text.split()[0]) if text.strip() else None

    deadline = time.monotonic() + 30
    while (value := pid()) is None:
        assert time.monotonic() < deadline, "job never printed its pid"
        time.sleep(0.05)
    return value


SLEEPER = [PY, "-c", "import os,time; print(os.getpid(), flush=True); time.sleep(120)"]


def test_delete_running_job_kills_its_processes(runtime: Runtime) -> None:
    submit(runtime, "doomed", command=SLEEPER)
    pid = _pid_from_log(runtime, "doomed")
    assert psutil.pid_exists(pid)
    ResourceService(runtime).delete(JOB, "default", "doomed")
    deadline = time.monotonic() + 30
    while True:
        try:
            runtime.store.get(JOB, "default", "doomed")
        except NotFoundError:
            break
        assert time.monotonic() < deadline, "job was never removed"
        time.sleep(0.05)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_cancel_stops_the_attempt_and_keeps_the_object(runtime: Runtime) -> None:
    submit(runtime, "stopme", command=SLEEPER)
    pid = _pid_from_log(runtime, "stopme")
    ResourceService(runtime).patch(JOB, "default", "stopme", {"spec": {"cancel": True}})
    obj = wait_job(runtime, "stopme", phase_is("Cancelled"))
    assert condition(obj, "Cancelled")["status"] == "True"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_jobs_wait_for_cpu_slots(tmp_path: Path, database_url: str) -> None:
    settings = Settings.from_env({"KETCH_HOME": str(tmp_path / "h"), "KETCH_CPUS": "1",
                                  "KETCH_DATABASE_URL": database_url})
    rt = Runtime(settings, [component])
    rt.start()
    try:
        submit(rt, "first", command=SLEEPER)
        _pid_from_log(rt, "first")
        submit(rt, "second", command=[PY, "-c", "print('ran')"])
        waiting = wait_job(rt, "second", lambda o: any(
            c["type"] == "Scheduled" for c in o.status.get("conditions", [])))
        assert waiting.status["phase"] == "Pending"
        assert condition(waiting, "Scheduled")["reason"] == "Insufficient"
        submit(rt, "huge", command=["true"], resources={"cpu": 8})
        huge = wait_job(rt, "huge", lambda o: bool(o.status.get("conditions")))
        assert condition(huge, "Scheduled")["reason"] == "Unschedulable"
        assert "cpu 8 > 1" in condition(huge, "Scheduled")["message"]
        ResourceService(rt).patch(JOB, "default", "first", {"spec": {"cancel": True}})
        done = wait_job(rt, "second", phase_is("Succeeded", "Failed"))
        assert done.status["phase"] == "Succeeded"
    finally:
        rt.stop()


def test_two_control_planes_on_one_database_run_a_job_once(tmp_path: Path,
                                                           database_url: str) -> None:
    ledger = tmp_path / "ledger"
    planes = [make_runtime(tmp_path / "home", database_url) for _ in range(2)]
    for plane in planes:
        plane.start()
    try:
        names = [f"once-{i}" for i in range(6)]
        for i, name in enumerate(names):
            submit(planes[i % 2], name, command=[
                PY, "-c", f"open({str(ledger)!r}, 'a').write({name!r} + ' ' + "
                          f"__import__('os').environ.get('X', '') + '\\n')"])
        for name in names:
            obj = wait_job(planes[0], name, phase_is("Succeeded", "Failed"))
            assert obj.status["phase"] == "Succeeded" and obj.status["attempts"] == 1
        lines = ledger.read_text().split()
        assert sorted(lines) == sorted(names), "each job must run exactly once"
        owners = {planes[0].store.get(JOB, "default", n).status["controlPlane"] for n in names}
        assert owners <= {p.id for p in planes}
    finally:
        for plane in planes:
            plane.stop()


def test_restarted_control_plane_adopts_running_work(tmp_path: Path, database_url: str) -> None:
    """A control plane that stops (as after a crash) leaves work running; a new one
    with the same database adopts it and records the real exit."""
    home = tmp_path / "home"
    flag = tmp_path / "go"
    first = make_runtime(home, database_url)
    first.start()
    submit(first, "adopt", command=[
        PY, "-c", f"import os,time\nprint(os.getpid(), flush=True)\n"
                  f"while not os.path.exists({str(flag)!r}): time.sleep(0.05)\nprint('done')"])
    pid = _pid_from_log(first, "adopt")
    first.stop()  # its lease is released: it is gone as far as others can tell
    assert psutil.pid_exists(pid)
    second = make_runtime(home, database_url)
    second.start()
    try:
        obj = wait_job(second, "adopt", lambda o: o.status.get("controlPlane") == second.id)
        assert obj.status["phase"] == "Running"
        flag.write_text("")
        obj = wait_job(second, "adopt", phase_is("Succeeded", "Failed"))
        assert obj.status["phase"] == "Succeeded" and obj.status["attempts"] == 1
        assert read_log(second, obj).endswith("done\n")
    finally:
        second.stop()
    assert os.path.exists(flag)


def test_control_plane_secrets_do_not_reach_jobs(runtime: Runtime,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETCH_TOKEN", "do-not-leak")
    monkeypatch.setenv("KETCH_DATABASE_URL", "postgresql://u:pw@db/x")
    submit(runtime, "env", command=[PY, "-c", "import os; print(sorted(k for k in os.environ "
                                              "if k.startswith('KETCH_')))"])
    obj = wait_job(runtime, "env", phase_is("Succeeded", "Failed"))
    log = read_log(runtime, obj)
    assert "KETCH_TOKEN" not in log and "KETCH_DATABASE_URL" not in log


def test_finished_attempts_leave_no_scratch_and_delete_removes_logs(runtime: Runtime) -> None:
    submit(runtime, "tidy", command=[PY, "-c", "print('x')"])
    obj = wait_job(runtime, "tidy", phase_is("Succeeded", "Failed"))
    runs = runtime.settings.runs_dir
    wait_for_gone = time.monotonic() + 10
    while any(runs.glob(f"{obj.metadata.uid}-*")):
        assert time.monotonic() < wait_for_gone, "scratch dir left behind"
        time.sleep(0.05)
    log_file = Path(obj.status["logUri"])
    assert log_file.read_text() == "x\n"
    ResourceService(runtime).delete(JOB, "default", "tidy")
    deadline = time.monotonic() + 30
    while True:
        try:
            runtime.store.get(JOB, "default", "tidy")
        except NotFoundError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not log_file.parent.exists()


def test_many_jobs_racing_for_few_slots_all_run(tmp_path: Path, database_url: str) -> None:
    """Two workers may both see a free slot; the one that loses the race waits
    for the next free slot instead of failing its Job."""
    settings = Settings.from_env({"KETCH_HOME": str(tmp_path / "h"), "KETCH_CPUS": "2",
                                  "KETCH_DATABASE_URL": database_url})
    rt = Runtime(settings, [component])
    rt.start()
    try:
        names = [f"race-{i}" for i in range(8)]
        for name in names:
            submit(rt, name, command=[PY, "-c", "import time; time.sleep(0.2)"])
        for name in names:
            obj = wait_job(rt, name, phase_is("Succeeded", "Failed"), timeout=60)
            assert obj.status["phase"] == "Succeeded", obj.status
            assert obj.status["attempts"] == 1
    finally:
        rt.stop()


@pytest.mark.parametrize(("spec", "field"), [
    ({"command": ["echo", "a\x00b"]}, "spec.command[1]"),
    ({"command": ["true"], "args": ["\x00"]}, "spec.args[0]"),
    ({"command": ["true"], "env": [{"name": "A", "value": "x\x00"}]}, "spec.env[0].value"),
    ({"command": ["true"], "env": [{"name": "A=B", "value": "x"}]}, "spec.env[0].name"),
    ({"command": ["true"], "env": {"OK": "1", "A=B": "x"}}, "spec.env[1].name"),
    ({"command": ["true"], "workingDir": "/tmp\x00"}, "spec.workingDir"),
    ({"command": ["true"], "activeDeadlineSeconds": 18446744073709551616},
     "spec.activeDeadlineSeconds"),
    ({"command": ["true"], "activeDeadlineSeconds": 5.0}, "spec.activeDeadlineSeconds"),
    ({"command": ["true"], "backoffLimit": "2"}, "spec.backoffLimit"),
    ({"command": ["true"], "resources": {"gpu": 1.0}}, "spec.resources.gpu"),
], ids=["nul-command", "nul-args", "nul-env-value", "equals-env-name", "equals-env-mapping",
        "nul-working-dir", "deadline-beyond-int64", "deadline-float", "backoff-string",
        "gpu-float"])
def test_admission_refuses_what_can_never_run(runtime: Runtime, spec: dict[str, object],
                                              field: str) -> None:
    """Refused at create with the field named (422), instead of being stored and then
    failing every reconcile."""
    from ketch.core.errors import InvalidError

    with pytest.raises(InvalidError) as err:
        submit(runtime, "bad", **spec)
    assert err.value.http_status == 422
    assert [f.path for f in err.value.fields] == [field]
    assert not err.value.fields[0].message.startswith("Value error")
    with pytest.raises(NotFoundError):
        runtime.store.get(JOB, "default", "bad")


def test_largest_int64_deadline_is_accepted_and_runs(runtime: Runtime) -> None:
    submit(runtime, "long", command=[PY, "-c", "pass"], activeDeadlineSeconds=2**63 - 1,
           env={"A": "1"})
    obj = wait_job(runtime, "long", phase_is("Succeeded", "Failed"))
    assert obj.status["phase"] == "Succeeded", obj.status
    assert obj.spec["env"] == [{"name": "A", "value": "1"}]


def _store_unchecked(rt: Runtime, name: str, spec: dict[str, object]) -> None:
    """Write a Job past admission, as one stored by an older ketch would be."""
    rt.store.create(JOB, Resource.model_validate({
        "apiVersion": "ketch.dev/v1", "kind": "Job",
        "metadata": {"name": name, "finalizers": list(JOB.finalizers)}, "spec": spec}))


def test_a_stored_spec_exec_would_refuse_fails_once_naming_the_field(runtime: Runtime) -> None:
    if runtime.settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL cannot store a NUL in JSON: such a Job exists on SQLite only")
    _store_unchecked(runtime, "nul", {"command": ["echo", "a\x00b"], "backoffLimit": 3})
    # Before, it looped claim/ValueError/unclaim thousands of times, never Failed.
    obj = wait_job(runtime, "nul", phase_is("Failed"))
    failed = condition(obj, "Failed")
    assert failed["reason"] == "InvalidSpec", obj.status
    assert "spec.command[1]" in failed["message"] and "NUL" in failed["message"]
    assert obj.status["attempts"] == 0
    assert not any(runtime.settings.runs_dir.glob(f"{obj.metadata.uid}-*"))


def test_a_stored_spec_that_no_longer_parses_fails_once_and_deletes(runtime: Runtime) -> None:
    _store_unchecked(runtime, "huge", {"command": ["true"],
                                       "activeDeadlineSeconds": 1.8446744073709552e19})
    obj = wait_job(runtime, "huge", phase_is("Failed"))
    assert condition(obj, "Failed")["reason"] == "InvalidSpec", obj.status
    ResourceService(runtime).delete(JOB, "default", "huge")
    deadline = time.monotonic() + 30
    while runtime.store.list(JOB, "default").items:
        assert time.monotonic() < deadline, "the Job was never deleted"
        time.sleep(0.05)


def test_a_finished_jobs_spec_is_immutable(runtime: Runtime) -> None:
    """As a Kubernetes Job's template: no command can be put under a Succeeded status
    that never ran it. Metadata (labels) still changes."""
    from ketch.core.errors import InvalidError

    submit(runtime, "done", command=[PY, "-c", "pass"])
    wait_job(runtime, "done", phase_is("Succeeded"))
    service = ResourceService(runtime)
    with pytest.raises(InvalidError) as err:
        service.patch(JOB, "default", "done", {"spec": {"command": ["rm", "-rf", "/"]}})
    assert err.value.http_status == 422
    assert [f.path for f in err.value.fields] == ["spec.command"]
    assert "Succeeded" in str(err.value)
    obj = service.patch(JOB, "default", "done", {"metadata": {"labels": {"kept": "yes"}}})
    assert obj.spec["command"] == [PY, "-c", "pass"] and obj.metadata.labels == {"kept": "yes"}


def test_leases_of_control_planes_dead_long_ago_are_deleted(runtime: Runtime) -> None:
    """Each kill -9 of a control plane left its lease row forever; the pump deletes
    the ones expired more than LEASE_RETENTION ago, and only those."""
    from ketch.core.runtime import LEASE_RETENTION

    store = runtime.store
    store.acquire_lease("controlplane/dead-long-ago", "dead-long-ago",
                        -(LEASE_RETENTION + 60), {"host": "h", "pid": 1, "started": 0})
    store.acquire_lease("controlplane/just-died", "just-died", -1.0,
                        {"host": "h", "pid": 1, "started": 0})
    deadline = time.monotonic() + 30
    while store.get_lease("controlplane/dead-long-ago") is not None:
        assert time.monotonic() < deadline, "the stale lease was never deleted"
        time.sleep(0.1)
    assert store.get_lease("controlplane/just-died") is not None
    assert store.get_lease(runtime.lease_name(runtime.id)) is not None


def test_the_running_condition_names_the_unit_not_a_backends_pid(runtime: Runtime,
                                                                   tmp_path: Path) -> None:
    """The handle is the executor backend's (a Ray unit has no pid): status messages name
    the unit id the controller chose, which every backend keeps."""
    gate = tmp_path / "go"
    submit(runtime, "neutral", command=[PY, "-c", "import os, time\n"
                                        f"while not os.path.exists({str(gate)!r}): "
                                        "time.sleep(0.01)\n"])
    obj = wait_job(runtime, "neutral", phase_is("Running"))
    running = wait_job(runtime, "neutral",
                       lambda o: any(c["type"] == "Running" and c["status"] == "True"
                                     for c in o.status.get("conditions", [])))
    message = condition(running, "Running")["message"]
    assert message == f"attempt 1 started as unit {obj.metadata.uid}-1"
    gate.touch()
    done = wait_job(runtime, "neutral", phase_is("Succeeded", "Failed"))
    assert done.status["phase"] == "Succeeded"
    assert done.status["logUri"].endswith("/attempt-1.log")
