"""Containers as an executor wrapper: any executor whose command runs on a machine with
the container runtime (it says so with ``starts_containers = True``; the local one
today) runs image steps in their image, and nothing else about it changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from conveyor.execute.images import ContainerRuntime, container_name
from conveyor.executors.base import (
    DelegatingExecutor,
    Executor,
    Handle,
    Invocation,
    starts_containers,
)


class ContainerExecutor(DelegatingExecutor):
    """Runs an invocation that names an image through ``runtime``; the rest as they are."""

    starts_containers = True

    def __init__(self, inner: Executor, runtime: ContainerRuntime) -> None:
        super().__init__(inner)
        self.runtime = runtime

    def submit(self, invocation: Invocation) -> Handle:
        if invocation.image_id is None:
            return self.inner.submit(invocation)
        run_id, step_id = invocation.env["CONVEYOR_RUN_ID"], invocation.env["CONVEYOR_STEP_ID"]
        attempt = int(invocation.env["CONVEYOR_ATTEMPT"])
        command = self.runtime.wrap(
            invocation.image_id,
            invocation.command,
            tuple(invocation.env),
            invocation.workdir,
            container_name(run_id, step_id, attempt),
            run_id,
            invocation.volumes,
            privileged=invocation.privileged,
        )
        return self.inner.submit(replace(invocation, command=command, contained=True))


def with_containers(
    executors: Mapping[str, Executor], runtime: ContainerRuntime | None
) -> dict[str, Executor]:
    """Each executor that can start containers wrapped to run image steps in them."""
    if runtime is None:
        return dict(executors)
    return {
        name: ContainerExecutor(ex, runtime) if starts_containers(ex) else ex
        for name, ex in executors.items()
    }
