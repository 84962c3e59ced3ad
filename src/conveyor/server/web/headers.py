"""Security headers on every response, and a fresh CSP nonce per request
(``request.state.csp_nonce``: the only inline script a page may hold carries it)."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# a run's image or HTML report (the preview's <img> or <iframe sandbox>): a sandbox (no
# script, an opaque origin), nothing loaded from elsewhere, framed only by our pages
SANDBOX_POLICY = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'"
)
# Swagger UI sets style attributes from its script: inline styles, no inline scripts
DOCS_POLICY = PAGE_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def policy_for(path: str, nonce: str) -> str:
    return (DOCS_POLICY if path.startswith("/docs") else PAGE_POLICY).format(nonce=nonce)


class SecurityHeaders:
    """ASGI middleware: CSP, frame refusal, no sniffing, no referrer leaving the site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        policy = policy_for(str(scope.get("path", "")), nonce).encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [
                    (b"content-security-policy", policy),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                headers += [(k, v) for k, v in extra if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
