"""A run's services: long-lived processes beside its steps (Drone's ``services`` and
``detach: true`` steps), started before the first step and ended with the run.

With podman, the services and the run's image steps share one pod (one network
namespace, no network beyond it) and one hosts file that names every service
``127.0.0.1``: a step reaches a service by its name. Without a container runtime, a
service with commands runs as a host process in its own session and the steps find it at
``localhost`` (``CONVEYOR_SERVICE_<NAME>``). A service's output is kept in the run's log
directory (``services/NAME.log``) like a step's. What a killed run left is found again by
the ``services-started`` event it recorded (:func:`end_leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from conveyor.errors import ExecutorError
from conveyor.execute.images import INSTALL_HINT, LABEL, ContainerRuntime, runtime_from_label
from conveyor.plan.model import ServicePlan

__all__ = ["SERVICES_EVENT", "RunningServices", "end_leftovers", "service_env", "start_services"]

SERVICES_EVENT = "services-started"
"""A run's event: the pod and host processes of its services (for a later recovery)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_STOP_GRACE = 5.0


class ServiceError(ExecutorError):
    """A service could not be started."""


def service_env(services: Sequence[ServicePlan], host: str | None) -> dict[str, str]:
    """``CONVEYOR_SERVICE_<NAME>``: where a step finds each service (its name in a pod,
    ``localhost`` for a host process)."""
    return {
        "CONVEYOR_SERVICE_" + re.sub(r"[^A-Z0-9]", "_", s.name.upper()): host or s.name
        for s in services
    }


@dataclass
class RunningServices:
    """The services of one run, as started; :meth:`stop` ends them all."""

    run_id: str
    log_dir: Path
    runtime: ContainerRuntime | None = None
    pod: str | None = None
    containers: dict[str, str] = field(default_factory=dict)
    """Service name -> container name."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """Variables every step is given (where each service is)."""
    step_runtime: ContainerRuntime | None = None
    """The runtime image steps run through: in the services' pod."""

    def record(self) -> dict[str, Any]:
        """The ``services-started`` event's data."""
        return {
            "container": self.runtime.label if self.runtime is not None else None,
            "pod": self.pod,
            "pids": [[p.pid, _start_time(p.pid)] for p in self.processes.values()],
        }

    def stop(self) -> None:
        """End every service (best effort), keeping their logs."""
        for proc in self.processes.values():
            _end_group(proc.pid, proc)
        self.processes.clear()
        if self.runtime is None:
            return
        for service, name in self.containers.items():
            self._save_log(service, name)
        with contextlib.suppress(ExecutorError):  # the pod goes with its containers
            self.runtime.remove_leftovers(self.run_id)
        self.containers.clear()

    def _save_log(self, service: str, container: str) -> None:
        assert self.runtime is not None
        path = _log_path(self.log_dir, service)
        with contextlib.suppress(OSError, subprocess.SubprocessError), open(path, "wb") as out:
            subprocess.run(
                [*self.runtime.cli, "logs", container],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )


def start_services(
    services: Sequence[ServicePlan],
    runtime: ContainerRuntime | None,
    run_id: str,
    log_dir: Path,
    workdir: Path,
    base_env: Mapping[str, str],
    host_allowed: bool = True,
) -> RunningServices:
    """Start ``services`` (none: nothing happens); on an error those started are ended.
    ``host_allowed``: False on a server, whose steps never run unsandboxed on its host."""
    running = RunningServices(run_id, log_dir, step_runtime=runtime)
    if not services:
        return running
    (log_dir / "services").mkdir(parents=True, exist_ok=True)
    try:
        if runtime is None and not host_allowed:
            raise ServiceError(
                f"service {services[0].name} would run as a process on the server's host, "
                "which a server never allows; the server needs a container runtime (podman)"
            )
        if runtime is None:
            _start_host(running, services, workdir, base_env)
        else:
            _start_containers(running, services, runtime, workdir)
    except BaseException:
        running.stop()
        raise
    return running


def _start_host(
    running: RunningServices,
    services: Sequence[ServicePlan],
    workdir: Path,
    base_env: Mapping[str, str],
) -> None:
    missing = [s for s in services if not s.command]
    if missing:
        raise ServiceError(
            f"service {missing[0].name} runs its image {missing[0].image}'s own entrypoint, "
            f"and there is no container runtime here; {INSTALL_HINT}"
        )
    running.env = service_env(services, "localhost")
    for service in services:
        env = {**base_env, **running.env, **dict(service.env)}
        with open(_log_path(running.log_dir, service.name), "wb") as log:
            running.processes[service.name] = subprocess.Popen(
                ["sh", "-e", "-c", _command(service, env)],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: ended with all its children
            )


def _start_containers(
    running: RunningServices,
    services: Sequence[ServicePlan],
    runtime: ContainerRuntime,
    workdir: Path,
) -> None:
    if runtime.kind != "podman":
        raise ServiceError(
            "services need podman (a pod gives them and the steps one network); the "
            f"container runtime here is {runtime.label}"
        )
    running.runtime = runtime
    images = {s.name: runtime.image_id(s.image, s.pull, docker_names=s.ci is not None)
              for s in services if s.image}  # fmt: skip
    hosts = running.log_dir / "services" / "hosts"
    names = " ".join(s.name for s in services)
    hosts.write_text(f"127.0.0.1\tlocalhost {names}\n::1\tlocalhost\n", encoding="utf-8")
    pod = _UNSAFE.sub("_", f"conveyor-{running.run_id}")
    network = ["--network", "host"] if runtime.network == "host" else ["--network", "none"]
    label = f"{LABEL}={running.run_id}"
    create = ["pod", "create", "--name", pod, "--label", label, *network]
    _call(runtime, create, f"could not create the pod {pod} for the run's services")
    running.pod = pod
    running.env = service_env(services, None)
    root = os.fspath(workdir)
    for service in services:
        name = _UNSAFE.sub("_", f"{pod}-service-{service.name}")
        argv = ["run", "-d", "--pod", pod, "--name", name,
                "--label", f"{LABEL}={running.run_id}",
                "-v", f"{hosts}:/etc/hosts:ro", "-v", f"{root}:{root}", "-w", root]  # fmt: skip
        for key, value in service.env:
            argv += ["-e", f"{key}={value}"]
        argv.append(images.get(service.name) or "")
        if service.command:
            argv += ["sh", "-e", "-c", _command(service, dict(service.env))]
        _call(runtime, argv, f"service {service.name} did not start")
        running.containers[service.name] = name
    running.step_runtime = replace(runtime, pod=pod, hosts=str(hosts))


def _command(service: ServicePlan, env: Mapping[str, str]) -> str:
    """The service's shell text; a Drone file's with Drone's ``${VAR}`` substitution (its
    variables: the service's own), ``$$`` a literal ``$`` as in its steps."""
    if service.ci is None or not service.command:
        return service.command
    from conveyor.plan.dronesubst import substitute_shell
    from conveyor.plan.shell import ShellQuoteError

    try:
        return substitute_shell(service.command, env)
    except ShellQuoteError as exc:
        raise ServiceError(f"service {service.name}: a Drone substitution: {exc}") from exc


def _call(runtime: ContainerRuntime, argv: list[str], what: str) -> None:
    try:
        done = runtime.run_cli([*runtime.cli, *argv], 120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ServiceError(f"{what}: {reason}")


def end_leftovers(run_id: str, records: Sequence[Mapping[str, Any]]) -> None:
    """End what a killed run's services left (``records``: its ``services-started`` data):
    the pod and containers by the run's label, host processes whose start time matches."""
    for data in records:
        label = data.get("container")
        runtime = runtime_from_label(str(label)) if label else None
        if runtime is not None:
            with contextlib.suppress(ExecutorError):
                runtime.remove_leftovers(run_id)
        for pid, started in data.get("pids", []):
            if isinstance(pid, int) and started is not None and _start_time(pid) == started:
                _end_group(pid, None)


def _end_group(pid: int, proc: subprocess.Popen[bytes] | None) -> None:
    """TERM to the process group, then KILL after a grace period."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                break
        elif not _group_alive(pid):
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_STOP_GRACE)


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (a pid reused later does not match)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def _log_path(log_dir: Path, service: str) -> Path:
    return log_dir / "services" / f"{_UNSAFE.sub('_', service)}.log"
