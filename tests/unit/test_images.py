"""Image steps without processes: finding the runtime, pulling, wrapping, placing, keys."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from conveyor.errors import ProjectError
from conveyor.execute.images import (
    BUILTIN_PLUGINS,
    ContainerError,
    ContainerRuntime,
    container_name,
    find_runtime,
    place_step,
    runtime_from_label,
)
from conveyor.plan.fingerprint import explain_change, fingerprint, fingerprint_parts
from conveyor.plan.model import StepPlan
from conveyor.sdk.settings import Settings

IMAGE_ID = "sha256:" + "ab" * 32


class FakeCli:
    """Answers ``image inspect`` from a set of present images; records every call."""

    def __init__(self, present: set[str], pull_ok: bool = True) -> None:
        self.present = present
        self.pull_ok = pull_ok
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        args = list(argv)
        self.calls.append(args)
        if args[1:3] == ["image", "inspect"]:
            if args[-1] in self.present:
                return subprocess.CompletedProcess(args, 0, IMAGE_ID + "\n", "")
            return subprocess.CompletedProcess(args, 125, "", "Error: no such image")
        if args[1] == "pull":
            if self.pull_ok:
                self.present.add(args[-1])
                return subprocess.CompletedProcess(args, 0, "", "")
            return subprocess.CompletedProcess(args, 125, "", "Trying...\nError: no registry")
        raise AssertionError(args)

    def verbs(self) -> list[str]:
        return [c[1] if c[1] == "pull" else "inspect" for c in self.calls]


def runtime(cli: FakeCli) -> ContainerRuntime:
    return ContainerRuntime("podman", ("podman",), run_cli=cli)


def step(**extra: object) -> StepPlan:
    fields: dict[str, object] = {"id": "j.s", "job": "j", "name": "s", "command": "make"}
    fields.update(extra)
    return StepPlan(**fields)  # type: ignore[arg-type]


# -- finding a runtime -------------------------------------------------------------
def which(*present: str) -> Callable[[str], str | None]:
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_auto_prefers_podman_then_docker() -> None:
    assert find_runtime("auto", which("podman", "docker")) == ContainerRuntime(
        "podman", ("podman",)
    )
    assert find_runtime("auto", which("docker")) == ContainerRuntime("docker", ("docker",))
    assert find_runtime("auto", which()) is None
    assert find_runtime("none", which("podman")) is None
    assert find_runtime("podman", which("docker")) is None


def test_a_socket_url_goes_through_docker_or_podman_remote() -> None:
    url = "unix:///run/podman/podman.sock"
    found = find_runtime(url, which("docker", "podman"))
    assert found == ContainerRuntime("docker", ("docker", "-H", url))
    assert found is not None and found.label == f"docker@{url}"
    found = find_runtime(url, which("podman"))
    assert found == ContainerRuntime("podman", ("podman", "--url", url))
    assert runtime_from_label("podman") in (None, ContainerRuntime("podman", ("podman",)))


# -- pull policies -----------------------------------------------------------------
def test_if_not_exists_pulls_only_a_missing_image() -> None:
    cli = FakeCli({"alpine"})
    assert runtime(cli).image_id("alpine", None) == IMAGE_ID
    assert cli.verbs() == ["inspect"]
    cli = FakeCli(set())
    assert runtime(cli).image_id("alpine", "if-not-exists") == IMAGE_ID
    assert cli.verbs() == ["inspect", "pull", "inspect"]


def test_always_pulls_and_never_never_does() -> None:
    cli = FakeCli({"alpine"})
    runtime(cli).image_id("alpine", "always")
    assert cli.verbs() == ["pull", "inspect"]
    cli = FakeCli(set())
    with pytest.raises(ContainerError, match="not on this machine and `pull: never`"):
        runtime(cli).image_id("alpine", "never")
    assert cli.verbs() == ["inspect"]


def test_an_image_is_resolved_once_per_runtime() -> None:
    cli = FakeCli(set())
    found = runtime(cli)
    assert found.image_id("alpine", "always") == found.image_id("alpine", "always")
    assert cli.verbs() == ["pull", "inspect"]


def test_a_failed_pull_says_why_in_one_line() -> None:
    with pytest.raises(ContainerError) as caught:
        runtime(FakeCli(set(), pull_ok=False)).image_id("ghcr.io/x/y:1", "always")
    assert str(caught.value) == "podman could not pull the image ghcr.io/x/y:1: Error: no registry"


# -- the wrapped command -------------------------------------------------------------
def test_wrap_passes_declared_names_only_and_mounts_the_project(tmp_path: Path) -> None:
    text = runtime(FakeCli(set())).wrap(
        IMAGE_ID, "echo $A > out.txt", ["B", "A"], tmp_path, "conveyor-r-j.s-1", "r"
    )
    remove, trap, run, wait = text.splitlines()
    assert remove == (
        "conveyor_remove() { podman rm -f -t 0 conveyor-r-j.s-1 >/dev/null 2>&1 || :; }"
    )
    assert trap == "trap conveyor_remove TERM INT HUP"
    assert wait == "wait $!"
    argv = shlex.split(run)
    assert argv[-1] == "&"
    argv = argv[:-1]
    root = str(tmp_path)
    assert argv[:4] == ["podman", "run", "--rm", "--name"]
    assert argv[argv.index("--label") + 1] == "conveyor.run=r"
    assert argv[argv.index("--network") + 1] == "none"
    assert argv[argv.index("-v") + 1] == f"{root}:{root}"
    assert argv[argv.index("-w") + 1] == root
    options = argv[: argv.index(IMAGE_ID)]
    assert [options[i + 1] for i, a in enumerate(options) if a == "-e"] == ["A", "B"]
    assert argv[-5:] == [IMAGE_ID, "sh", "-e", "-c", "echo $A > out.txt"]


def test_host_networking_is_the_only_alternative_to_none(tmp_path: Path) -> None:
    found = find_runtime("auto", which("podman"), network="host")
    assert found is not None
    argv = shlex.split(found.wrap(IMAGE_ID, "true", [], tmp_path, "n", "r").splitlines()[2])
    assert argv[argv.index("--network") + 1] == "host"
    (tmp_path / "config.toml").write_text('[containers]\nnetwork = "bridge"\n')
    with pytest.raises(ProjectError, match=r'containers\.network is "none" or "host"'):
        Settings.load(tmp_path)
    (tmp_path / "config.toml").write_text('[containers]\nruntime = "docker"\nnetwork = "host"\n')
    loaded = Settings.load(tmp_path).containers
    assert (loaded.runtime, loaded.network, loaded.on_missing) == ("docker", "host", "fail")


def test_a_plugin_image_without_commands_keeps_its_entrypoint(tmp_path: Path) -> None:
    text = runtime(FakeCli(set())).wrap(IMAGE_ID, "", [], tmp_path, "n", "r")
    assert shlex.split(text.splitlines()[2])[-2:] == [IMAGE_ID, "&"]


def test_container_names_are_safe_and_unique_per_attempt() -> None:
    assert container_name("abc", "train.fit[lr=0.1]", 2) == "conveyor-abc-train.fit_lr_0.1_-2"


# -- placing a step --------------------------------------------------------------------
def test_a_step_without_an_image_keeps_its_key() -> None:
    placed = place_step(step(), runtime(FakeCli(set())), "fail", {}, "local", True)
    assert (placed.command, placed.where, placed.key, placed.refusal) == ("make", None, None, None)
    parts = fingerprint_parts("make", {}, {}, {}, {}, "env", container=placed.key)
    assert parts == fingerprint_parts("make", {}, {}, {}, {}, "env")


def test_an_image_step_runs_in_the_runtime_with_its_id() -> None:
    placed = place_step(
        step(image="alpine"), runtime(FakeCli({"alpine"})), "fail", {}, "local", True
    )
    assert placed.where == "container"
    assert placed.image_id == IMAGE_ID
    assert placed.key == f"container {IMAGE_ID}"
    facts = placed.provenance(step(image="alpine"), runtime(FakeCli(set())).label)
    assert facts["container"] == "podman"
    assert facts["image_id"] == IMAGE_ID


def test_plugin_images_run_their_host_command() -> None:
    plugin = step(image="plugins/slack:1.4", command="")
    placed = place_step(plugin, None, "fail", {}, "local", True)
    assert placed.where == "plugin"
    assert placed.command == BUILTIN_PLUGINS["plugins/slack"]
    assert placed.command.endswith(" -m conveyor.plugins.slack")
    mine = place_step(plugin, None, "fail", {"plugins/slack": "./notify.sh"}, "local", True)
    assert mine.command == "./notify.sh"  # the project's mapping wins
    for name in ("notify/slack", "trigger/circleci", "webhook", "plugins/webhook"):
        assert name in BUILTIN_PLUGINS


def test_without_a_runtime_the_refusal_says_how_to_install_one() -> None:
    placed = place_step(step(image="alpine"), None, "fail", {}, "local", True)
    assert placed.refusal is not None
    assert "no container runtime is configured" in placed.refusal
    assert "apt-get install podman runc" in placed.refusal
    host = place_step(step(image="alpine"), None, "host", {}, "local", True)
    assert (host.where, host.refusal, host.key) == ("host", None, "host")


def test_batch_executors_refuse_image_steps() -> None:
    placed = place_step(
        step(image="alpine"), runtime(FakeCli({"alpine"})), "fail", {}, "htcondor", False
    )
    assert placed.refusal is not None
    assert "the htcondor executor does not start containers" in placed.refusal
    host = place_step(step(image="alpine"), runtime(FakeCli(set())), "host", {}, "spark", False)
    assert (host.where, host.command, host.refusal) == ("host", "make", None)


def test_a_missing_image_is_a_step_failure_not_a_crash() -> None:
    placed = place_step(
        step(image="alpine", pull="never"), runtime(FakeCli(set())), "fail", {}, "local", True
    )
    assert placed.refusal is not None
    assert placed.refusal.startswith("step j.s: the image alpine is not on this machine")


# -- the fingerprint ---------------------------------------------------------------------
def parts(container: str | None) -> dict[str, object]:
    return fingerprint_parts("make", {}, {}, {}, {}, "env", image="alpine", container=container)


def test_the_image_id_is_part_of_the_key() -> None:
    first, second = parts(f"container {IMAGE_ID}"), parts("container sha256:" + "cd" * 32)
    assert fingerprint(first) != fingerprint(second)
    assert fingerprint(parts("host")) != fingerprint(first)
    assert explain_change(first, second) == [
        f"where the image runs changed (container {IMAGE_ID} -> container sha256:{'cd' * 32})"
    ]


def test_steps_without_an_image_keep_their_key() -> None:
    plain = fingerprint_parts("make", {}, {}, {}, {}, "env")
    assert "container" not in plain
    assert "image" not in plain


def test_a_drone_short_name_is_found_as_written_and_pulled_from_docker_hub() -> None:
    local = FakeCli({"myapp"})  # a local build: found by the name as written
    assert runtime(local).image_id("myapp", None) == IMAGE_ID
    assert local.verbs() == ["inspect"]
    cli = FakeCli(set())
    assert runtime(cli).image_id("golang:1.21", None, docker_names=True) == IMAGE_ID
    pulls = [c[-1] for c in cli.calls if c[1] == "pull"]
    assert pulls == ["docker.io/library/golang:1.21"]
    assert cli.calls[-1][-1] == "docker.io/library/golang:1.21"  # inspected as pulled
    native = FakeCli(set())  # a conveyor.yml image: podman's own short-name rules
    runtime(native).image_id("golang:1.21", None)
    assert [c[-1] for c in native.calls if c[1] == "pull"] == ["golang:1.21"]


def test_wrap_mounts_the_runs_temporary_directories(tmp_path: Path) -> None:
    cache = tmp_path / "volumes" / "r" / "ci" / "cache"
    text = runtime(FakeCli(set())).wrap(
        IMAGE_ID, "true", [], tmp_path, "conveyor-r-j.s-1", "r", [(str(cache), "/go")]
    )
    argv = shlex.split(text.splitlines()[2])
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    assert mounts == [f"{tmp_path}:{tmp_path}", f"{cache}:/go"]


def test_wrap_starts_a_privileged_container_only_when_asked(tmp_path: Path) -> None:
    cli = runtime(FakeCli(set()))
    plain = shlex.split(cli.wrap(IMAGE_ID, "true", [], tmp_path, "c", "r").splitlines()[2])
    assert "--privileged" not in plain
    text = cli.wrap(IMAGE_ID, "true", [], tmp_path, "c", "r", privileged=True)
    assert "--privileged" in shlex.split(text.splitlines()[2])


def test_privileged_is_a_setting_of_containers(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[containers]\nprivileged = true\n")
    assert Settings.load(tmp_path).containers.privileged is True
    (tmp_path / "config.toml").write_text('[containers]\nprivileged = "yes"\n')
    with pytest.raises(ProjectError, match=r"containers\.privileged is true or false"):
        Settings.load(tmp_path)
