"""Shared-filesystem mode of the HTCondor executor, without a pool: the submit
description of a job run in place, the facts read from job events, the setting."""

from __future__ import annotations

import base64
import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from conveyor.errors import ExecutorError, ProjectError
from conveyor.executors.base import Invocation
from conveyor.executors.htcondor.description import check_outputs, plan_clusters
from conveyor.executors.htcondor.events import JobFact, job_fact
from conveyor.executors.htcondor.inplace import InPlace
from conveyor.executors.htcondor.jobs import Job
from conveyor.executors.htcondor.pool import client_params
from conveyor.executors.htcondor.settings import HTCondorSettings
from conveyor.executors.htcondor.shared import COMMON_SHARED, shared_job_commands


def _invocation(workdir: Path, name: str, command: str) -> Invocation:
    return Invocation(
        key=f"run1/{name}/1",
        command=command,
        env={"GREETING": "hi $there", "LINES": "a\nb"},
        workdir=workdir,
        log_path=workdir / "logs" / f"{name}.log",
        outputs=("out/x.txt",),
    )


def _wrapper(commands: dict[str, str]) -> str:
    encoded = re.search(r"conveyor-job (\S+)\"$", commands["arguments"])
    assert encoded is not None, commands["arguments"]
    return base64.b64decode(encoded[1]).decode()


def test_a_job_in_place_runs_in_the_project_and_transfers_nothing(tmp_path: Path) -> None:
    job_dir = tmp_path / "scratch" / "j1"
    commands = shared_job_commands(_invocation(tmp_path, "s", "echo x"), job_dir)
    assert commands["initialdir"] == str(tmp_path)
    assert commands["output"] == str(job_dir / "stdout")
    assert commands["error"] == str(job_dir / "stderr")
    assert COMMON_SHARED["should_transfer_files"] == "NO"
    assert not any("transfer_input" in name or "stream" in name for name in commands)
    assert "transfer_output_files" not in COMMON_SHARED


def test_the_wrapper_in_place_runs_the_command_and_keeps_its_exit_code(tmp_path: Path) -> None:
    job_dir = tmp_path / "j1"
    (job_dir / ".conveyor-out").mkdir(parents=True)
    command = 'echo "$GREETING"; printf "%s\\n" "$LINES"; echo oops >&2; exit 7'
    wrapper = _wrapper(shared_job_commands(_invocation(tmp_path, "s", command), job_dir))
    # LINES cannot travel in the submit language: the wrapper exports it
    env = {"PATH": "/usr/bin:/bin", "GREETING": "hi $there"}
    done = subprocess.run(
        ["/bin/sh", "-c", wrapper], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 7
    assert done.stdout == "hi $there\na\nb\noops\n"  # stderr merged, in order
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j1"]  # nothing left in the project


def test_python_steps_say_their_interpreter_into_the_job_dir(tmp_path: Path) -> None:
    job_dir = tmp_path / "j1"
    (job_dir / ".conveyor-out").mkdir(parents=True)
    inv = _invocation(tmp_path, "py", '"${CONVEYOR_PYTHON:-python3}" -c "print(1)"')
    wrapper = _wrapper(shared_job_commands(inv, job_dir))
    assert "PYTHONUNBUFFERED" in wrapper
    subprocess.run(["/bin/sh", "-c", wrapper], cwd=tmp_path, check=True, capture_output=True)
    said = (job_dir / ".conveyor-out" / ".conveyor-python").read_text().split()
    assert said[0].endswith("python3") and re.fullmatch(r"\d+\.\d+\.\d+", said[1])


def test_jobs_in_place_share_a_cluster(tmp_path: Path) -> None:
    staged = [
        (
            f"run1/s{i}/1",
            shared_job_commands(_invocation(tmp_path, f"s{i}", "true"), tmp_path / f"j{i}"),
        )
        for i in range(3)
    ]
    plans = plan_clusters(staged, {**COMMON_SHARED, "log": "/x/events.log"})
    assert len(plans) == 1 and len(plans[0].members) == 3
    description = plans[0].description
    assert "$(ProcId)" in description["output"]  # one macro per proc, not one cluster each
    assert [description[k] for k in sorted(description) if k.startswith("conveyor_v")].count(
        str(tmp_path / "j1" / "stdout")
    ) == 1


@pytest.mark.parametrize(
    ("type_name", "attrs", "fact"),
    [
        ("EXECUTE", {"SlotName": "slot1_1@vm"}, JobFact("3.1", "started", text="slot1_1@vm")),
        (
            "JOB_TERMINATED",
            {"TerminatedNormally": True, "ReturnValue": 3},
            JobFact("3.1", "exited", 3),
        ),
        (
            "JOB_TERMINATED",
            {"TerminatedNormally": False, "TerminatedBySignal": 9},
            JobFact("3.1", "signalled", 9),
        ),
        ("JOB_HELD", {"HoldReason": "no licence"}, JobFact("3.1", "held", text="no licence")),
        ("JOB_ABORTED", {"Reason": "by admin"}, JobFact("3.1", "aborted", text="by admin")),
        ("JOB_EVICTED", {}, JobFact("3.1", "evicted", text="no reason given")),
        ("SUBMIT", {}, None),
        ("IMAGE_SIZE", {"Size": 12}, None),
    ],
)
def test_job_events_become_facts(
    type_name: str, attrs: dict[str, object], fact: JobFact | None
) -> None:
    assert job_fact(type_name, "3.1", attrs) == fact


def test_the_filesystem_setting_is_checked() -> None:
    assert HTCondorSettings.from_mapping({}).filesystem == "spool"
    assert HTCondorSettings.from_mapping({"filesystem": "shared"}).filesystem == "shared"
    with pytest.raises(ProjectError, match="filesystem must be one of spool, shared, auto"):
        HTCondorSettings.from_mapping({"filesystem": "nfs"})


@pytest.mark.parametrize("name", [".conveyor-log", ".conveyor-code", ".conveyor-out/x"])
def test_outputs_named_like_the_wrappers_files_are_refused(name: str) -> None:
    with pytest.raises(ExecutorError, match="keeps for itself"):
        check_outputs(["fine.txt", name])
    check_outputs(["out/.conveyor-log", "conveyor-log"])


def test_client_settings_become_htcondor_client_configuration() -> None:
    settings = HTCondorSettings.from_mapping(
        {
            "token_dir": "/etc/tokens.d",
            "scitoken_file": "~/.scitoken",
            "auth_methods": "scitokens, idtokens kerberos",
        }
    )
    params = client_params(settings)
    assert params["SEC_TOKEN_DIRECTORY"] == "/etc/tokens.d"
    assert params["SCITOKENS_FILE"] == os.path.expanduser("~/.scitoken")
    assert params["SEC_CLIENT_AUTHENTICATION_METHODS"] == "SCITOKENS, IDTOKENS, KERBEROS"
    assert client_params(HTCondorSettings()) == {}
    with pytest.raises(ProjectError, match="IDTOKEN is not an HTCondor authentication method"):
        HTCondorSettings.from_mapping({"auth_methods": "IDTOKEN"})


class _FakePool:
    """What InPlace asks of the pool: the event log's new events, the jobs' owner."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, object]]] = []

    def open_events(self, path: Path) -> object:
        return path

    def read_events(self, reader: object, path: Path) -> list[tuple[str, str, dict[str, object]]]:
        new, self.events = self.events, []
        return new

    def owner(self) -> str:
        return pwd.getpwuid(os.geteuid()).pw_name


def test_the_event_log_ends_jobs_and_the_queue_check_finds_vanished_ones(tmp_path: Path) -> None:
    pool = _FakePool()
    settings = HTCondorSettings.from_mapping({"scratch": str(tmp_path / "scratch")})
    in_place = InPlace(pool, settings, tmp_path)  # type: ignore[arg-type]
    jobs = [
        Job(_invocation(tmp_path, f"s{i}", "true"), f"j{i}", [], job_id=f"5.{i}") for i in range(3)
    ]
    staged = in_place.stage(jobs, lambda job, exc: pytest.fail(str(exc)))
    assert [job for job, _ in staged] == jobs
    assert in_place.common()["log"].endswith("/events.log")
    pool.events = [
        ("SUBMIT", "5.0", {}),
        ("EXECUTE", "5.0", {"SlotName": "slot1_1@vm"}),
        ("JOB_TERMINATED", "5.0", {"TerminatedNormally": True, "ReturnValue": 0}),
        ("JOB_HELD", "5.1", {"HoldReason": "no licence"}),
        ("EXECUTE", "9.9", {"SlotName": "someone else's"}),
    ]
    asked: list[str] = []

    def explain(job: Job, now: float) -> str | None:
        asked.append(job.name)
        return None

    completed, ended = in_place.refresh(jobs, lambda: {"5.1"}, explain)
    assert [(job.name, fact.kind, fact.value) for job, fact in completed] == [("j0", "exited", 0)]
    assert jobs[0].started and jobs[0].ad == {"LastRemoteHost": "slot1_1@vm"}
    assert [(job.name, state, why) for job, state, why in ended] == [
        ("j1", "error", "HTCondor held the job: no licence")
    ]
    assert asked == ["j2"] and jobs[2].missing == 1  # not queued, once: not yet lost
    # between two queue checks the log alone is read: nothing new, no question
    assert in_place.refresh([jobs[2]], lambda: pytest.fail("asked too soon"), explain) == ([], [])
    in_place._next_check = 0.0
    completed, ended = in_place.refresh([jobs[2]], set, explain)
    assert completed == [] and [(j.name, s) for j, s, _ in ended] == [("j2", "lost")]
