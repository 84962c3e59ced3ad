"""Why a call could not be served by warm workers or admitted."""

from __future__ import annotations

from conveyor.errors import ConveyorError, UsageError


class RateLimited(UsageError):
    """More calls than the deployment's rate limit allows (429)."""


class CallTimeout(ConveyorError):
    """The call did not finish within the deployment's timeout (504)."""


class WorkerLost(ConveyorError):
    """The warm worker serving the call stopped; the pool replaces it (503)."""


class ServerStopping(ConveyorError):
    """The server is stopping: a call still waiting for its run stays ``running``, and
    the next start settles it from the run (503)."""
