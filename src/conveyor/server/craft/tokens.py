"""The SDK's access tokens: JWT-shaped (HS256, stdlib only), signed with a key derived
from the server key, short-lived. The SDK reads ``exp`` and ``iat`` (without checking the
signature) to know when to refresh; the server checks the signature and ``exp`` on every
request, so a forged or expired token is refused whatever the client believes, and then
that it holds the token's hash (``db/crafttokens.py``: revocation, the current role)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

TTL = 600
"""Seconds an access token lives; the SDK refreshes 120 s before its end."""
PURPOSE = "craft-access-token"
MAX_TOKEN = 4096


@dataclass(frozen=True)
class Claims:
    user: str
    project: str
    role: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(key: bytes, user: str, project: str, role: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = {
        "sub": user,
        "project": project,
        "role": role,
        "iat": issued,
        "exp": issued + TTL,
        "jti": secrets.token_hex(8),  # two refreshes in one second: two tokens (two rows)
    }
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def verify(key: bytes, token: str, now: float | None = None) -> Claims | str:
    """The token's claims, or why it is refused (one sentence)."""
    parts = token.split(".")
    if len(token) > MAX_TOKEN or len(parts) != 3:
        return "this access token is not a token of this server"
    header, payload, signature = parts
    expected = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        data: Any = json.loads(_unb64(payload))
        alg = json.loads(_unb64(header)).get("alg")
    except (binascii.Error, ValueError, AttributeError):
        return "this access token is not a token of this server"
    if alg != "HS256" or not hmac.compare_digest(given, expected):
        return "this access token's signature is not this server's"
    if not isinstance(data, dict):
        return "this access token is not a token of this server"
    expires, user, project, role = (data.get(k) for k in ("exp", "sub", "project", "role"))
    if not isinstance(expires, int) or not all(isinstance(v, str) for v in (user, project, role)):
        return "this access token is not a token of this server"
    if expires <= (time.time() if now is None else now):
        return "this access token has expired: refresh it with the SDK token"
    return Claims(str(user), str(project), str(role), expires)
