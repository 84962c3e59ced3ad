"""Shared-filesystem mode against the real test pool: jobs run in the project directory
(the pool's chroot bind-mounts the host's /tmp at the same path), nothing is spooled or
transferred, and completions come from the run's job event log.

The tests run as root with an IDTOKEN of the pool's ordinary user, who owns the jobs:
project directories are made writable for that user, as a shared filesystem's would be
for the person who submits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.types import Resources
from conveyor.executors.base import Completion, Handle, Invocation
from conveyor.executors.htcondor import HTCondorExecutor
from tests.integration.conftest import Repo
from tests.integration.test_htcondor import PIPELINE, _digests, _need_pool, _queued

pytestmark = pytest.mark.integration
DEADLINE = 180.0


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A project directory under /tmp, which the test pool shares at the same path."""
    base = Path(tempfile.mkdtemp(prefix="conveyor-htcondor-shared-", dir="/tmp"))
    os.chmod(base, 0o755)
    project = base / "project"
    project.mkdir(mode=0o777)
    os.chmod(project, 0o777)
    yield project
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def shared() -> Iterator[HTCondorExecutor]:
    _need_pool()
    made = HTCondorExecutor({"filesystem": "shared"})
    yield made
    made.close()


def _invocation(workdir: Path, name: str, command: str, **extra: Any) -> Invocation:
    return Invocation(
        key=f"{extra.pop('run', 'shared0')}/{name}/1",
        command=command,
        env=extra.pop("env", {"CONVEYOR_STEP_ID": name}),
        workdir=workdir,
        log_path=workdir.parent / "logs" / f"{name}.log",
        **extra,
    )


def _wait(executor: HTCondorExecutor, handles: list[Handle]) -> dict[str, Completion]:
    done: dict[str, Completion] = {}
    deadline = time.monotonic() + DEADLINE
    while len(done) < len(handles):
        assert time.monotonic() < deadline, f"only {len(done)}/{len(handles)} completed"
        for completion in executor.poll([h for h in handles if h.key not in done], 0.25):
            done[completion.key] = completion
    return done


def _leaves_the_queue(prefix: str) -> None:
    """The schedd drops a finished job just after its shadow logged the end: wait
    (bounded) for that, without Conveyor's help."""
    deadline = time.monotonic() + 60
    while _queued(prefix):
        assert time.monotonic() < deadline, f"jobs {prefix}/... stayed queued"
        time.sleep(0.5)


def test_jobs_run_in_the_project_directory_and_write_outputs_in_place(
    shared: HTCondorExecutor, shared_dir: Path
) -> None:
    (shared_dir / "undeclared.txt").write_text("seen in place\n")
    inv = _invocation(
        shared_dir,
        "inplace",
        'test "$PWD" = "$CONVEYOR_PROJECT_DIR" && pwd && cat undeclared.txt && '
        "mkdir -p out && echo done > out/flag && exit 3",
        outputs=("out/flag",),
    )
    completion = _wait(shared, [shared.submit(inv)])[inv.key]
    log = inv.log_path.read_text()
    assert (completion.state, completion.exit_code) == ("exited", 3), log
    # the job saw a file no one sent it, in the project's own directory
    assert f"{shared_dir}\nseen in place\n" in log
    assert (shared_dir / "out" / "flag").read_text() == "done\n"
    ran_on = completion.ran_on
    assert ran_on is not None and ran_on["slot"].startswith("slot"), ran_on
    assert f"ran as HTCondor job {ran_on['job']} on {ran_on['slot']}" in log
    # the job event log says what the schedd would have: it is the run's one log
    events = list((shared_dir / ".conveyor" / "htcondor").glob("*/events.log"))
    assert len(events) == 1 and "Job terminated" in events[0].read_text()
    _leaves_the_queue("shared0")  # a job that was not spooled leaves the queue itself


def test_auto_chooses_the_shared_mode_when_the_pool_declares_this_filesystem(
    shared_dir: Path,
) -> None:
    _need_pool()
    import htcondor2

    mine = htcondor2.param.get("FILESYSTEM_DOMAIN")
    slots = htcondor2.Collector().query(htcondor2.AdTypes.Startd, projection=["FileSystemDomain"])
    expected = {s.get("FileSystemDomain") for s in slots} == {mine}
    executor = HTCondorExecutor({"filesystem": "auto"})
    try:
        inv = _invocation(shared_dir, "auto", "echo auto", run="auto1")
        assert _wait(executor, [executor.submit(inv)])[inv.key].exit_code == 0
        assert ((shared_dir / ".conveyor" / "htcondor").exists()) == expected
    finally:
        executor.close()


def test_a_held_job_in_place_fails_with_its_reason_and_is_removed(
    shared: HTCondorExecutor, shared_dir: Path
) -> None:
    options = {
        "htcondor.on_exit_hold": "ExitCode == 3",
        "htcondor.on_exit_hold_reason": '"the solver licence expired"',
    }
    held = _invocation(shared_dir, "held", "echo before; exit 3", options=options, run="sh1")
    fine = _invocation(shared_dir, "fine", "exit 0", run="sh1")
    done = _wait(shared, [shared.submit(held), shared.submit(fine)])
    assert done[held.key].state == "error"
    assert done[held.key].message == "HTCondor held the job: the solver licence expired"
    assert "before" in held.log_path.read_text()
    assert (done[fine.key].state, done[fine.key].exit_code) == ("exited", 0)
    _leaves_the_queue("sh1")


def test_a_cancelled_python_step_keeps_what_it_printed(
    shared: HTCondorExecutor, shared_dir: Path
) -> None:
    script = "import time; print('step one done'); time.sleep(300)"
    inv = _invocation(shared_dir, "slow", f'"${{CONVEYOR_PYTHON:-python3}}" -c "{script}"')
    handle = shared.submit(inv)
    deadline = time.monotonic() + DEADLINE
    while not shared.started([handle]):
        assert time.monotonic() < deadline, "the job never started"
        assert shared.poll([handle], 0.25) == []
    # PYTHONUNBUFFERED: the line is in the job's stdout while it sleeps
    stdout = next((shared_dir / ".conveyor" / "htcondor").glob("*/j*/stdout"))
    while "step one done" not in stdout.read_text():
        assert time.monotonic() < deadline, "the step's output never arrived"
        time.sleep(0.25)
    shared.cancel([handle])
    completion = shared.poll([handle], 0)[0]
    assert completion.state == "cancelled"
    assert "step one done" in inv.log_path.read_text()
    assert _queued("shared0") == []


def test_cli_run_in_place_matches_local_outputs(shared_dir: Path) -> None:
    _need_pool()
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.invalid"],
        ["config", "user.name", "T"],
    ):
        subprocess.run(["git", *args], cwd=shared_dir, check=True)
    repo = Repo(shared_dir)
    repo.write(".gitignore", "out/\n")
    repo.write(".conveyor/config.toml", '[executors.htcondor]\nfilesystem = "shared"\n')
    repo.pipeline(PIPELINE)
    repo.write("data/seed.txt", "seed-7\n")
    repo.commit("pipeline")
    local = repo.run("run", "--executor", "local")
    assert local.code == 0, local.out + local.err
    expected = _digests(repo)
    shutil.rmtree(shared_dir / "out")
    forced = repo.run("run", "--executor", "htcondor", "--force", timeout=300)
    assert forced.code == 0, forced.out + forced.err
    run = repo.show()
    assert run["executor"] == "htcondor" and not any(s["cached"] for s in run["steps"])
    assert _digests(repo) == expected
    # the scratch (job directories, the event log) is gone with the run
    assert list((shared_dir / ".conveyor" / "htcondor").rglob("*")) == []


def test_a_job_no_machine_matches_fails_in_place_without_retry(shared_dir: Path) -> None:
    _need_pool()
    executor = HTCondorExecutor(
        {"filesystem": "shared", "no_match_after": 1, "no_capacity_timeout": 6}
    )
    try:
        inv = _invocation(
            shared_dir, "huge", "true", run="nomatch1", resources=Resources(memory_mb=512_000_000)
        )
        completion = _wait(executor, [executor.submit(inv)])[inv.key]
        assert completion.state == "error" and not completion.retryable
        assert "HTCondor had no machine for the job" in (completion.message or "")
        assert "no machine matches the job" in inv.log_path.read_text()
        assert _queued("nomatch1") == []
    finally:
        executor.close()


def test_a_job_removed_outside_conveyor_is_lost(shared: HTCondorExecutor, shared_dir: Path) -> None:
    import htcondor2

    inv = _invocation(shared_dir, "gone", "sleep 300", run="gone1")
    handle = shared.submit(inv)
    assert shared.poll([handle], 0) == []
    htcondor2.Schedd().act(htcondor2.JobAction.Remove, 'regexp("^gone1/", ConveyorKey)')
    completion = _wait(shared, [handle])[inv.key]
    assert completion.state == "lost"
    assert "the job was removed from HTCondor" in (completion.message or "")
