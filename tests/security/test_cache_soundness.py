"""Attacks on the step cache: a hit must never hand back less than the step declares.

Issue items 7 (the key covers the declared outputs; a hit proves the entry holds every
one of them) and 9, the cache part (a secret's value keys the cache through an HMAC,
never the value itself)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import sys
from typing import Any

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, run_ids

pytestmark = pytest.mark.integration

ONE_OUTPUT = """\
name: soundness
jobs:
  make:
    steps:
      - id: write
        run: mkdir -p out && echo a > out/a.txt && echo b > out/b.txt
        outputs: [out/a.txt]
"""

SECRET_STEP = """\
name: secretive
jobs:
  call:
    steps:
      - id: use
        run: mkdir -p out && printf '%s' "$TOKEN" | wc -c > out/len.txt
        secrets: {TOKEN: API_TOKEN}
        outputs: [out/len.txt]
"""


def test_adding_a_declared_output_reruns_the_step_and_makes_the_file(repo: Repo) -> None:
    repo.pipeline(ONE_OUTPUT)
    repo.commit()
    assert repo.run("run").code == 0
    (repo.path / "out/b.txt").unlink()  # e.g. a fresh clone: only declared outputs come back
    repo.pipeline(ONE_OUTPUT.replace("[out/a.txt]", "[out/a.txt, out/b.txt]"))
    result = repo.run("run")
    assert result.code == 0, result.out + result.err
    step = repo.steps()["make.write"]
    assert step["cached"] is False
    assert sorted(o["path"] for o in step["outputs"]) == ["out/a.txt", "out/b.txt"]
    assert (repo.path / "out/b.txt").read_text() == "b\n"
    why = repo.run("why", "make.write").out
    assert "output out/b.txt was added" in why


def test_removing_a_declared_output_is_a_new_key_too(repo: Repo) -> None:
    repo.pipeline(ONE_OUTPUT.replace("[out/a.txt]", "[out/a.txt, out/b.txt]"))
    repo.commit()
    assert repo.run("run").code == 0
    repo.pipeline(ONE_OUTPUT)
    assert repo.run("run").code == 0
    step = repo.steps()["make.write"]
    assert step["cached"] is False
    assert [o["path"] for o in step["outputs"]] == ["out/a.txt"]


def test_a_changed_secret_value_reruns_the_step(repo: Repo) -> None:
    repo.pipeline(SECRET_STEP)
    repo.commit()
    first = repo.run("run", env={"API_TOKEN": "s3cr3t-value-one"})
    assert first.code == 0, first.out + first.err
    assert repo.run("run", env={"API_TOKEN": "s3cr3t-value-one"}).code == 0
    assert repo.steps()["call.use"]["cached"] is True
    assert repo.run("run", env={"API_TOKEN": "another-longer-secret"}).code == 0
    step = repo.steps()["call.use"]
    assert step["cached"] is False
    assert (repo.path / "out/len.txt").read_text().strip() == "21"
    why = repo.run("why", "call.use")
    assert "secret API_TOKEN changed" in why.out, why.out + why.err
    assert "another-longer-secret" not in why.out


def test_a_secret_value_never_reaches_the_records(repo: Repo) -> None:
    repo.pipeline(SECRET_STEP)
    repo.commit()
    value = "do-not-store-this-secret-4821"
    assert repo.run("run", env={"API_TOKEN": value}).code == 0
    state = repo.path / ".conveyor"
    for path in state.rglob("*"):
        if path.is_file():
            assert value.encode() not in path.read_bytes(), path
    shown = repo.run("show", "--json").out + repo.run("why", "call.use", "--json").out
    assert value not in shown
    key = state / "cache-key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert len(key.read_bytes()) >= 32


def test_a_hit_needs_an_entry_holding_every_declared_output(repo: Repo) -> None:
    """An entry whose outputs are fewer than the step declares (an older record, a
    damaged database) is not a hit: the step runs again."""
    repo.pipeline(ONE_OUTPUT.replace("[out/a.txt]", "[out/a.txt, out/b.txt]"))
    repo.commit()
    assert repo.run("run").code == 0
    with sqlite3.connect(repo.path / ".conveyor/conveyor.db") as conn:
        (outputs,) = conn.execute("select outputs from cache_entries").fetchone()
        entries = json.loads(outputs)
        assert len(entries) == 2
        conn.execute("update cache_entries set outputs = ?", (json.dumps(entries[:1]),))
    (repo.path / "out/b.txt").unlink()
    assert repo.run("run").code == 0
    step = repo.steps()["make.write"]
    assert step["cached"] is False
    assert (repo.path / "out/b.txt").exists()
    assert "outputs" in repo.run("why", "make.write").out


SERVER_SECRET_STEP = """\
jobs:
  call:
    steps:
      - id: use
        run: mkdir -p out && printf '%s' "$TOKEN" | wc -c > out/len.txt
        secrets: {TOKEN: API_TOKEN}
        outputs: [out/len.txt]
"""


def _push(repo: Repo, server: Server, note: str) -> dict[str, Any]:
    repo.write("NOTE", note)
    repo.commit()
    out = git(repo.path, "push", server.git_url(), "HEAD:main").stderr
    (run_id,) = run_ids(out)
    run: dict[str, Any] = server.wait_run(run_id)
    assert run["status"] == "succeeded", run
    return run


def test_a_server_keys_secret_values_with_the_project_key(repo: Repo, server: Server) -> None:
    """The key outlives a run (a server's runs each have their own state directory), so
    an unchanged secret is a hit and a changed one is a miss."""
    with server.api("lead") as lead:
        assert lead.put("/secrets/API_TOKEN", json={"value": "first-value"}).status_code == 204
    repo.pipeline(SERVER_SECRET_STEP)
    assert _push(repo, server, "1")["steps"][0]["cached"] is False
    assert _push(repo, server, "2")["steps"][0]["cached"] is True
    with server.api("lead") as lead:
        assert lead.put("/secrets/API_TOKEN", json={"value": "second"}).status_code == 204
    assert _push(repo, server, "3")["steps"][0]["cached"] is False
    key = server.data / "projects/demo" / "cache-key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    # the project's cache scope sits in every recorded fingerprint: an unkeyed digest of
    # the secrets there would let anyone who reads the records test guesses offline
    secrets = hashlib.sha256(b"demo\0API_TOKEN\0first-value").hexdigest()
    environment = hashlib.blake2b(sys.version.encode(), digest_size=16).hexdigest()
    unkeyed = f"project:demo:{secrets}\0{environment}".encode()
    guess = hashlib.blake2b(unkeyed, digest_size=16).hexdigest()
    stored = b"".join(p.read_bytes() for p in server.data.glob("server.db*"))
    assert guess.encode() not in stored
