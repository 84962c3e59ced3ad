"""Steps run by the server cannot reach the server's data (issue 8, item 3).

A member pushes a pipeline whose step tries to read the key file and the database (with
both, it could decrypt every project's secrets and mint itself an admin token), another
project's workspace and repository, and to write outside its own workspace: each attempt
must fail while an ordinary step still works. The ways around the sandbox are closed too:
an output that links to the key, an executor that runs steps outside it, an action's
requirements (pip runs setup.py as the server) and actions from other projects' paths.
The server's files are private to its user, cancel still ends a sandboxed step's whole
process tree, and a project can turn its steps' network off.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, make_server, run_ids

pytestmark = pytest.mark.integration

ATTACKS = {
    "READ-KEY": "cat {data}/server.key",
    "READ-DB": "head -c 16 {data}/server.db",
    "LIST-OTHER-WORK": "ls {data}/projects/other/work/r1",
    "READ-OTHER-WORK": "cat {data}/projects/other/work/r1/notes.txt",
    "READ-OTHER-REPO": "cat {data}/projects/other/repo.git/HEAD",
    "LIST-DATA": "ls {data} | grep server.key",
    "WRITE-DATA": "touch {data}/pwned",
    "READ-OUTSIDE": "ls {outside}",
    "WRITE-OUTSIDE": "touch {outside}/pwned",
    "WRITE-OWN-STATE": "touch {data}/projects/demo/runs/pwned",
}


@pytest.fixture
def project(tmp_path: Path) -> Repo:
    path = tmp_path / "project"
    path.mkdir()
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.email", "test@example.invalid"),
        ("config", "user.name", "Test"),
    ):
        git(path, *args)
    return Repo(path)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    _add_other_project(srv)
    srv.start()
    yield srv
    srv.stop()


def _add_other_project(srv: Server) -> None:
    """A second project with a secret and a run's workspace holding a file."""
    from conveyor.server.api_projects import add_project
    from conveyor.server.config import ServerConfig
    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring
    from conveyor.server.state import ServerState

    config = ServerConfig(data=srv.data)
    state = ServerState(config, open_database(config.database_url), Keyring.load(config.key_path))
    add_project(state, "other")
    state.vault.put("other", "OTHER_TOKEN", state.keyring.encrypt("other-secret-value"))
    state.db.close()
    work = srv.data / "projects" / "other" / "work" / "r1"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("other project's private notes\n")


def push(repo: Repo, server: Server, pipeline: str) -> str:
    repo.pipeline(pipeline)
    repo.commit()
    out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    ids = run_ids(out)
    assert len(ids) == 1, out
    return ids[0]


def _attack_pipeline(data: Path, outside: Path, attacks: dict[str, str]) -> str:
    lines = [
        f"{command.format(data=data, outside=outside)} && echo {marker}-SUCCEEDED || true"
        for marker, command in attacks.items()
    ]
    body = "".join(f"          {line}\n" for line in lines)
    return (
        "jobs:\n"
        "  attack:\n"
        "    steps:\n"
        "      - run: |\n"
        f"{body}"
        "          echo attack-finished\n"
        "  ordinary:\n"
        "    steps:\n"
        "      - run: mkdir -p out && tr a-z A-Z < data.txt > out/upper.txt && touch /tmp/scratch\n"
        "        inputs: [data.txt]\n"
        "        outputs: [out/upper.txt]\n"
        "  pythonic:\n"
        "    steps:\n"
        "      - python: tools:shout\n"
        "        inputs: [data.txt]\n"
        "        result: out/shout.json\n"
    )


@pytest.fixture
def daemon_socket() -> Iterator[Path | None]:
    """A socket in /run, like docker's, podman's or D-Bus's (None: /run is not ours)."""
    path = Path(f"/run/conveyor-test-{os.getpid()}.sock")
    if not os.access("/run", os.W_OK):
        yield None
        return
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        try:
            yield path
        finally:
            path.unlink()


def test_a_step_cannot_read_the_servers_data_or_other_projects(
    project: Repo, server: Server, tmp_path: Path, daemon_socket: Path | None
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    attacks = dict(ATTACKS)
    if daemon_socket is not None:
        attacks["TALK-TO-DAEMON"] = (
            f'{sys.executable} -c "import socket; '
            f"socket.socket(socket.AF_UNIX).connect('{daemon_socket}')\""
        )
    project.write("data.txt", "hello\n")
    project.write("tools.py", "def shout():\n    return open('data.txt').read().upper()\n")
    run_id = push(project, server, _attack_pipeline(server.data, outside, attacks))
    run = server.wait_run(run_id)
    assert run["status"] == "succeeded", run
    with server.api("member") as member:
        log = member.get(f"/runs/{run_id}/logs/attack.step-1").text
        ordinary = member.get(f"/runs/{run_id}/logs/ordinary.step-1").text
        upper = member.get(f"/runs/{run_id}/artifacts/out/upper.txt")
        shout = member.get(f"/runs/{run_id}/artifacts/out/shout.json")
    assert "attack-finished" in log, log
    succeeded = [m for m in attacks if f"{m}-SUCCEEDED" in log]
    assert succeeded == [], f"the step could {succeeded}:\n{log}"
    key = (server.data / "server.key").read_text().strip()
    assert key not in log
    assert not (server.data / "pwned").exists()
    assert not (outside / "pwned").exists()
    assert not (server.data / "projects/demo/runs/pwned").exists()
    # the ordinary step read its input, wrote its output and used its private /tmp
    assert upper.status_code == 200 and upper.text == "HELLO\n"
    assert shout.status_code == 200 and shout.json() == "HELLO\n"
    assert ordinary == ""
    assert not Path("/tmp/scratch").exists()


def test_an_output_link_cannot_carry_the_servers_files_out(project: Repo, server: Server) -> None:
    """The step cannot read the key, but the server stores its outputs: a link to the key
    declared as an output must not make the server copy the key into the results."""
    run_id = push(
        project,
        server,
        "jobs:\n  a:\n    steps:\n"
        f"      - run: mkdir -p out && ln -s {server.data}/server.key out/key.txt\n"
        "        outputs: [out/key.txt]\n",
    )
    run = server.wait_run(run_id)
    key = (server.data / "server.key").read_text().strip()
    with server.api("member") as member:
        artifact = member.get(f"/runs/{run_id}/artifacts/out/key.txt")
    assert key not in artifact.text
    assert run["status"] == "failed", run
    assert "out/key.txt" in run["error"] and "outside the workspace" in run["error"]


def test_steps_cannot_leave_the_sandbox_for_an_executor_the_admin_did_not_allow(
    project: Repo, server: Server
) -> None:
    """Spark's ``local[*]`` (and any executor on this machine) would run a step as the
    server's user, outside the sandbox: a member's ``runs-on`` or a lead's setting must
    not choose one the admin did not allow."""
    run_id = push(
        project,
        server,
        f"jobs:\n  a:\n    runs-on: spark\n    steps:\n      - run: cat {server.data}/server.key\n",
    )
    run = server.wait_run(run_id)
    assert run["status"] == "failed"
    assert "the spark executor, which this server does not allow" in run["error"]
    with server.api("lead") as lead:
        refused = lead.put("/settings", json={"executor": "spark"})
    assert refused.status_code == 400
    assert "does not allow the spark executor" in refused.json()["detail"]


def test_an_actions_requirements_do_not_run_code_outside_the_sandbox(
    project: Repo, server: Server, tmp_path: Path
) -> None:
    """pip runs a local package's setup.py while it builds a native action's environment,
    which happens when the server loads the pipeline: it must not run as the server."""
    marker = tmp_path / "setup-ran"
    project.write(
        ".conveyor/actions/evil/action.yml",
        "name: evil\nruns:\n  python: main.py\n  requirements: requirements.txt\n",
    )
    project.write(".conveyor/actions/evil/main.py", "print('hi')\n")
    project.write(".conveyor/actions/evil/requirements.txt", "./evilpkg\n")
    project.write(
        ".conveyor/actions/evil/evilpkg/setup.py",
        "import pathlib, shutil\n"
        f"shutil.copy('{server.data}/server.key', '{marker}')\n"
        "from setuptools import setup\n"
        "setup(name='evilpkg', version='0.1')\n",
    )
    run_id = push(project, server, "jobs:\n  a:\n    steps:\n      - uses: local/evil\n")
    run = server.wait_run(run_id, timeout=180)
    assert not marker.exists(), "setup.py read the server's key"
    assert run["status"] == "failed"
    assert "does not build Python environments for actions" in run["error"]


def test_actions_come_from_the_project_or_remote_git_only(project: Repo, server: Server) -> None:
    """The server reads a pipeline's actions as its own user: a path may not reach into
    another project's workspace or repository."""
    action = server.data / "projects/other/work/r1/act"
    action.mkdir()
    (action / "action.yml").write_text("name: other\nruns:\n  command: echo OTHER-ACTION\n")
    by_path = push(
        project, server, "jobs:\n  a:\n    steps:\n      - uses: ../../../other/work/r1/act\n"
    )
    run = server.wait_run(by_path)
    assert run["status"] == "failed"
    assert "is outside the project; a server runs only its own" in run["error"]
    repo = server.data / "projects/other/repo.git"
    for form in (f"{repo}", f"file://{repo}"):
        by_repo = push(project, server, f"jobs:\n  a:\n    steps:\n      - uses: {form}@main\n")
        run = server.wait_run(by_repo)
        assert run["status"] == "failed"
        assert "names a repository on the server's disk" in run["error"], form


def test_the_servers_files_are_private_to_its_user(server: Server) -> None:
    assert stat.S_IMODE(server.data.stat().st_mode) == 0o700
    assert stat.S_IMODE((server.data / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((server.data / "server.db").stat().st_mode) == 0o600


def test_a_key_file_made_by_hand_becomes_private(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from conveyor.server.db.database import open_database
    from conveyor.server.keyring import Keyring

    key = tmp_path / "server.key"
    key.write_bytes(Fernet.generate_key())
    key.chmod(0o644)
    Keyring.load(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    db = tmp_path / "server.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    open_database(f"sqlite:///{db}").close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def _processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "pytest" not in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_cancel_ends_every_process_of_a_sandboxed_step(project: Repo, server: Server) -> None:
    marker = "987.6543"  # a sleep no other process runs
    run_id = push(
        project,
        server,
        f"jobs:\n  a:\n    steps:\n      - run: (setsid sleep {marker} &) ; echo started; "
        "sleep 60\n",
    )
    server.wait_run(run_id, until=("running",))
    deadline = time.monotonic() + 20
    while not _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker), "the step did not start"
    with server.api("member") as member:
        assert member.post(f"/runs/{run_id}/cancel").json()["cancel_requested"] is True
    assert server.wait_run(run_id)["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []


def _reach_server(server: Server) -> str:
    return (
        f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', "
        f"{server.port}), 5); print('REACHED')\" || echo UNREACHABLE"
    )


def test_network_is_on_by_default_and_a_lead_can_turn_it_off(project: Repo, server: Server) -> None:
    pipeline = f"jobs:\n  a:\n    steps:\n      - run: {_reach_server(server)}\n"
    first = push(project, server, pipeline)
    assert server.wait_run(first)["status"] == "succeeded"
    with server.api("member") as member:
        assert member.get(f"/runs/{first}/logs/a.step-1").text == "REACHED\n"
        refused = member.put("/settings", json={"network": False})
    assert refused.status_code == 403
    with server.api("lead") as lead:
        bad = lead.put("/settings", json={"network": "sometimes"})
        assert bad.status_code == 422
        answer = lead.put("/settings", json={"network": False})
        assert answer.status_code == 200 and answer.json()["settings"]["network"] is False
    second = push(project, server, pipeline.replace("UNREACHABLE", "UNREACHABLE; true"))
    assert server.wait_run(second)["status"] == "succeeded"
    with server.api("member") as member:
        log = member.get(f"/runs/{second}/logs/a.step-1").text
    assert "ConnectionRefusedError" in log and log.endswith("UNREACHABLE\n")


def test_sandbox_none_is_an_explicit_and_loud_opt_out(project: Repo, tmp_path: Path) -> None:
    srv = make_server(tmp_path, None)
    srv.start(extra=("--sandbox", "none"))
    try:
        run_id = push(
            project, srv, f"jobs:\n  a:\n    steps:\n      - run: test -r {srv.data}/server.key\n"
        )
        assert srv.wait_run(run_id)["status"] == "succeeded"
    finally:
        srv.stop()
    assert "steps run without a sandbox" in srv.logs


def test_the_local_executor_refuses_a_sandbox_it_cannot_start(tmp_path: Path) -> None:
    from conveyor.errors import ExecutorError
    from conveyor.executors.base import Invocation
    from conveyor.executors.local import LocalExecutor

    executor = LocalExecutor({"sandbox": {"program": str(tmp_path / "no-bwrap"), "hide": []}})
    invocation = Invocation("r/s/1", "true", {}, tmp_path, tmp_path / "s.log")
    with pytest.raises(ExecutorError, match="cannot run steps in a sandbox"):
        executor.submit(invocation)


def test_a_directory_hidden_inside_a_readable_one_stays_hidden(tmp_path: Path) -> None:
    from conveyor.executors.sandbox import Sandbox

    home, venv = tmp_path / "home", tmp_path / "home" / "venv"
    data, actions = venv / "data", venv / "data" / "actions"
    for each in (actions, tmp_path / "work"):
        each.mkdir(parents=True)
    sandbox = Sandbox(hide=(str(home), str(data)), readable=(str(venv), str(actions)))
    argv = sandbox.argv(tmp_path / "work", ["true"])
    mounts = [(a, argv[i + 1]) for i, a in enumerate(argv) if a in ("--tmpfs", "--ro-bind")]
    assert mounts[-4:] == [
        ("--tmpfs", str(home)),
        ("--ro-bind", str(venv)),
        ("--tmpfs", str(data)),
        ("--ro-bind", str(actions)),
    ]
    assert argv[argv.index("--bind") + 1] == str(tmp_path / "work")
    assert "--share-net" in argv and argv[-2:] == ["--", "true"]
    assert "--share-net" not in Sandbox(network=False).argv(tmp_path, ["true"])


def test_a_step_that_starts_a_container_is_not_wrapped(tmp_path: Path) -> None:
    """The container runtime isolates an image step and must reach its own files."""
    from conveyor.executors.base import Invocation
    from conveyor.executors.local import LocalExecutor

    executor = LocalExecutor({"sandbox": {"program": str(tmp_path / "no-bwrap")}})
    invocation = Invocation("r/s/1", "echo $HOME", {}, tmp_path, tmp_path / "s.log", contained=True)
    handle = executor.submit(invocation)
    completions = []
    while not completions:
        completions = executor.poll([handle], 5)
    executor.close()
    assert completions[0].exit_code == 0
    assert (tmp_path / "s.log").read_text() == f"{os.environ['HOME']}\n"


def test_a_project_cannot_turn_the_sandbox_off(tmp_path: Path) -> None:
    """The lead's executor options are the project's; the sandbox is the server's."""
    import threading
    from types import SimpleNamespace

    from conveyor.server.config import ServerConfig
    from conveyor.server.worker import Worker

    chosen = {"executors": {"local": {"sandbox": None, "grace_seconds": 1}}, "network": False}
    accounts = SimpleNamespace(settings=lambda name: dict(chosen))
    db = SimpleNamespace(accounts=accounts)
    config = ServerConfig(data=tmp_path / "data")
    worker = Worker(config, db, "w", threading.Event())
    settings = worker._settings("demo", tmp_path, tmp_path / "state")
    local = settings.executors["local"]
    assert local["grace_seconds"] == 1
    assert str(config.data) in local["sandbox"]["hide"]
    assert local["sandbox"]["network"] is False
    assert settings.containers.network == "none"
    unsandboxed = ServerConfig(data=tmp_path, sandbox="none")
    opted_out = Worker(unsandboxed, db, "w", threading.Event())
    assert opted_out._settings("demo", tmp_path, tmp_path).executors["local"]["sandbox"] is None


def test_cli_runs_stay_unsandboxed(project: Repo, tmp_path: Path) -> None:
    """A laptop run is the user's own code: it may read the user's own files."""
    private = tmp_path / "private.txt"
    private.write_text("mine\n")
    project.pipeline(f"jobs:\n  a:\n    steps:\n      - run: cat {private}\n")
    project.commit()
    result = project.run("run")
    assert result.code == 0, result.err
