"""Signed-in web clients for the page tests: an httpx client with a session cookie, and
the CSRF token of a page."""

from __future__ import annotations

import re

import httpx

from tests.integration.server_support import Server

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web_client(server: Server, who: str | None) -> httpx.Client:
    """A client signed in as ``who`` (None: not signed in); redirects are not followed."""
    client = httpx.Client(base_url=server.url, timeout=30)
    if who is not None:
        data = {"token": server.tokens[who], "next": "/ui/"}
        answer = httpx.post(f"{server.url}/ui/signin", data=data, timeout=30)
        assert answer.status_code == 303, answer.text
        client.cookies.set("conveyor_session", answer.cookies["conveyor_session"])
    return client


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)
