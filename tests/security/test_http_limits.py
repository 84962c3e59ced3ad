"""Attacks on the server's request bodies and webhooks, against a real server on 127.0.0.1.

- A huge webhook body (declared in ``Content-Length`` or streamed chunked) must be refused
  with 413 without the server holding it: the server process's peak resident memory
  (``VmHWM``) may not grow by anything near the body's size (a memory bound, generously
  margined; not a timing assertion).
- A push body is counted while it streams and kept off the heap (spooled to disk).
- A webhook delivery is accepted once: a replay (same delivery id, or the same signed
  body under a new id) is refused with 409; a branch deletion is accepted and queues nothing.
- The project-name probe: an unknown project answers exactly like a wrong signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import select
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.server_support import Server, git, make_server

pytestmark = pytest.mark.integration
SECRET = "webhook-secret-1"
MIB = 1024 * 1024
BODY = 120 * MIB  # far over the 25 MiB webhook cap
MARGIN = 60 * MIB  # the server may grow by less than half the body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path, None)
    srv.start(workers=0, extra=("--max-push-body", str(150 * MIB), "--mirror-root", str(tmp_path)))
    with srv.api("lead") as lead:
        assert lead.put("/settings", json={"webhook_secret": SECRET}).status_code == 200
    yield srv
    srv.stop()


def peak_memory(proc: subprocess.Popen[str]) -> int:
    """The process's peak resident set size in bytes (VmHWM)."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def send_raw(server: Server, head: str, chunks: Iterator[bytes]) -> str:
    """Send a request head and then body chunks until the server answers or the body ends;
    returns the status line and headers of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the whole body: stop sending
            try:
                sock.sendall(chunk)
            except OSError:
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
    return answer.decode("latin-1")


def _megabytes(total: int, chunked: bool) -> Iterator[bytes]:
    block = b"x" * MIB
    for _ in range(total // MIB):
        yield (b"100000\r\n" + block + b"\r\n") if chunked else block
    if chunked:
        yield b"0\r\n\r\n"


def _signed_head(path: str, extra: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: push\r\n"
        f"X-GitHub-Delivery: d-1\r\nX-Hub-Signature-256: sha256={'0' * 64}\r\n{extra}\r\n"
    )


def test_a_declared_huge_webhook_body_is_refused_before_it_is_read(server: Server) -> None:
    proc = server.procs[0]
    before = peak_memory(proc)
    head = _signed_head("/hooks/github/demo", f"Content-Length: {BODY}\r\n")
    answer = send_raw(server, head, _megabytes(BODY, chunked=False))
    assert answer.startswith("HTTP/1.1 413"), answer
    grown = peak_memory(proc) - before
    assert grown < MARGIN, f"the server grew by {grown // MIB} MiB for a refused body"


def test_a_chunked_huge_webhook_body_is_counted_and_refused(server: Server) -> None:
    proc = server.procs[0]
    before = peak_memory(proc)
    head = _signed_head("/hooks/github/demo", "Transfer-Encoding: chunked\r\n")
    answer = send_raw(server, head, _megabytes(BODY, chunked=True))
    assert answer.startswith("HTTP/1.1 413"), answer
    grown = peak_memory(proc) - before
    assert grown < MARGIN, f"the server grew by {grown // MIB} MiB for a refused body"


def test_a_webhook_without_a_signature_is_refused_before_its_body(server: Server) -> None:
    """No signature header: 401 at once, the (declared huge) body is never read."""
    head = (
        "POST /hooks/github/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: push\r\n"
        f"Content-Length: {20 * MIB}\r\n\r\n"
    )
    answer = send_raw(server, head, _megabytes(20 * MIB, chunked=False))
    assert answer.startswith("HTTP/1.1 401"), answer


def test_an_unverified_webhook_body_is_not_held_in_memory(server: Server) -> None:
    """A body under the cap with a forged signature: spooled while it is checked, so
    many such callers at once cannot fill the server's memory."""
    proc = server.procs[0]
    before = peak_memory(proc)
    body = 20 * MIB
    head = _signed_head("/hooks/github/demo", f"Content-Length: {body}\r\n")
    answer = send_raw(server, head, _megabytes(body, chunked=False))
    assert answer.startswith("HTTP/1.1 401"), answer
    grown = peak_memory(proc) - before
    assert grown < 12 * MIB, f"the server held {grown // MIB} MiB of an unverified body"


def test_an_api_body_over_its_cap_is_refused(server: Server) -> None:
    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"value": "'
        for _ in range(2 * 16):
            yield b"x" * (64 * 1024)
        yield b'"}'

    with server.api("lead") as lead:
        answer = lead.put("/secrets/BIG", content=b'{"value": "' + b"x" * (2 * MIB) + b'"}')
        assert answer.status_code == 413, answer.text
        assert "larger than" in answer.json()["detail"]
        streamed = lead.put(
            "/secrets/BIG", content=chunked(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413, streamed.text
        assert lead.get("/secrets").json() == []


def test_a_push_body_is_counted_while_streaming_and_kept_off_the_heap(server: Server) -> None:
    proc = server.procs[0]
    token = server.tokens["member"]
    auth = "Basic " + __import__("base64").b64encode(f"member:{token}".encode()).decode()
    path = "/git/demo.git/git-receive-pack"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/x-git-receive-pack-request\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    before = peak_memory(proc)
    answer = send_raw(server, head, _megabytes(BODY, chunked=True))  # under the 200 MiB cap
    assert answer.startswith("HTTP/1.1 "), answer
    grown = peak_memory(proc) - before
    assert grown < MARGIN, f"the server held a push body of {grown // MIB} MiB in memory"
    over = send_raw(server, head, _megabytes(200 * MIB, chunked=True))
    assert over.startswith("HTTP/1.1 413"), over


# -- replays ------------------------------------------------------------------------


@pytest.fixture
def hooked(server: Server, tmp_path: Path) -> tuple[Server, str]:
    """The server with a commit on a mirror the webhooks fetch from; returns its id."""
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "conveyor.yml").write_text("jobs:\n  a:\n    steps:\n      - run: echo hi\n")
    git(work, "add", "-A")
    git(work, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "x")
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(mirror))
    with server.api("lead") as lead:
        assert lead.put("/settings", json={"mirror": str(mirror)}).status_code == 200
    return server, git(work, "rev-parse", "HEAD").stdout.strip()


def _github(server: Server, payload: dict[str, object], delivery: str) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
    }
    return httpx.post(f"{server.url}/hooks/github/demo", content=body, headers=headers)


def _runs(server: Server) -> list[dict[str, object]]:
    with server.api() as api:
        page = api.get("/runs").json()
    runs: list[dict[str, object]] = page["runs"] if isinstance(page, dict) else page
    return runs


def test_a_replayed_github_delivery_is_refused(hooked: tuple[Server, str]) -> None:
    server, commit = hooked
    payload = {"ref": "refs/heads/main", "after": commit, "pusher": {"name": "octocat"}}
    first = _github(server, payload, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.status_code == 200, first.text
    again = _github(server, payload, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert again.status_code == 409, again.text
    assert "already" in again.json()["detail"]
    # the delivery id is not signed: the same signed body under a new id is a replay too
    renamed = _github(server, payload, "a-new-delivery-id")
    assert renamed.status_code == 409, renamed.text
    assert len(_runs(server)) == 1


def test_a_replayed_gitlab_delivery_is_refused(hooked: tuple[Server, str]) -> None:
    server, commit = hooked
    body = json.dumps({"ref": "refs/heads/main", "checkout_sha": commit, "user_username": "x"})
    headers = {
        "X-Gitlab-Token": SECRET,
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
    }
    url = f"{server.url}/hooks/gitlab/demo"
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    again = httpx.post(url, content=body, headers=headers)
    assert again.status_code == 409, again.text
    assert len(_runs(server)) == 1


def test_a_branch_deletion_is_accepted_and_queues_nothing(hooked: tuple[Server, str]) -> None:
    server, _ = hooked
    payload = {
        "ref": "refs/heads/gone",
        "before": "1" * 40,
        "after": "0" * 40,
        "deleted": True,
        "pusher": {"name": "octocat"},
    }
    answer = _github(server, payload, "delete-1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["messages"] == []
    gitlab = httpx.post(
        f"{server.url}/hooks/gitlab/demo",
        content=json.dumps({"ref": "refs/heads/gone", "after": "0" * 40, "checkout_sha": None}),
        headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"},
    )
    assert gitlab.status_code == 200, gitlab.text
    assert _runs(server) == []


def test_a_webhook_cannot_write_the_servers_result_refs(
    hooked: tuple[Server, str], tmp_path: Path
) -> None:
    """A signed payload naming a ref outside branches and tags must not make the server
    fetch into it (refs/conveyor/ belongs to the server; a push there is refused)."""
    server, commit = hooked
    git(tmp_path / "mirror.git", "update-ref", "refs/conveyor/results/main", commit)
    payload = {"ref": "refs/conveyor/results/main", "after": commit}
    answer = _github(server, payload, "forge-1")
    assert answer.status_code == 400, answer.text
    assert "branch or tag" in answer.json()["detail"]
    repo = server.data / "projects/demo/repo.git"
    assert git(repo, "for-each-ref", "refs/conveyor/").stdout == ""


def test_an_unknown_project_answers_like_a_wrong_signature(server: Server) -> None:
    body = b'{"ref": "refs/heads/main", "after": "' + b"1" * 40 + b'"}'
    headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"}
    known = httpx.post(f"{server.url}/hooks/github/demo", content=body, headers=headers)
    unknown = httpx.post(f"{server.url}/hooks/github/nope", content=body, headers=headers)
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    token = {"X-Gitlab-Token": "nope", "X-Gitlab-Event": "Push Hook"}
    known = httpx.post(f"{server.url}/hooks/gitlab/demo", content=body, headers=token)
    unknown = httpx.post(f"{server.url}/hooks/gitlab/nope", content=body, headers=token)
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())


def test_deliveries_are_remembered_for_the_window_only(tmp_path: Path) -> None:
    """The delivery table on a real SQLite database: a repeat within the window is
    reported, rows beyond the window are pruned (so the table cannot grow forever)."""
    import sqlalchemy as sa

    from conveyor.server.db import tables as t
    from conveyor.server.db.database import open_database
    from conveyor.server.db.deliveries import Deliveries

    db = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        deliveries = Deliveries(db.engine)
        assert deliveries.remember("demo", ["id:a", "sha256:1"], window=3600) is None
        assert deliveries.remember("demo", ["id:b", "sha256:1"], window=3600) == "sha256:1"
        assert deliveries.remember("other", ["id:a"], window=3600) is None, "per project"
        with db.engine.begin() as conn:  # age the first delivery by two hours
            conn.execute(
                t.deliveries.update().values(received_at=t.deliveries.c.received_at - 7200)
            )
        assert deliveries.remember("demo", ["id:a", "sha256:1"], window=3600) is None
        with db.engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(t.deliveries)).scalar()
        assert rows == 2, "the aged rows were pruned, the new ones kept"
    finally:
        db.close()
