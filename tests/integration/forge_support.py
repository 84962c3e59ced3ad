"""A local stand-in for GitHub's and GitLab's commit status APIs that checks every
request as the forge documents it, and can be made to fail like a forge that is down.

GitHub: ``POST /repos/{owner}/{repo}/statuses/{sha}`` with ``Authorization: Bearer``,
``Accept: application/vnd.github+json``, a ``User-Agent`` and JSON ``state``
(error, failure, pending, success), ``target_url``, ``description`` (at most 140
characters), ``context``; answers 201
(https://docs.github.com/en/rest/commits/statuses#create-a-commit-status).
GitLab: ``POST /api/v4/projects/:id/statuses/:sha`` with ``PRIVATE-TOKEN`` and JSON
``state`` (pending, running, success, failed, canceled), ``name``, ``target_url``,
``description``, ``ref``; answers 201
(https://docs.gitlab.com/ee/api/commits.html#set-the-pipeline-status-of-a-commit).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GITHUB_PATH = re.compile(r"^/repos/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/statuses/([0-9a-f]{40})$")
GITLAB_PATH = re.compile(r"^/api/v4/projects/([^/]+)/statuses/([0-9a-f]{40})$")
GITHUB_STATES = {"error", "failure", "pending", "success"}
GITLAB_STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}


@dataclass
class Forge:
    token: str
    url: str = ""
    accepted: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tries: int = 0
    down: int = 0
    """How many more calls answer 503 (a forge that is down)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, path: str, headers: Any, raw: bytes) -> tuple[int, str]:
        """(status, problem or '') of one call."""
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, "the body is not JSON"
        if not isinstance(body, dict):
            return 400, "the body is not a JSON object"
        if found := GITHUB_PATH.match(path):
            if headers.get("Authorization") != f"Bearer {self.token}":
                return 401, "GitHub: no Bearer token or a wrong one"
            if headers.get("Accept") != "application/vnd.github+json":
                return 415, "GitHub: Accept is not application/vnd.github+json"
            if not headers.get("User-Agent"):
                return 403, "GitHub: no User-Agent"
            if body.get("state") not in GITHUB_STATES:
                return 422, f"GitHub: state {body.get('state')!r}"
            if not isinstance(body.get("context"), str):
                return 422, "GitHub: no context"
            forge = "github"
        elif found := GITLAB_PATH.match(path):
            if headers.get("PRIVATE-TOKEN") != self.token:
                return 401, "GitLab: no PRIVATE-TOKEN or a wrong one"
            if body.get("state") not in GITLAB_STATES:
                return 400, f"GitLab: state {body.get('state')!r}"
            if not isinstance(body.get("name"), str):
                return 400, "GitLab: no name"
            forge = "gitlab"
        else:
            return 404, f"no such route: {path}"
        description = body.get("description")
        if not isinstance(description, str) or len(description) > 140:
            return 422, "description missing or longer than 140 characters"
        if not str(body.get("target_url", "")).startswith("http"):
            return 422, "target_url is not a URL"
        with self.lock:
            self.accepted.append({"forge": forge, "repo": found[1], "sha": found[2], **body})
        return 201, ""

    def wait_for(self, state: str, timeout: float = 60) -> dict[str, Any]:
        """The first accepted status in ``state`` (polling until ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [a for a in self.accepted if a["state"] == state]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no {state!r} status in {timeout} s: {self.accepted} {self.problems}")


def serve_forge(token: str) -> tuple[Forge, ThreadingHTTPServer]:
    forge = Forge(token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with forge.lock:
                forge.tries += 1
                failing = forge.down > 0
                forge.down -= 1 if failing else 0
            if failing:
                code, problem = 503, ""
            else:
                code, problem = forge.check(self.path, self.headers, raw)
            if problem:
                with forge.lock:
                    forge.problems.append(problem)
            payload = json.dumps({"message": problem or "ok"}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    forge.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return forge, httpd
