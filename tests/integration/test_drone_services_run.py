"""Drone's services and detached steps, run for real: in a pod of real podman (a step
reaches the service by its name), as host processes without a container runtime, and
ended whatever happens to the run (a failed step, a killed ``conveyor``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests import ports
from tests.integration.conftest import CONVEYOR, Repo
from tests.integration.test_containers import image, podman  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

# the base image has perl and bash, no python: a one-line HTTP server in perl
SERVER = (
    "perl -MIO::Socket::INET -e '$$|=1; $$s=IO::Socket::INET->new(LocalPort=>8000,Listen=>5,"
    'ReuseAddr=>1) or die; print "listening\\n"; while($$c=$$s->accept)'
    '{while(<$$c>=~/\\S/){} print $$c "HTTP/1.0 200 OK\\r\\n\\r\\nhello from the service\\n"; close $$c}\''
)
# bash's /dev/tcp: wait until the service listens, then one request
FETCH = (
    "bash -c 'until (exec 3<>/dev/tcp/{host}/8000) 2>/dev/null; do sleep 0.1; done; "
    'exec 3<>/dev/tcp/{host}/8000; printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3\' > got.txt'
)


def pods_of(run_id: str) -> list[str]:
    found = podman("pod", "ps", "-q", "--filter", f"label=conveyor.run={run_id}")
    return found.stdout.split()


def containers_of(run_id: str) -> list[str]:
    return podman("ps", "-aq", "--filter", f"label=conveyor.run={run_id}").stdout.split()


def service_pipeline(name: str, last: str = "") -> str:
    return f"""\
kind: pipeline
name: ci
steps:
  - name: fetch
    image: {name}
    commands:
      - {FETCH.format(host="web")}
{last}
services:
  - name: web
    image: {name}
    commands:
      - {SERVER}
"""


def test_a_step_reaches_a_service_by_its_name_and_the_pod_is_gone_after(
    repo: Repo,
    image: str,  # noqa: F811
) -> None:
    repo.write(".drone.yml", service_pipeline(image))
    repo.commit()
    result = repo.run("run", timeout=180)
    assert result.code == 0, result.err + result.out
    assert "hello from the service" in (repo.path / "got.txt").read_text()
    run_id = repo.show()["id"]
    assert pods_of(run_id) == []
    assert containers_of(run_id) == []
    log = repo.path / ".conveyor" / "logs" / run_id / "services" / "web.log"
    assert "listening" in log.read_text()


def test_a_detached_step_is_reachable_like_a_service(repo: Repo, image: str) -> None:  # noqa: F811
    repo.write(
        ".drone.yml",
        f"""\
kind: pipeline
name: ci
steps:
  - name: cache
    image: {image}
    detach: true
    commands:
      - {SERVER}
  - name: ping
    image: {image}
    depends_on: [cache]
    commands:
      - {FETCH.format(host="cache")}
""",
    )
    repo.commit()
    result = repo.run("run", timeout=180)
    assert result.code == 0, result.err + result.out
    assert "hello from the service" in (repo.path / "got.txt").read_text()


def test_the_pod_is_removed_when_a_step_fails(repo: Repo, image: str) -> None:  # noqa: F811
    failing = f"  - name: broken\n    image: {image}\n    commands: [exit 3]\n"
    repo.write(".drone.yml", service_pipeline(image, failing))
    repo.commit()
    result = repo.run("run", timeout=180)
    assert result.code != 0
    run_id = repo.show()["id"]
    assert pods_of(run_id) == []
    assert containers_of(run_id) == []


def test_a_killed_runner_leaves_a_pod_the_next_command_removes(
    repo: Repo,
    image: str,  # noqa: F811
) -> None:
    hang = f"  - name: hang\n    image: {image}\n    commands: [sleep 300]\n"
    repo.write(".drone.yml", service_pipeline(image, hang))
    repo.commit()
    proc = subprocess.Popen(
        [*CONVEYOR, "run"], cwd=repo.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        run_id = _wait_for_pod(repo.path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert pods_of(run_id) != []
    result = repo.run("runs")
    assert result.code == 0, result.err
    assert pods_of(run_id) == []
    assert containers_of(run_id) == []


def test_ctrl_c_ends_the_run_and_its_pod(repo: Repo, image: str) -> None:  # noqa: F811
    hang = f"  - name: hang\n    image: {image}\n    commands: [sleep 300]\n"
    repo.write(".drone.yml", service_pipeline(image, hang))
    repo.commit()
    proc = subprocess.Popen(
        [*CONVEYOR, "run"], cwd=repo.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        run_id = _wait_for_pod(repo.path)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert pods_of(run_id) == []
    assert containers_of(run_id) == []
    assert repo.show()["status"] == "cancelled"


def _wait_for_pod(root: Path) -> str:
    logs = root / ".conveyor" / "logs"
    for _ in range(300):
        for run_dir in logs.glob("*") if logs.exists() else ():
            if pods_of(run_dir.name) and (run_dir / "ci.hang.log").exists():
                return run_dir.name
        time.sleep(0.2)
    raise AssertionError("the run's pod never appeared")


def _free_port() -> int:
    return ports.free_port()


FETCH_PY = """\
import sys, time, urllib.request
for _ in range(300):
    try:
        sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())
        break
    except OSError:
        time.sleep(0.1)
"""


def host_pipeline(repo: Repo, port: int, last: str = "") -> str:
    repo.write("fetch.py", FETCH_PY)
    repo.write("served.txt", "from the host service\n")
    repo.write(".conveyor/config.toml", '[containers]\nruntime = "none"\n')
    # $$: Drone's literal $, so the shell reads the variable Conveyor gives the step
    url = f"http://$${{CONVEYOR_SERVICE_WEB}}:{port}/served.txt"
    return f"""\
kind: pipeline
type: exec
name: ci
steps:
  - name: fetch
    commands:
      - python3 fetch.py "{url}" > got.txt
{last}
services:
  - name: web
    commands:
      - exec python3 -m http.server {port} --bind 127.0.0.1
"""


def test_without_a_runtime_a_service_runs_on_the_host_at_localhost(repo: Repo) -> None:
    port = _free_port()
    repo.write(".drone.yml", host_pipeline(repo, port))
    repo.commit()
    result = repo.run("run", timeout=180)
    assert result.code == 0, result.err + result.out
    assert (repo.path / "got.txt").read_text() == "from the host service\n"
    run_id = repo.show()["id"]
    log = repo.path / ".conveyor" / "logs" / run_id / "services" / "web.log"
    assert "GET /served.txt" in log.read_text()
    _assert_closed(port)


def test_a_host_service_ends_when_a_step_fails(repo: Repo) -> None:
    port = _free_port()
    broken = "  - name: broken\n    commands: [exit 3]\n"
    repo.write(".drone.yml", host_pipeline(repo, port, broken))
    repo.commit()
    result = repo.run("run", timeout=180)
    assert result.code != 0
    _assert_closed(port)


def test_a_service_without_commands_and_no_runtime_fails_the_run_with_a_sentence(
    repo: Repo,
) -> None:
    repo.write(".conveyor/config.toml", '[containers]\nruntime = "none"\n')
    repo.write(
        ".drone.yml",
        "kind: pipeline\nname: ci\nsteps:\n  - name: a\n    commands: [echo a]\n"
        "services:\n  - name: db\n    image: postgres\n",
    )
    repo.commit()
    result = repo.run("run")
    assert result.code != 0
    assert "service db" in result.err + result.out
    assert "podman" in result.err + result.out
    assert "Traceback" not in result.err
    assert repo.show()["status"] == "failed"


def _assert_closed(port: int) -> None:
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the service still listens"


def test_host_service_processes_are_not_left_behind(repo: Repo) -> None:
    """No ``http.server`` of this repository remains once the run is over."""
    port = _free_port()
    repo.write(".drone.yml", host_pipeline(repo, port))
    repo.commit()
    assert repo.run("run", timeout=180).code == 0
    mine = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and f"http.server {port}" in _cmdline(pid)
    ]
    assert mine == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
