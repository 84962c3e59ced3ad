"""Where an image step runs: in a container runtime, as a host plugin, or on the host.

A step that names an image runs in that image when a container runtime is found
(``[containers] runtime``: podman, docker, or a docker-compatible socket URL). The
runner resolves the image to its ID before its loop starts (pulling per the step's ``pull``
policy), keys the step on it and records it; a container wrapper around the executor
(execute/contained.py) then runs a shell text that starts the container
(:meth:`ContainerRuntime.wrap`), so the local executor needs no change.

A step with an image and no commands is a plugin: Conveyor's built-in plugins
(:data:`BUILTIN_PLUGINS`) and those mapped under ``[containers.plugins]`` run on the
host; other plugin images run in the runtime with their own entrypoint.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.errors import ExecutorError
from conveyor.execute.containers import host_command, image_name, qualified_image
from conveyor.execute.placement import Placement
from conveyor.plan.model import StepPlan

_PLUGIN_MODULES = {
    "notify/slack": "slack",
    "plugins/slack": "slack",
    "dotscience/dotscience-slack-plugin": "slack",
    "trigger/circleci": "circleci",
    "dotscience/dotscience-circleci-plugin": "circleci",
    "webhook": "webhook",
    "plugins/webhook": "webhook",
}
BUILTIN_PLUGINS: Mapping[str, str] = {
    image: f"{shlex.quote(sys.executable)} -m conveyor.plugins.{module}"
    for image, module in _PLUGIN_MODULES.items()
}
"""Plugin image (without tag) -> the host command of Conveyor's own implementation."""

PULL_POLICIES = ("always", "never", "if-not-exists")
LABEL = "conveyor.run"
INSTALL_HINT = (
    "to run it in its image, install podman (`apt-get install podman runc`, or "
    'scripts/engines/podman.sh install) with `runtime = "auto"` (the default) under '
    "[containers]"
)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_PULL_TIMEOUT = 900.0
_INSPECT_TIMEOUT = 60.0

Run = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


class ContainerError(ExecutorError):
    """The container runtime could not provide the image a step asks for."""


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class ContainerRuntime:
    """A container CLI (podman or docker), maybe pointed at a socket."""

    kind: str
    """``podman`` or ``docker``: the CLI dialect."""
    cli: tuple[str, ...]
    """The program and its global options, e.g. ``("docker", "-H", "unix:///...")``."""
    network: str = "none"
    """``none`` (default) or ``host``: podman's bridge network is never asked for."""
    pod: str | None = None
    """The run's pod (podman), where its services are: steps join it instead of a network."""
    hosts: str | None = None
    """A hosts file mounted at ``/etc/hosts`` (the run's services by name)."""
    run_cli: Run = field(default=_run, compare=False, repr=False)
    _resolved: dict[tuple[str, str], str] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def label(self) -> str:
        """How provenance names the runtime: ``podman`` or ``docker@unix:///...``."""
        url = next((a for a in self.cli[1:] if "://" in a), None)
        return f"{self.kind}@{url}" if url else self.kind

    def image_id(self, image: str, pull: str | None, docker_names: bool = False) -> str:
        """Pull per the policy (default ``if-not-exists``), then the image's ID; once per
        image and policy for the runtime's life (a run): its steps see one image.
        ``docker_names``: a short name is pulled from Docker Hub, as docker and Drone
        read it (a Drone file's image), not through podman's own short-name rules."""
        policy = pull or "if-not-exists"
        key = (image, policy)
        if key not in self._resolved:
            pulled = qualified_image(image) if docker_names else image
            self._resolved[key] = self._resolve(image, policy, pulled)
        return self._resolved[key]

    def _resolve(self, image: str, policy: str, pulled: str) -> str:
        if policy not in PULL_POLICIES:
            raise ContainerError(f"pull: {policy!r} is not one of {', '.join(PULL_POLICIES)}")
        # an image here is found by the name as written (podman keeps a short-named local
        # build as localhost/NAME); a pull uses `pulled`, the name with its registry
        if policy == "always":
            self._pull(pulled)
            image = pulled
        found = self._inspect(image)
        if found is None and policy == "if-not-exists":
            self._pull(pulled)
            found = self._inspect(pulled)
        if found is None:
            raise ContainerError(
                f"the image {image} is not on this machine and `pull: never` forbids pulling "
                f"it; build or pull it first ({self.kind} pull {image})"
            )
        return found

    def _inspect(self, image: str) -> str | None:
        done = self._call([*self.cli, "image", "inspect", "--format", "{{.Id}}", image])
        text = done.stdout.strip()
        if done.returncode != 0 or not text:
            return None
        return text if text.startswith("sha256:") else f"sha256:{text}"

    def _pull(self, image: str) -> None:
        done = self._call([*self.cli, "pull", "--quiet", image], _PULL_TIMEOUT)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise ContainerError(f"{self.kind} could not pull the image {image}: {reason}")

    def _call(
        self, argv: Sequence[str], timeout: float = _INSPECT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        try:
            return self.run_cli(argv, timeout)
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(f"`{shlex.join(argv)}` did not answer in {timeout:g}s") from exc
        except OSError as exc:
            raise ContainerError(f"cannot start {argv[0]}: {exc}") from exc

    def wrap(
        self,
        image_id: str,
        command: str,
        env_names: Sequence[str],
        workdir: Path,
        name: str,
        run_id: str,
        volumes: Sequence[tuple[str, str]] = (),
        *,
        privileged: bool = False,
    ) -> str:
        """The shell text that runs ``command`` (``sh -e -c``) in the image.

        The project is mounted at its own path (outputs and ``CONVEYOR_PROJECT_DIR``
        stay valid) with no network; only the step's declared variables are passed, by
        name, so secret values never appear on a command line. A TERM or INT (cancel)
        removes the container; ``--rm`` removes it when it ends.
        """
        cli = shlex.join(self.cli)
        root = os.fspath(workdir)
        network = ["--pod", self.pod] if self.pod else ["--network", self.network]
        argv = [
            "run", "--rm", "--name", name, "--label", f"{LABEL}={run_id}",
            *network, "-v", f"{root}:{root}", "-w", root,
        ]  # fmt: skip
        if self.hosts:  # the run's services, by name
            argv += ["-v", f"{self.hosts}:/etc/hosts:ro"]
        if os.getuid() != 0:  # files the step writes belong to the caller
            argv += ["--userns=keep-id"] if self.kind == "podman" else ["--user", _ids()]
        if privileged:  # the step asked, and the project allows it (never a server)
            argv.append("--privileged")
        for host, path in volumes:  # the run's temporary directories (Drone's temp volumes)
            argv += ["-v", f"{host}:{path}"]
        for env_name in sorted(env_names):
            argv += ["-e", env_name]
        argv.append(image_id)
        if command:
            argv += ["sh", "-e", "-c", command]
        remove = " ".join(self._remove())
        return (
            f"conveyor_remove() {{ {cli} {remove} {name} >/dev/null 2>&1 || :; }}\n"
            "trap conveyor_remove TERM INT HUP\n"
            f"{cli} {shlex.join(argv)} &\n"
            "wait $!"
        )

    def remove_leftovers(self, run_id: str) -> None:
        """Remove the containers of an interrupted run (best effort), and its pod."""
        found = self._call([*self.cli, "ps", "-aq", "--filter", f"label={LABEL}={run_id}"])
        ids = found.stdout.split()
        if found.returncode == 0 and ids:
            self._call([*self.cli, *self._remove(), *ids])
        if self.kind == "podman":  # the pod of the run's services
            pods = self._call([*self.cli, "pod", "ps", "-q", "--filter", f"label={LABEL}={run_id}"])
            if pods.returncode == 0 and pods.stdout.split():
                self._call([*self.cli, "pod", "rm", "-f", "-t", "0", *pods.stdout.split()])

    def _remove(self) -> list[str]:
        """Remove at once: no stop timeout (a shell as PID 1 ignores TERM)."""
        return ["rm", "-f", "-t", "0"] if self.kind == "podman" else ["rm", "-f"]


def remove_leftovers(run_id: str, started: Iterable[Mapping[str, object]]) -> None:
    """Remove the containers a killed run left (``started``: its step-started data)."""
    labels = {str(d.get("container")) for d in started if d.get("image_id")}
    for label in sorted(labels):
        runtime = runtime_from_label(label)
        if runtime is not None:
            with contextlib.suppress(ContainerError):
                runtime.remove_leftovers(run_id)


def runtime_from_label(label: str) -> ContainerRuntime | None:
    """The inverse of :attr:`ContainerRuntime.label`."""
    kind, _, url = label.partition("@")
    if kind not in ("podman", "docker") or shutil.which(kind) is None:
        return None
    if not url:
        return ContainerRuntime(kind, (kind,))
    return ContainerRuntime(kind, (kind, "-H" if kind == "docker" else "--url", url))


def _ids() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def find_runtime(
    setting: str, which: Callable[[str], str | None] = shutil.which, network: str = "none"
) -> ContainerRuntime | None:
    """The runtime ``[containers] runtime`` names, or None when there is none here.

    ``auto``: podman, else docker, on PATH; ``none``: never; ``podman``/``docker``: that
    CLI; ``unix://...``/``tcp://...``: a docker-compatible socket, through the docker CLI
    when installed, else ``podman --url``.
    """
    if setting == "none":
        return None
    if "://" in setting:
        if which("docker"):
            return ContainerRuntime("docker", ("docker", "-H", setting), network)
        if which("podman"):
            return ContainerRuntime("podman", ("podman", "--url", setting), network)
        return None
    names = ("podman", "docker") if setting == "auto" else (setting,)
    for name in names:
        path = which(name)
        if path:
            kind = "docker" if os.path.basename(name).startswith("docker") else "podman"
            return ContainerRuntime(kind, (name,), network)
    return None


def place_step(
    step: StepPlan,
    runtime: ContainerRuntime | None,
    on_missing: str,
    plugins: Mapping[str, str],
    executor: str,
    starts_containers: bool,
) -> Placement:
    """Decide where ``step`` runs; resolve (and maybe pull) its image when in a container
    (``starts_containers``: whether ``executor`` can start one)."""
    if step.image is None:
        return Placement(step.command)
    if not step.command:
        mapped = {**BUILTIN_PLUGINS, **plugins}.get(image_name(step.image))
        if mapped is not None:
            return Placement(mapped, "plugin")
    if runtime is None:
        command, refusal = host_command(step, on_missing, plugins)
        if refusal is not None:
            refusal = f"{refusal}; or, {INSTALL_HINT}"
        return Placement(command, "host", refusal=refusal)
    if not starts_containers:
        if on_missing == "host":
            command, refusal = host_command(step, on_missing, plugins)
            return Placement(command, "host", refusal=refusal)
        return Placement(
            step.command,
            "container",
            refusal=(
                f"step {step.id} asks for the image {step.image}, but the {executor} executor "
                "does not start containers; run the step with the local executor "
                '(runs-on: local), drop its image, or set `on_missing = "host"` under '
                "[containers] in .conveyor/config.toml to run it without the image"
            ),
        )
    try:
        image_id = runtime.image_id(step.image, step.pull, docker_names=step.ci is not None)
    except ContainerError as exc:
        return Placement(step.command, "container", refusal=f"step {step.id}: {exc}")
    return Placement(step.command, "container", image_id)


def container_name(run_id: str, step_id: str, attempt: int) -> str:
    """One name per invocation: ``conveyor-<run>-<step>-<attempt>``."""
    return _NAME_UNSAFE.sub("_", f"conveyor-{run_id}-{step_id}-{attempt}")
