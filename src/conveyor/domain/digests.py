"""SHA-256 and BLAKE2b from the interpreter's own modules when it has them (as ``random``
takes SHA-512): ``import hashlib`` initialises OpenSSL, about a fortieth of a no-op run,
for two short digests every run makes (a step's tracking directory, the environment's).
The digests are the same either way; ``hashlib`` answers where the modules are missing
(Python 3.12 renamed ``_sha256``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import blake2b, sha256
else:
    try:
        from _sha256 import sha256
    except ImportError:  # pragma: no cover - another interpreter
        from hashlib import sha256
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover
        from hashlib import blake2b

__all__ = ["blake2b", "sha256"]
