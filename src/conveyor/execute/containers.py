"""Steps that name a container image, when no container runtime is configured.

Conveyor records the image (in the plan and the fingerprint) but does not start
containers yet. Such a step fails with a sentence that says how to run it on the host
instead (``[containers] on_missing = "host"``); a plugin step (an image without
commands) runs on the host the command its image is mapped to in ``[containers.plugins]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.plan.model import StepPlan


def host_command(
    step: StepPlan, on_missing: str, plugins: Mapping[str, str]
) -> tuple[str, str | None]:
    """The shell text to run on the host, or why the step cannot run here."""
    if step.image is None:
        return step.command, None
    if on_missing != "host":
        return step.command, (
            f"step {step.id} asks for the image {step.image}, but no container runtime "
            'is configured; to run it on the host instead, set `on_missing = "host"` '
            "under [containers] in .conveyor/config.toml"
        )
    if step.command:
        return step.command, None
    plugin = image_name(step.image)
    mapped = plugins.get(plugin)
    if mapped is None:
        return "", (
            f"step {step.id} runs the plugin image {step.image}, which has no commands "
            "to run on the host; map the image to a host command under [containers.plugins] "
            f'in .conveyor/config.toml (e.g. "{plugin}" = "python3 tools/plugin.py")'
        )
    return mapped, None


def qualified_image(image: str) -> str:
    """A short image name as docker (and Drone) expand it: ``golang`` ->
    ``docker.io/library/golang:latest``, ``org/app:1`` -> ``docker.io/org/app:1``; a name
    whose first part is a registry (holds ``.`` or ``:``, or is ``localhost``) is kept."""
    name, at, digest = image.partition("@")
    first, slash, _ = name.partition("/")
    if not slash:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}{at}{digest}"


def image_name(image: str) -> str:
    """``registry:5000/org/plugin:1.2@sha256:...`` -> ``registry:5000/org/plugin``."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
