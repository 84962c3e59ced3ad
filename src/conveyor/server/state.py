"""What every request handler of one server process shares."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from conveyor.domain.envnames import changes_execution
from conveyor.server.config import ServerConfig
from conveyor.server.db.database import ServerDatabase
from conveyor.server.db.deliveries import Deliveries
from conveyor.server.db.pachyderm_queue import PIPELINE
from conveyor.server.db.statuses import HookLog, Statuses
from conveyor.server.db.vault import Vault
from conveyor.server.keyring import Keyring
from conveyor.server.warmpool.runtime import Runtime


class FinishedRuns:
    """A small LRU of finished runs' JSON body, with their project (thread-safe)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> tuple[str, bytes] | None:
        with self._lock:
            item = self._items.get(run_id)
            if item is not None:
                self._items.move_to_end(run_id)
            return item

    def put(self, run_id: str, data: tuple[str, bytes]) -> None:
        with self._lock:
            self._items[run_id] = data
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@dataclass
class ServerState:
    config: ServerConfig
    db: ServerDatabase
    keyring: Keyring
    wake: threading.Event = field(default_factory=threading.Event)
    """Set when a run is queued, so an idle in-process worker starts it at once."""
    hook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """Proves that a post-receive call comes from a push this process is serving."""
    finished: FinishedRuns = field(default_factory=lambda: FinishedRuns(2048))
    """Finished runs never change: their JSON is kept for polling clients."""
    deployments: Runtime = field(default_factory=Runtime)
    """This process's warm pools, rate buckets and execution slots of deployments."""
    pachyderm_wake: threading.Event = field(default_factory=threading.Event)
    """Set when a Pachyderm trigger is queued, so this process's claimer looks at once."""

    def pipeline_changed(self, project: str, pipeline: str) -> None:
        """A pipeline was created, updated or asked to run: a job over its inputs' heads."""
        self.db.pachyderm.enqueue(project, PIPELINE, pipeline)
        self.pachyderm_wake.set()

    @property
    def vault(self) -> Vault:
        return Vault(self.db.engine)

    @property
    def statuses(self) -> Statuses:
        return Statuses(self.db.engine)

    @property
    def hook_log(self) -> HookLog:
        return HookLog(self.db.engine)

    @property
    def deliveries(self) -> Deliveries:
        return Deliveries(self.db.engine)

    def secrets_for(self, project: str) -> dict[str, str]:
        """The project's secrets, decrypted, for the environment of its steps (never one
        whose name changes how steps run: stored before such names were refused)."""
        return {
            k: self.keyring.decrypt(v)
            for k, v in self.vault.encrypted(project).items()
            if not changes_execution(k) and not k.startswith("CONVEYOR_")  # reserved
        }
