"""Where one step runs (its own command, a plugin's, the host's fallback or a container):
a module of its own so a run whose steps name no image never loads the container code."""

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from conveyor.plan.model import StepPlan


class Placement(NamedTuple):
    """How one step runs: the shell text to key and record, and where it runs."""

    command: str
    """The step's own command (or its plugin's): what the fingerprint and record show."""
    where: str | None = None
    """None (the step names no image), ``host`` (the fallback), ``plugin`` or ``container``."""
    image_id: str | None = None
    refusal: str | None = None

    @property
    def key(self) -> str | None:
        """The fingerprint's ``container`` part (None for steps without an image)."""
        if self.where == "container":
            return f"container {self.image_id}"
        return self.where  # None: keys of steps without an image stay as they were

    def provenance(self, step: "StepPlan", runtime: str | None) -> dict[str, object]:
        """What the step-started event records: the image, where it ran (``host``,
        ``plugin``, or ``runtime``, the runtime's label: ``podman``, ``docker@unix:///...``)
        and its ID."""
        facts: dict[str, object] = {"image": step.image, "container": self.where}
        if self.where == "container" and runtime is not None:
            facts.update({"container": runtime, "image_id": self.image_id})
        facts["command"] = self.command
        return facts
