"""Attack: a step prints or writes a project secret in an encoded form (base64 at any
alignment, hex, upper case, URL-encoded, JSON), split across two writes or broken over
lines; a viewer reads the live log, the final log and the result ref. No form may show."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.integration.conftest import Repo, repo  # noqa: F401 (a fixture)
from tests.integration.server_support import Server, git, make_server, run_ids

pytestmark = pytest.mark.integration

SECRET = "Tr0ub4dor&3 horse/staple?"

EMIT = """\
import base64, json, os, sys, time, urllib.parse

s = os.environ["API_TOKEN"]
b = s.encode()


def say(text):
    print(text, flush=True)


say("exact " + s)
say("upper " + s.upper())
say("lower " + s.lower())
for prefix in (b"", b"x", b"xy"):  # the three base64 alignments
    say("b64 " + base64.b64encode(prefix + b).decode())
    say("b64url " + base64.urlsafe_b64encode(prefix + b).decode())
say("hex " + b.hex())
say("HEX " + b.hex().upper())
say("url " + urllib.parse.quote(s, safe=""))
say("urlplus " + urllib.parse.quote_plus(s))
say("json " + json.dumps({"token": s}))
sys.stdout.write("split " + s[:9])
sys.stdout.flush()
deadline = time.time() + 60
while not os.path.exists("go") and time.time() < deadline:  # the test has read the half
    time.sleep(0.05)
say(s[9:] + " end")
for i in range(0, len(s), 5):  # like `fold -w 5`
    say(s[i : i + 5])
say("done")
os.makedirs("out", exist_ok=True)
with open("out/secret.txt", "w") as f:
    f.write("token: " + s + "\\nencoded: " + base64.b64encode(b).decode() + "\\n")
with open("out/secret.bin", "wb") as f:
    f.write(b"\\x00\\x01\\xffbinary" + b + b"\\x00")
with open("out/clean.txt", "w") as f:
    f.write("nothing to hide\\n")
"""

PIPELINE = """\
jobs:
  leak:
    steps:
      - run: python3 emit.py
        outputs: [out/secret.txt, out/secret.bin, out/clean.txt]
"""


def forms(value: str) -> dict[str, bytes]:
    """What a viewer must never see: the forms the step prints, computed independently."""
    raw = value.encode()
    found = {
        "exact": raw,
        "upper": value.upper().encode(),
        "lower": value.lower().encode(),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "url": urllib.parse.quote(value, safe="").encode(),
        "urlplus": urllib.parse.quote_plus(value).encode(),
        "json": json.dumps(value)[1:-1].encode(),
    }
    for prefix in (b"", b"x", b"xy"):
        for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            # the middle of the encoding depends on the secret alone, whatever surrounds it
            found[f"{name}+{len(prefix)}"] = encode(prefix + raw)[4:-4]
    for i in range(0, len(value), 5):
        found[f"fold {i}"] = b"\n" + value[i : i + 5].encode() + b"\n"
    found["split"] = value[:9].encode()
    return found


def leaks(data: bytes) -> list[str]:
    return [name for name, form in forms(SECRET).items() if form in data]


def test_no_form_of_a_secret_reaches_a_viewer(repo: Repo, server: Server) -> None:  # noqa: F811
    assert leaks(EMIT.encode()) == []  # the script itself holds no form
    with server.api("lead") as lead:
        assert lead.put("/secrets/API_TOKEN", json={"value": SECRET}).status_code == 204
    repo.write("emit.py", EMIT)
    repo.pipeline(PIPELINE)
    repo.commit()
    ids = run_ids(git(repo.path, "push", server.git_url(), "HEAD:main").stderr)
    assert len(ids) == 1
    run_id = ids[0]
    server.wait_run(run_id, until=("running", "succeeded", "failed"))

    with (
        server.api("viewer") as viewer,
        viewer.stream("GET", f"/runs/{run_id}/logs/leak.step-1") as live,
    ):
        chunks = live.iter_bytes()
        streamed = b""
        while b"split " not in streamed:  # the step now waits, its log ends in half a secret
            streamed += next(chunks)
        assert SECRET[:9].encode() not in streamed and leaks(streamed) == [], streamed
        (server.data / "projects/demo/work" / run_id / "go").touch()
        streamed += b"".join(chunks)
    assert server.wait_run(run_id)["status"] == "succeeded"
    assert b"exact ***" in streamed and b"done" in streamed, streamed
    assert leaks(streamed) == [], streamed

    with server.api("viewer") as viewer:
        final = viewer.get(f"/runs/{run_id}/logs/leak.step-1", params={"follow": False}).content
    assert b"split ***" in final and leaks(final) == [], final
    for log in (server.data / "projects/demo/runs" / run_id).rglob("*.log"):
        assert leaks(log.read_bytes()) == [], log

    git(repo.path, "fetch", "-q", server.git_url(who="viewer"), f"refs/conveyor/results/{run_id}")
    listed = git(repo.path, "ls-tree", "-r", "--name-only", "FETCH_HEAD").stdout.split()
    assert {"out/secret.txt", "out/secret.bin", "out/clean.txt"} <= set(listed)
    for path in listed:
        shown = subprocess.run(
            ["git", "cat-file", "blob", f"FETCH_HEAD:{path}"],
            cwd=repo.path,
            capture_output=True,
            check=True,
        ).stdout
        assert leaks(shown) == [], (path, shown)
    text = git(repo.path, "show", "FETCH_HEAD:out/secret.txt").stdout
    assert text.startswith("token: ***\nencoded: "), text
    note = git(repo.path, "show", "FETCH_HEAD:out/secret.bin").stdout
    assert note.startswith("conveyor-withheld v1\n"), note
    assert git(repo.path, "show", "FETCH_HEAD:out/clean.txt").stdout == "nothing to hide\n"
    with closing(sqlite3.connect(server.data / "server.db")) as db:
        events = db.execute(
            "SELECT data FROM events WHERE run_id = ? AND kind = ?", (run_id, "result-withheld")
        ).fetchall()
    assert [json.loads(e[0]) for e in events] == [{"path": "out/secret.bin"}]

    # the same files through the API (what `conveyor fetch --remote` downloads)
    with server.api("viewer") as viewer:
        for path in ("out/secret.txt", "out/secret.bin", "out/clean.txt"):
            got = viewer.get(f"/runs/{run_id}/artifacts/{path}")
            assert got.status_code == 200 and leaks(got.content) == [], (path, got.content)
        text_file = viewer.get(f"/runs/{run_id}/artifacts/out/secret.txt").text
        assert text_file.startswith("token: ***\nencoded: "), text_file
        binary = viewer.get(f"/runs/{run_id}/artifacts/out/secret.bin").text
        assert binary.startswith("conveyor-withheld v1\n"), binary


def test_a_secret_too_short_to_mask_is_refused(server: Server) -> None:
    with server.api("lead") as lead:
        short = lead.put("/secrets/PIN", json={"value": "12345"})
        assert short.status_code == 400, short.text
        assert "at least 6 characters" in short.json()["detail"]
        assert lead.get("/secrets").json() == []
        assert lead.put("/secrets/PIN", json={"value": "123456"}).status_code == 204


@pytest.fixture
def server_with_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("HOST_ONLY_TOKEN", "host-only-value-1234")  # the server's, not the project's
    srv = make_server(tmp_path, None)
    srv.start()
    yield srv
    srv.stop()


def test_step_secrets_on_the_server_come_from_the_project_only(
    repo: Repo,  # noqa: F811
    server_with_env: Server,
) -> None:
    server = server_with_env
    repo.pipeline(
        'jobs:\n  a:\n    steps:\n      - run: echo "t=$TOKEN"\n'
        "        secrets: {TOKEN: HOST_ONLY_TOKEN}\n"
    )
    repo.commit()
    pushed = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    ids = run_ids(pushed)
    assert len(ids) == 1, pushed
    run = server.wait_run(ids[0])
    with server.api("viewer") as viewer:
        logs = [viewer.get(f"/runs/{ids[0]}/logs/{s['id']}").text for s in run["steps"]]
    assert not any("host-only-value" in log for log in logs), logs
    assert run["status"] == "failed", run
    assert "'HOST_ONLY_TOKEN', which is not a secret of the project" in run["error"], run
