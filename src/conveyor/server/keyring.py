"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under the server's key.

The key is ``server.key`` in the data directory (created with mode 0600 on first use)
or the ``CONVEYOR_SERVER_KEY`` environment variable; workers need the same key.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.errors import UsageError

ENV_KEY = "CONVEYOR_SERVER_KEY"


class Keyring:
    def __init__(self, key: bytes) -> None:
        from cryptography.fernet import Fernet

        self._fernet = Fernet(key)
        self._key = key

    @staticmethod
    def load(path: Path) -> Keyring:
        from cryptography.fernet import Fernet

        given = os.environ.get(ENV_KEY)
        if given:
            key = given.encode()
        elif path.exists():
            if path.stat().st_mode & 0o077:  # made by hand, or by an older version
                path.chmod(0o600)
            key = path.read_bytes().strip()
        else:
            key = Fernet.generate_key()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key + b"\n")
        try:
            return Keyring(key)
        except ValueError as exc:
            raise UsageError(f"the server key ({ENV_KEY} or {path}) is not a Fernet key") from exc

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (signing the Craft API's access tokens...): an HMAC of
        its name under the server key, so no purpose can read another's."""
        import hashlib
        import hmac

        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def encrypt(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode())

    def decrypt(self, token: bytes, ttl: int | None = None) -> str:
        """The text; ``ttl``: refused (``cryptography.fernet.InvalidToken``) when it was
        encrypted more than that many seconds ago."""
        return self._fernet.decrypt(token, ttl=ttl).decode()
