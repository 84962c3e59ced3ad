"""The HTCondor executor against a real pool (scripts/engines/htcondor.sh up).

Tests that need the pool are skipped when CONDOR_CONFIG is unset, unless scripts/test.sh
started it (htcondor in CONVEYOR_ENGINES); the unreachable-pool tests need only the
bindings.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.types import Resources
from conveyor.errors import ExecutorError, ProjectError
from conveyor.executors.base import Completion, Handle, Invocation
from conveyor.executors.htcondor import HTCondorExecutor
from tests import ports
from tests.engines import configured, engine_missing, need_bindings
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration
DEADLINE = 180.0
HAVE_BINDINGS = importlib.util.find_spec("htcondor2") is not None


def _need_pool() -> None:
    if not configured("CONDOR_CONFIG"):
        message = "HTCondor pool not configured; start it with scripts/engines/htcondor.sh up"
        engine_missing("htcondor", message)
    need_bindings("htcondor")


@pytest.fixture
def pool() -> None:
    _need_pool()


@pytest.fixture
def executor() -> Iterator[HTCondorExecutor]:
    made = HTCondorExecutor({})
    yield made
    made.close()


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A project directory outside /tmp: the test pool's chroot cannot see it."""
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    path = Path(tempfile.mkdtemp(prefix="conveyor-htcondor-test-", dir=base))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _closed_port() -> int:
    return ports.free_port()


def _invocation(workdir: Path, name: str, command: str, **extra: Any) -> Invocation:
    return Invocation(
        key=f"{extra.pop('run', 'run0')}/{name}/1",
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


def _queued(key_prefix: str, extra: str = "true") -> list[Any]:
    import htcondor2

    constraint = f'regexp("^{key_prefix}/", ConveyorKey) && JobStatus != 3 && {extra}'
    return list(htcondor2.Schedd().query(constraint=constraint, projection=["JobStatus"]))


# -- no pool needed -------------------------------------------------------------------
def test_settings_are_checked_without_contacting_anything() -> None:
    assert HTCondorExecutor({}).default_parallelism == 1000
    assert HTCondorExecutor({"parallelism": 40}).default_parallelism == 40
    with pytest.raises(ProjectError, match=r"unknown setting executors\.htcondor\.colector"):
        HTCondorExecutor({"colector": "127.0.0.1"})
    with pytest.raises(ProjectError, match="poll_interval must be a positive number"):
        HTCondorExecutor({"poll_interval": 0})


def test_options_that_would_break_file_transfer_fail_the_step_at_once(tmp_path: Path) -> None:
    executor = HTCondorExecutor({"collector": f"127.0.0.1:{_closed_port()}"})
    for key in ("htcondor.transfer_output_files", "htcondor.Executable", "htcondor.bad name"):
        with pytest.raises(ExecutorError, match=key.replace(".", r"\.")):
            executor.submit(_invocation(tmp_path, "opt", "true", options={key: "x"}))
    executor.close()


def test_missing_bindings_say_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "htcondor2", None)  # import htcondor2 -> ImportError
    executor = HTCondorExecutor({})
    handle = executor.submit(_invocation(tmp_path, "s", "true"))
    with pytest.raises(ExecutorError, match=r"pip install 'conveyor\[htcondor\]'"):
        executor.poll([handle], 0.25)
    executor.close()


@pytest.mark.skipif(not HAVE_BINDINGS, reason="needs the htcondor2 bindings")
def test_unreachable_pool_is_one_clear_error(tmp_path: Path) -> None:
    port = _closed_port()
    executor = HTCondorExecutor({"collector": f"127.0.0.1:{port}"})
    handles = [executor.submit(_invocation(tmp_path, f"s{i}", "true")) for i in range(3)]
    start = time.monotonic()
    with pytest.raises(ExecutorError) as caught:
        executor.poll(handles, 0.25)
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert f"cannot reach the HTCondor schedd at 127.0.0.1:{port}" in message
    assert "start a pool or set [executors.htcondor] schedd/collector" in message
    executor.close()


@pytest.mark.skipif(not HAVE_BINDINGS, reason="needs the htcondor2 bindings")
def test_unreachable_pool_through_the_cli(repo: Repo) -> None:
    port = _closed_port()
    repo.write(".conveyor/config.toml", f'[executors.htcondor]\ncollector = "127.0.0.1:{port}"\n')
    repo.pipeline(
        "jobs:\n  a:\n    steps:\n      - run: echo a\n  b:\n    steps:\n      - run: echo b\n"
    )
    repo.commit("pipeline")
    start = time.monotonic()
    result = repo.run("run", "--executor", "htcondor", timeout=60)
    assert time.monotonic() - start < 15
    assert result.code == 1, result.out + result.err  # a failed run, not bad input
    assert "Traceback" not in result.err
    # the jobs were buffered at submit and the pool is found unreachable at the first
    # poll: the run is finalised with that error, not left "running" for recovery
    reason = f"cannot reach the HTCondor schedd at 127.0.0.1:{port}"
    summary = [line for line in result.out.splitlines() if line.startswith("run ")][-1]
    assert " FAILED in " in summary and reason in summary, result.out
    shown = repo.show()
    assert shown["status"] == "failed" and reason in shown["error"]
    assert {s["status"] for s in shown["steps"]} == {"failed"}
    assert all(reason in s["error"] for s in shown["steps"])


# -- against the pool -----------------------------------------------------------------
def test_environment_and_command_arrive_verbatim(
    pool: None, executor: HTCondorExecutor, private_dir: Path
) -> None:
    env = {
        "A": 'x y $HOME $(cat) $$ $$(x) it\'s "q" a,b',
        "B": "line1\nline2",
        "C": "  padded  ",
        "D": "${X:-d}",
        "E": "",
        "F": "# not a comment, ends in a backslash \\",
        "G": "tab\tand unicode \u00e9",
    }
    command = 'for v in A B C D E F G; do eval "printf \'[%s]\\n\' \\"\\$$v\\""; done\nfalse\necho not-reached'
    inv = _invocation(private_dir, "env", command, env=env)
    completion = _wait(executor, [executor.submit(inv)])[inv.key]
    assert completion.state == "exited" and completion.exit_code == 1  # sh -e stopped at false
    log = inv.log_path.read_text()
    for value in env.values():
        assert f"[{value}]" in log, log
    assert "not-reached" not in log


def test_inputs_and_outputs_from_a_directory_the_pool_cannot_see(
    pool: None, executor: HTCondorExecutor, private_dir: Path
) -> None:
    (private_dir / "data" / "deep").mkdir(parents=True)
    (private_dir / "data" / "deep" / "in.txt").write_text("42\n")
    (private_dir / "marker").write_text("host only\n")
    inv = _invocation(
        private_dir,
        "io",
        f"test ! -e {private_dir}/marker && test ! -e marker && mkdir -p res/sub && "
        "cp data/deep/in.txt res/sub/copy.txt && echo done > res/flag",
        inputs=("data/deep/in.txt",),
        outputs=("res", "res/flag"),
    )
    completion = _wait(executor, [executor.submit(inv)])[inv.key]
    assert completion.exit_code == 0, inv.log_path.read_text()
    # where it ran, for the step page: the job's id and the slot the pool gave it
    ran_on = completion.ran_on
    assert ran_on is not None and re.fullmatch(r"\d+\.\d+", ran_on["job"]), ran_on
    assert re.fullmatch(r"slot\S*@\S+", ran_on["slot"]), ran_on
    assert f"ran as HTCondor job {ran_on['job']} on {ran_on['slot']}" in inv.log_path.read_text()
    assert (private_dir / "res" / "sub" / "copy.txt").read_text() == "42\n"
    assert (private_dir / "res" / "flag").read_text() == "done\n"


def test_steps_submitted_together_are_one_cluster(
    pool: None, executor: HTCondorExecutor, private_dir: Path
) -> None:
    import htcondor2

    invocations = [
        _invocation(
            private_dir,
            f"b{i}",
            'echo "item $ITEM"',
            run="batch1",
            env={"ITEM": str(i)},
            resources=Resources(cpus=1, memory_mb=32 * (1 + i % 2)),
        )
        for i in range(6)
    ]
    handles = [executor.submit(inv) for inv in invocations]
    assert executor.poll(handles, 0) == []  # submits the buffered steps
    ads = htcondor2.Schedd().query(
        constraint='regexp("^batch1/", ConveyorKey)',
        projection=["ClusterId", "ProcId", "ConveyorKey", "RequestMemory"],
    )
    assert len({ad["ClusterId"] for ad in ads}) == 1
    memory = {ad["ConveyorKey"]: ad["RequestMemory"] for ad in ads}
    assert memory == {inv.key: 32 * (1 + i % 2) for i, inv in enumerate(invocations)}
    done = _wait(executor, handles)
    for i, inv in enumerate(invocations):
        assert done[inv.key].exit_code == 0
        assert f"item {i}" in inv.log_path.read_text()


def test_an_unusable_scratch_dir_is_one_clear_error(pool: None, tmp_path: Path) -> None:
    executor = HTCondorExecutor({"scratch": "/proc/conveyor-cannot-be-here"})
    handle = executor.submit(_invocation(tmp_path, "s", "true"))
    with pytest.raises(ExecutorError, match="cannot make a scratch directory for HTCondor"):
        executor.poll([handle], 0.25)
    executor.close()


def test_a_held_job_fails_with_the_hold_reason(
    pool: None, executor: HTCondorExecutor, private_dir: Path
) -> None:
    options = {
        "htcondor.on_exit_hold": "ExitCode == 3",
        "htcondor.on_exit_hold_reason": '"the solver licence expired"',
    }
    held = _invocation(private_dir, "held", "echo before; exit 3", options=options, run="hold1")
    fine = _invocation(private_dir, "fine", "exit 0", run="hold1")
    done = _wait(executor, [executor.submit(held), executor.submit(fine)])
    assert done[held.key].state == "error"
    assert done[held.key].message == "HTCondor held the job: the solver licence expired"
    assert "the solver licence expired" in held.log_path.read_text()
    assert "before" in held.log_path.read_text()  # what it printed before its hold
    assert (done[fine.key].state, done[fine.key].exit_code) == ("exited", 0)
    assert _queued("hold1", "JobStatus == 5") == []  # the held job was removed at once
    executor.close()
    assert _queued("hold1") == []  # the finished one at the latest on close


def test_an_evicted_job_is_lost(pool: None, executor: HTCondorExecutor, private_dir: Path) -> None:
    import htcondor2

    inv = _invocation(private_dir, "evict", "sleep 120", run="evict1")
    handle = executor.submit(inv)
    schedd = htcondor2.Schedd()
    deadline = time.monotonic() + 60
    running: list[Any] = []
    while not running:
        assert time.monotonic() < deadline, "the job never started"
        assert executor.poll([handle], 0.25) == []
        running = schedd.query(
            constraint=f'ConveyorKey == "{inv.key}" && JobStatus == 2',
            projection=["ClusterId", "ProcId"],
        )
    job = f"{running[0]['ClusterId']}.{running[0]['ProcId']}"
    # a vacate that reaches the job before its starter is fully up is dropped by
    # HTCondor: repeat it until the job is no longer running
    completions: list[Completion] = []
    while not completions:
        assert time.monotonic() < deadline + 60, "the job was never evicted"
        schedd.act(htcondor2.JobAction.Vacate, job)
        until = time.monotonic() + 3
        while not completions and time.monotonic() < until:
            completions = executor.poll([handle], 0.25)
    completion = completions[0]
    assert completion.state == "lost"
    assert "evicted" in (completion.message or "")
    assert _queued("evict1") == []


def test_close_removes_what_is_still_queued(pool: None, private_dir: Path) -> None:
    executor = HTCondorExecutor({"scratch": str(private_dir / "scratch")})
    handles = [
        executor.submit(_invocation(private_dir, f"slow{i}", "sleep 300", run="close1"))
        for i in range(3)
    ]
    assert executor.poll(handles, 0.5) == []
    assert len(_queued("close1")) == 3
    executor.close()
    assert _queued("close1") == []
    assert list((private_dir / "scratch").iterdir()) == []  # its scratch is gone


PIPELINE = """\
jobs:
  prepare:
    steps:
      - run: mkdir -p out/parts && for i in 1 2 3; do echo "part $i $(cat data/seed.txt)" > out/parts/p$i.txt; done
        inputs: [data/seed.txt]
        outputs: [out/parts]
  summarize:
    needs: [prepare]
    steps:
      - run: cat out/parts/*.txt | sort -r > out/summary.txt && wc -l < out/summary.txt > out/count.txt
        inputs: [out/parts]
        outputs: [out/summary.txt, out/count.txt]
  flags:
    htcondor:
      request_memory: 64
    steps:
      - run: mkdir -p out && echo "$GREETING" > out/flag.txt
        env:
          GREETING: hello from $HOME
        outputs: [out/flag.txt]
"""


def _digests(repo: Repo) -> dict[tuple[str, str], str]:
    return {
        (step_id, out["path"]): out["digest"]
        for step_id, step in repo.steps().items()
        for out in step["outputs"]
    }


def test_cli_run_matches_local_outputs_and_cache(pool: None, repo: Repo) -> None:
    repo.pipeline(PIPELINE)
    repo.write("data/seed.txt", "seed-7\n")
    repo.commit("pipeline")
    local = repo.run("run", "--executor", "local")
    assert local.code == 0, local.out + local.err
    expected = _digests(repo)
    summary = (repo.path / "out/summary.txt").read_text()
    assert len(expected) == 4

    shutil.rmtree(repo.path / "out")
    cached = repo.run("run", "--executor", "htcondor", timeout=300)
    assert cached.code == 0, cached.out + cached.err
    assert all(s["cached"] for s in repo.steps().values())
    assert (repo.path / "out/summary.txt").read_text() == summary

    shutil.rmtree(repo.path / "out")
    forced = repo.run("run", "--executor", "htcondor", "--force", timeout=300)
    assert forced.code == 0, forced.out + forced.err
    run = repo.show()
    assert run["executor"] == "htcondor"
    assert not any(s["cached"] for s in run["steps"])
    assert _digests(repo) == expected
    assert (repo.path / "out/summary.txt").read_text() == summary


def test_cli_reports_a_held_step(pool: None, repo: Repo) -> None:
    repo.pipeline(
        """\
        jobs:
          solve:
            htcondor:
              on_exit_hold: "true"
              on_exit_hold_reason: '"no licence for the solver"'
            steps:
              - run: echo solving
        """
    )
    repo.commit("pipeline")
    result = repo.run("run", "--executor", "htcondor", timeout=300)
    assert result.code == 1, result.out + result.err
    step = repo.steps()["solve.step-1"]
    assert step["status"] == "failed"
    assert "no licence for the solver" in step["error"]
