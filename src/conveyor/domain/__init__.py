"""Value types shared by every layer: ids, digests, states, resources."""

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.domain.types import Digest, Resources, RunId, StepId

__all__ = ["Digest", "Resources", "RunId", "RunStatus", "StepId", "StepStatus"]
