"""A client of a Conveyor server (``[remote]`` in ``.conveyor/config.toml``).

It queues runs, follows them and downloads their outputs over the REST API through one
``httpx.Client`` per remote (connections reused, timeouts set, idempotent calls retried
when the connection fails or the server is briefly unavailable); httpx is imported only
when a remote is used (``pip install conveyor[server]``).
"""

from __future__ import annotations

import os
import posixpath
import shlex
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from conveyor.domain.types import ParamValue
from conveyor.errors import NotFoundError, ProjectError, RemoteError, UsageError
from conveyor.sdk.project import Project
from conveyor.sdk.settings import RemoteSettings
from conveyor.vcs.git import output as git_output

if TYPE_CHECKING:
    import httpx

FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUS = frozenset({502, 503, 504})
"""A proxy or a restarting server: worth asking again (idempotent calls only)."""
TIMEOUT = (10.0, 60.0)
"""Seconds to connect, and for each read, write or pool wait."""


def check(response: Any) -> None:
    """Raise the server's refusal as the error root's kind: 404 not found, 5xx the server's
    fault, any other 4xx bad input; with the server's own ``detail``."""
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    message = f"the server refused ({response.status_code}): {detail}"
    if response.status_code == 404:
        raise NotFoundError(message)
    if response.status_code >= 500:
        raise RemoteError(message)
    raise UsageError(message)


@dataclass
class RemoteClient:
    settings: RemoteSettings
    token: str
    transport: httpx.BaseTransport | None = None
    """Replaces the network (tests pass an ``httpx.MockTransport``)."""
    retry_delays: tuple[float, ...] = (0.5, 2.0)
    """Seconds before each retry of an idempotent call; one retry per entry."""
    _client: httpx.Client | None = field(default=None, init=False, repr=False)

    def page_url(self, run_id: str) -> str:
        """The run's web page on the server."""
        project = segment(self.settings.project)
        return f"{self.settings.url.rstrip('/')}/ui/p/{project}/runs/{segment(run_id)}"

    @staticmethod
    def for_project(project: Project) -> RemoteClient:
        remote = project.settings.remote
        if remote is None:
            raise ProjectError(
                "no remote is configured: add [remote] with url and project to "
                ".conveyor/config.toml"
            )
        token = os.environ.get(remote.token_env, "")
        if not token:
            raise UsageError(f"set {remote.token_env} to your API token for {remote.url}")
        return RemoteClient(remote, token)

    @property
    def client(self) -> httpx.Client:
        """The remote's one client, made on first use."""
        if self._client is None:
            try:
                import httpx
            except ImportError:
                raise UsageError(
                    "talking to a server needs httpx: pip install conveyor[server]"
                ) from None
            self._client = httpx.Client(
                base_url=f"{self.settings.url}/api/v1/projects/{self.settings.project}",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=httpx.Timeout(TIMEOUT[1], connect=TIMEOUT[0]),
                transport=self.transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """One call; an idempotent one is retried after a connection failure or a 502,
        503 or 504, ``len(retry_delays)`` times."""
        import httpx

        client = self.client
        delays = list(self.retry_delays) if method in IDEMPOTENT else []
        while True:
            try:
                response = client.request(method, path, json=json)
            except httpx.TransportError as exc:
                if not delays:
                    raise RemoteError(f"cannot reach {self.settings.url}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise RemoteError(f"cannot reach {self.settings.url}: {exc}") from exc
            else:
                if response.status_code not in RETRY_STATUS or not delays:
                    return response
            time.sleep(delays.pop(0))

    def request(self, method: str, path: str, json: Any = None) -> Any:
        """One call of the API: its JSON, or the response itself when it is not JSON; a
        refusal raises (``check``). Idempotent calls are retried while the server is away."""
        response = self._send(method, path, json)
        check(response)
        return response.json() if "json" in response.headers.get("content-type", "") else response

    def create_run(self, ref: str, params: Mapping[str, ParamValue]) -> dict[str, Any]:
        run: dict[str, Any] = self.request("POST", "/runs", {"ref": ref, "params": dict(params)})
        return run

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run with its steps: by id, a unique prefix of one, or ``latest`` (the server
        resolves both)."""
        run: dict[str, Any] = self.request("GET", f"/runs/{segment(run_id)}")
        return run

    def commit_of(self, ref: str) -> str | None:
        """The commit ``ref`` names on the server, or None when the server has no such ref."""
        try:
            found = self.request("GET", f"/commits/{quote(ref, safe='/')}")
        except NotFoundError:
            return None
        return str(found["commit"])

    def check_pushed(self, root: Path, ref: str) -> None:
        """Refuse (UsageError) when ``ref`` names a local commit the server's ``ref`` is
        not at: the run would not run what is here. Says which ``git push`` to type."""
        local = git_output(
            root, "rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}"
        )
        if not local:
            return  # not a local name: the server alone knows it
        there = self.commit_of(ref)
        if there == local:
            return
        push = f"git push {_push_remote(root, self.settings)} {shlex.quote(ref)}"
        if there is None:
            raise UsageError(
                f"the server has no branch {ref} (here it is at {local[:12]}): push it "
                f"first: {push}"
            )
        raise UsageError(
            f"{ref} is at {local[:12]} here but at {there[:12]} on the server: push (or "
            f"pull) first: {push}"
        )

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        """Cancel a queued run, or ask its worker to stop a running one (never retried:
        a cancel is not idempotent for the server's answer)."""
        answer: dict[str, Any] = self.request("POST", f"/runs/{segment(run_id)}/cancel")
        return answer

    def lineage(self, path: str) -> dict[str, Any]:
        """Which of the project's runs produced ``path``, from which inputs, read by whom."""
        found: dict[str, Any] = self.request(
            "GET", "/lineage?" + urllib.parse.urlencode({"path": path})
        )
        return found

    def artifact(self, run_id: str, path: str) -> bytes:
        """One output file of a run, as bytes (secrets masked by the server)."""
        response = self.request("GET", _artifact_path(run_id, path))
        return bytes(response.content)

    def metrics(self, run_id: str) -> dict[str, Any]:
        """What a run measured: the JSON of ``conveyor metrics show --json`` (secrets
        masked by the server)."""
        found: dict[str, Any] = self.request("GET", f"/runs/{segment(run_id)}/metrics")
        return found

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` runs (the first page; a server before pages sent a list)."""
        page = self.request("GET", f"/runs?limit={limit}")
        runs: list[dict[str, Any]] = page["runs"] if isinstance(page, dict) else page
        return runs

    def stream_log(
        self, run_id: str, step_id: str, tail: int | None = None, since: float | None = None
    ) -> Iterator[str]:
        """A step's log (secrets masked by the server), following it while it runs: its
        last ``tail`` lines only; nothing unless it ran at or after ``since`` (epoch)."""
        import httpx

        path = f"/runs/{segment(run_id)}/logs/{segment(step_id)}"
        params: dict[str, str | int] = {}
        if tail is not None:
            params["tail"] = tail
        if since is not None:
            params["since"] = datetime.fromtimestamp(since, UTC).isoformat()
        try:  # no read timeout: a running step may be silent for long
            with self.client.stream(
                "GET", path, params=params, timeout=httpx.Timeout(None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    detail = response.json().get("detail", response.text)
                    error = NotFoundError if response.status_code == 404 else UsageError
                    raise error(f"the server refused ({response.status_code}): {detail}")
                yield from response.iter_text()
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.settings.url}: {exc}") from exc

    def follow(self, run_id: str, interval: float = 0.3) -> Iterator[dict[str, Any]]:
        """The run each time a step finishes, and once more when the run ends."""
        seen: set[str] = set()
        while True:
            run = self.get_run(run_id)
            done = {
                s["id"] for s in run.get("steps", []) if s["status"] not in ("queued", "running")
            }
            if done - seen or run["status"] in FINISHED:
                seen |= done
                yield run
            if run["status"] in FINISHED:
                return
            time.sleep(interval)

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """Every output file of a run, page after page (a server before pages sent a list)."""
        files: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = self.request("GET", f"/runs/{segment(run_id)}/artifacts?limit=5000{cursor}")
            if not isinstance(page, dict):
                return list(page)
            files += page["files"]
            if page.get("next_cursor") is None:
                return files
            cursor = "&cursor=" + urllib.parse.quote(str(page["next_cursor"]), safe="")

    def download(
        self, run_id: str, destination: Path, on_file: Callable[[str], None] | None = None
    ) -> int:
        """Write every output file of a run under ``destination``; returns the count."""
        files = self.artifacts(run_id)
        if not files:
            raise NotFoundError(f"run {run_id} recorded no outputs")
        for item in files:
            path = safe_relative(str(item["path"]))
            write_atomically(destination / path, self.artifact(run_id, path))
            if on_file is not None:
                on_file(path)
        return len(files)


def segment(name: str) -> str:
    """A run id or step name as one URL path segment: quoted whole (``/``, ``?`` and
    ``#`` included); ``.`` and ``..``, which a URL resolves away, name nothing."""
    if name in (".", ".."):
        raise NotFoundError(f"{name!r} names no run or step")
    return quote(name, safe="")


def safe_relative(path: str) -> str:
    """A path the server sent, if it stays below the directory it is written into."""
    normal = posixpath.normpath(path)
    if normal.startswith(("../", "/")) or normal in ("..", "."):
        raise RemoteError(f"the server sent an unsafe path {path!r}")
    return normal


def _artifact_path(run_id: str, path: str) -> str:
    """The API path of an output file: the run id one quoted segment, the file's path
    quoted segment by segment (a ``?`` or ``#`` in a name stays part of the name)."""
    return f"/runs/{segment(run_id)}/artifacts/{quote(safe_relative(path), safe='/')}"


def write_atomically(target: Path, data: bytes) -> None:
    """``data`` at ``target``, renamed into place (a reader never sees half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.conveyor-tmp")
    tmp.write_bytes(data)
    tmp.replace(target)


def _push_remote(root: Path, remote: RemoteSettings) -> str:
    """The name of the git remote that is this project on the server, else its URL."""
    wanted = f"{remote.url.rstrip('/')}/git/{remote.project}"
    for line in git_output(root, "remote", "-v").splitlines():
        name, _, rest = line.partition("\t")
        url = rest.rsplit(" ", 1)[0]
        scheme, sep, tail = url.partition("://")
        bare = f"{scheme}{sep}{tail.rpartition('@')[2]}".removesuffix(".git").rstrip("/")
        if bare == wanted:
            return shlex.quote(name)
    return shlex.quote(wanted + ".git")


def current_branch(project: Project) -> str:
    """The checked-out branch (what ``conveyor run --remote`` runs by default)."""
    name = git_output(project.root, "symbolic-ref", "--short", "-q", "HEAD")
    if not name:
        raise UsageError("HEAD is detached: name what to run with --ref")
    return name
