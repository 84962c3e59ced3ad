"""What every request handler of one server process shares."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from conveyor.server.config import ServerConfig
from conveyor.server.db.database import ServerDatabase
from conveyor.server.db.vault import Vault
from conveyor.server.keyring import Keyring


@dataclass
class ServerState:
    config: ServerConfig
    db: ServerDatabase
    keyring: Keyring
    wake: threading.Event = field(default_factory=threading.Event)
    """Set when a run is queued, so an idle in-process worker starts it at once."""
    hook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """Proves that a post-receive call comes from a push this process is serving."""

    @property
    def vault(self) -> Vault:
        return Vault(self.db.engine)

    def secrets_for(self, project: str) -> dict[str, str]:
        """The project's secrets, decrypted, for the environment of its steps."""
        return {k: self.keyring.decrypt(v) for k, v in self.vault.encrypted(project).items()}
