"""The session cookie: opened only when it is this server's, unexpired and well formed."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from cryptography.fernet import Fernet
from starlette.requests import Request

from conveyor.server.keyring import Keyring
from conveyor.server.web.session import COOKIE, MAX_AGE, Session, check_csrf, open_session

KEY = Fernet.generate_key()


def _request(cookie: str | None) -> Request:
    server = SimpleNamespace(keyring=Keyring(KEY))
    app = SimpleNamespace(
        state=SimpleNamespace(server=server, web_source=SimpleNamespace(local=False))
    )
    headers = [(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie is not None else []
    return Request({"type": "http", "headers": headers, "app": app})


def _cookie(data: object, at: float | None = None, key: bytes = KEY) -> str:
    text = json.dumps(data).encode()
    fernet = Fernet(key)
    return (fernet.encrypt_at_time(text, int(at)) if at else fernet.encrypt(text)).decode()


def test_a_cookie_of_this_server_opens() -> None:
    session = open_session(_request(_cookie({"t": "cvy_token", "c": "csrf-1"})))
    assert session == Session("cvy_token", "csrf-1")


def test_no_cookie_an_expired_one_or_another_servers_does_not() -> None:
    assert open_session(_request(None)) is None
    expired = _cookie({"t": "cvy_token", "c": "x"}, at=time.time() - MAX_AGE - 60)
    assert open_session(_request(expired)) is None
    other = _cookie({"t": "cvy_token", "c": "x"}, key=Fernet.generate_key())
    assert open_session(_request(other)) is None
    assert open_session(_request("gAAAAAnot-fernet")) is None
    assert open_session(_request("x" * 5000)) is None


def test_a_cookie_of_the_wrong_shape_does_not() -> None:
    for data in (["t", "c"], {"t": 1, "c": "x"}, {"t": "cvy"}, "text"):
        assert open_session(_request(_cookie(data))) is None


def test_the_csrf_token_must_match() -> None:
    import pytest
    from fastapi import HTTPException

    session = Session("cvy_token", "right")
    check_csrf(session, "right")
    for sent in (None, "", "wrong", "righ"):
        with pytest.raises(HTTPException) as refused:
            check_csrf(session, sent)
        assert refused.value.status_code == 403
