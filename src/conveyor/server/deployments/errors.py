"""Why a call or a change of a deployment was refused; routes map each to its status
(with ``warmpool.errors``: rate limit, timeout, a lost worker)."""

from __future__ import annotations

from conveyor.errors import ConveyorError, UsageError


class DeploymentConflict(UsageError):
    """The name is taken, the deployment is disabled, or a pipeline is still in use (409)."""


class ExecutionFailed(ConveyorError):
    """The pipeline or the function failed; the execution records why (500)."""

    def __init__(self, message: str, execution_id: str) -> None:
        self.execution_id = execution_id
        super().__init__(message)
