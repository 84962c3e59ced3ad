"""Image steps through real podman (scripts/engines/podman.sh builds the base image once)
and, without a runtime, on the host or refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

HOW = 'scripts/engines/podman.sh up && eval "$(scripts/engines/podman.sh env)"'


@pytest.fixture
def image() -> str:
    """The base image podman.sh built (named by CONVEYOR_TEST_PODMAN_IMAGE)."""
    name = os.environ.get("CONVEYOR_TEST_PODMAN_IMAGE")
    if not name or shutil.which("podman") is None:
        engine_missing("podman", f"podman is not configured for tests: {HOW}")
    assert name is not None
    if podman("image", "exists", name).returncode != 0:
        engine_missing("podman", f"podman has no image {name}: {HOW}")
    return name


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=120, check=False
    )


def containers_of(run_id: str) -> list[str]:
    return podman("ps", "-aq", "--filter", f"label=conveyor.run={run_id}").stdout.split()


def pipeline(image: str, run: str, extra: str = "") -> str:
    lines = "\n".join(f"          {line}" for line in run.splitlines())
    return f"""\
name: boxed
jobs:
  build:
    steps:
      - id: inside
        image: {image}
        env:
          GREETING: hello
{extra}        outputs: [out/info.txt]
        run: |
{lines}
"""


INFO = """\
mkdir -p out
echo "$GREETING ${HOST_ONLY:-unset} $PWD" > out/info.txt
if command -v python3 >/dev/null; then echo python >> out/info.txt; else echo no-python >> out/info.txt; fi
"""


def test_a_step_runs_in_its_image_keyed_and_recorded_by_its_id(repo: Repo, image: str) -> None:
    repo.write("conveyor.yml", pipeline(image, INFO))
    repo.commit()
    result = repo.run("run", env={"HOST_ONLY": "leaked"})
    assert result.code == 0, result.err
    # the image has no Python (the host has): it ran inside; the caller's variables stay out
    info = (repo.path / "out/info.txt").read_text().splitlines()
    assert info == [f"hello unset {repo.path}", "no-python"]
    step = repo.steps()["build.inside"]
    expected = podman("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    assert step["image"] == image
    assert step["container"] == "podman"
    assert step["image_id"] == f"sha256:{expected}"
    assert f"image {image}  (podman {expected[:12]})" in repo.run("show").out
    again = repo.run("run")
    assert again.code == 0, again.err
    assert repo.steps()["build.inside"]["cached"]


@dataclass
class Tagged:
    """A tag of our own and a build context to move it; every image built is removed."""

    base: str
    tag: str
    context: Path
    built: list[str] = field(default_factory=list)

    def build(self, stamp: str) -> None:
        (self.context / "Containerfile").write_text(
            f"FROM {self.base}\nRUN echo {stamp} > /stamp\n"
        )
        done = podman("build", "-q", "-t", self.tag, str(self.context))
        assert done.returncode == 0, done.stderr
        self.built.append(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def tagged(image: str, tmp_path: Path) -> Iterator[Tagged]:
    context = tmp_path / "context"
    context.mkdir()
    made = Tagged(image, f"localhost/conveyor-test-{uuid.uuid4().hex[:8]}:v1", context)
    try:
        yield made
    finally:
        podman("rmi", "-f", *made.built)


def test_a_new_image_behind_the_same_tag_runs_the_step_again(repo: Repo, tagged: Tagged) -> None:
    tagged.build("one")
    repo.write("conveyor.yml", pipeline(tagged.tag, "mkdir -p out\ncat /stamp > out/info.txt"))
    repo.commit()
    assert repo.run("run").code == 0
    assert (repo.path / "out/info.txt").read_text() == "one\n"
    tagged.build("two")
    result = repo.run("run")
    assert result.code == 0, result.err
    assert not repo.steps()["build.inside"]["cached"]
    assert (repo.path / "out/info.txt").read_text() == "two\n"
    why = repo.run("why", "build.inside")
    assert "where the image runs changed" in why.out


def test_pull_policies_are_honoured(repo: Repo, image: str) -> None:
    missing = f"localhost/conveyor-missing-{uuid.uuid4().hex[:8]}:v1"
    repo.write("conveyor.yml", pipeline(missing, "true", "        pull: never\n"))
    repo.commit()
    assert repo.run("run").code == 1
    error = repo.steps()["build.inside"]["error"]
    assert error == (
        f"step build.inside: the image {missing} is not on this machine and `pull: never` "
        f"forbids pulling it; build or pull it first (podman pull {missing})"
    )
    # always: a pull is attempted even though the image is here (no registry: it fails)
    repo.write("conveyor.yml", pipeline(image, "true", "        pull: always\n"))
    repo.commit()
    assert repo.run("run").code == 1
    error = repo.steps()["build.inside"]["error"]
    assert error.startswith(f"step build.inside: podman could not pull the image {image}: ")


def wait_for_container(repo: Repo, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        names = podman("ps", "--format", "{{.Labels}}", "--filter", "label=conveyor.run").stdout
        runs = [line for line in names.splitlines() if "conveyor.run" in line]
        for line in runs:
            run_id = line.split("conveyor.run:", 1)[1].split()[0].rstrip("]")
            if (repo.path / ".conveyor" / "logs" / run_id).is_dir():
                return run_id
        time.sleep(0.2)
    raise AssertionError("no container started")


def test_cancel_removes_the_container(repo: Repo, image: str) -> None:
    repo.write("conveyor.yml", pipeline(image, "sleep 120"))
    repo.commit()
    proc = repo.popen("run")
    run_id = wait_for_container(repo, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert repo.steps(run_id)["build.inside"]["status"] == "cancelled"
    assert containers_of(run_id) == []


def test_a_killed_run_leaves_no_container_once_marked(repo: Repo, image: str) -> None:
    repo.write("conveyor.yml", pipeline(image, "sleep 120"))
    repo.commit()
    proc = repo.popen("run")
    run_id = wait_for_container(repo, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert containers_of(run_id) != []  # the container outlives the conveyor process...
    assert repo.run("runs").code == 0  # ...until the run is marked interrupted
    assert repo.show(run_id)["status"] == "interrupted"
    assert containers_of(run_id) == []


# -- without a runtime (no podman needed) ----------------------------------------------
def test_without_a_runtime_an_image_step_says_how_to_get_one(repo: Repo) -> None:
    repo.write("conveyor.yml", pipeline("alpine:3", "true"))
    repo.write(".conveyor/config.toml", '[containers]\nruntime = "none"\n')
    repo.commit()
    assert repo.run("run").code == 1
    error = repo.steps()["build.inside"]["error"]
    assert "no container runtime is configured" in error
    assert 'on_missing = "host"' in error
    assert "install podman (`apt-get install podman runc`" in error


def test_the_host_fallback_is_recorded_as_such(repo: Repo) -> None:
    repo.write("conveyor.yml", pipeline("alpine:3", INFO))
    repo.write(".conveyor/config.toml", '[containers]\nruntime = "none"\non_missing = "host"\n')
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    assert (repo.path / "out/info.txt").read_text().splitlines()[1] == "python"
    step = repo.steps()["build.inside"]
    assert (step["image"], step["container"]) == ("alpine:3", "host")
    assert "image_id" not in step


@pytest.fixture
def socket_url(image: str, tmp_path: Path) -> Iterator[str]:
    """A docker-compatible API socket: `podman system service` on a Unix socket."""
    url = f"unix://{tmp_path}/podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "podman.sock").exists():
            assert service.poll() is None, "podman system service ended"
            assert time.monotonic() < deadline, "no socket after 30 s"
            time.sleep(0.1)
        yield url
    finally:
        service.terminate()
        service.wait(timeout=30)


def test_a_socket_url_runs_the_step_through_the_api(
    repo: Repo, image: str, socket_url: str
) -> None:
    repo.write("conveyor.yml", pipeline(image, INFO))
    repo.write(".conveyor/config.toml", f'[containers]\nruntime = "{socket_url}"\n')
    repo.commit()
    result = repo.run("run", env={"HOST_ONLY": "leaked"})
    assert result.code == 0, result.err
    info = (repo.path / "out/info.txt").read_text().splitlines()
    assert info == [f"hello unset {repo.path}", "no-python"]
    step = repo.steps()["build.inside"]
    expected = "docker" if shutil.which("docker") else "podman"
    assert step["container"] == f"{expected}@{socket_url}"
    assert step["image_id"].startswith("sha256:")
