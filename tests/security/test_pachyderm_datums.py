"""A Pachyderm datum sees its own /pfs and nothing of the project (issue 12).

A spec's cmd is the user's code run over datasets: it must not read the project's
state (the records, the store holding every dataset's blobs, other datasets), the
user's home or the checkout, nor change its own inputs. Input names become directories
under /pfs: names with path tricks are refused before anything runs.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import need_bwrap

pytestmark = pytest.mark.integration

ATTACKS = {
    "READ-RECORDS": "head -c 16 {root}/.conveyor/conveyor.db",
    "LIST-STORE": "ls {root}/.conveyor/store/objects",
    "READ-CHECKOUT": "cat {root}/conveyor.yml",
    "READ-SECRET-DATASET-BLOB": "cat {blob}",
    "LIST-HOME": "ls {home}",
    "WRITE-INPUT": "echo pwned > /pfs/images/a.txt",
    # an input may be a hard link to the store's blob: its inode stays unchangeable
    "CHMOD-INPUT": "chmod 666 /pfs/images/a.txt",
    "TOUCH-INPUT": "touch -d 2000-01-01 /pfs/images/a.txt",
    "LINK-INPUT-INTO-OUT": "ln /pfs/images/a.txt /pfs/out/linked",
    "WRITE-ROOT": "touch /pwned",
    "SIGNAL-PARENT": "kill -0 {pid}",
    # in a lane: the channel to the host is held by no process a datum may inspect
    "SEE-LANE-CHANNEL": "ls -l /proc/1/fd/ /proc/2/fd/ | grep -q pipe",
    # nor does the datum itself inherit it (ls holds 0-2 and its listing's 3)
    "INHERIT-LANE-CHANNEL": "ls /proc/self/fd | grep -qv '^[0-3]$'",
    "REACH-HOST-NETWORK": "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)'",
}


@pytest.fixture
def project(repo: Repo) -> Repo:
    need_bwrap()
    return repo.with_echo_pipeline()


ok = Repo.ok


def test_a_datum_sees_nothing_outside_its_pfs(project: Repo, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    ok(project, "data", "create", "secrets")
    ok(project, "data", "put", "secrets", str(secret))
    listed = json.loads(ok(project, "data", "ls", "secrets", "--json"))
    digest = listed[0]["digest"]
    blob = project.path / ".conveyor" / "store" / "objects" / digest[:2] / digest[2:]
    assert blob.is_file()
    (tmp_path / "a.txt").write_text("apple\n")
    ok(project, "data", "create", "images")
    ok(project, "data", "put", "images", str(tmp_path / "a.txt"))
    listener = socket.create_server(("127.0.0.1", 0))  # the host's loopback: unreachable
    port = listener.getsockname()[1]
    values = {"root": project.path, "blob": blob, "home": Path.home(), "pid": os.getpid()}
    values["port"] = port
    lines = [
        f"if {cmd.format(**values)} >/dev/null 2>&1; then echo {name} >> /pfs/out/breached; "
        f"else echo {name} >> /pfs/out/refused; fi"
        for name, cmd in ATTACKS.items()
    ]
    project.write(
        "attack.json",
        json.dumps(
            {
                "pipeline": {"name": "attack"},
                "transform": {
                    "cmd": ["sh"],
                    "stdin": ["cat /pfs/images/a.txt > /pfs/out/ok", *lines],
                },
                "input": {"pfs": {"repo": "images", "glob": "/*"}},
            }
        ),
    )
    ok(project, "pipeline", "create", "-f", "attack.json")
    result = project.run("pipeline", "run", "attack")
    listener.close()
    assert result.code == 0, result.err
    files = {e["path"] for e in json.loads(ok(project, "data", "ls", "attack", "--json"))}
    assert "/breached" not in files
    got = project.run("data", "get", "attack:/refused", str(tmp_path / "refused"))
    assert got.code == 0, got.err
    assert (tmp_path / "refused").read_text().split() == list(ATTACKS)
    project.run("data", "get", "attack:/ok", str(tmp_path / "ok"))
    assert (tmp_path / "ok").read_text() == "apple\n"  # the datum did run
    assert (tmp_path / "a.txt").read_text() == "apple\n"
    apple = json.loads(ok(project, "data", "ls", "images", "--json"))[0]["digest"]
    stored = project.path / ".conveyor" / "store" / "objects" / apple[:2] / apple[2:]
    assert stored.read_text() == "apple\n" and stored.stat().st_mode & 0o777 == 0o444
    assert stored.stat().st_mtime > 946_684_800 + 86_400  # not 2000-01-01
    assert project.run("verify").code == 0


@pytest.mark.parametrize("name", ["../evil", "a/b", ".", "..", "out", "x\u0000y"])
def test_input_names_with_path_tricks_are_refused(project: Repo, name: str) -> None:
    ok(project, "data", "create", "images")
    project.write(
        "tricky.json",
        json.dumps(
            {
                "pipeline": {"name": "tricky"},
                "transform": {"cmd": ["true"]},
                "input": {"pfs": {"repo": "images", "glob": "/*", "name": name}},
            }
        ),
    )
    result = project.run("pipeline", "create", "-f", "tricky.json")
    assert result.code == 2, result.err
    assert "tricky.json:" in result.err and "Traceback" not in result.err
    assert json.loads(ok(project, "pipeline", "list", "--json")) == []


@pytest.mark.parametrize("repo_name", ["../images", "images/../x", "-images"])
def test_input_repos_with_path_tricks_are_refused(project: Repo, repo_name: str) -> None:
    project.write(
        "tricky.json",
        json.dumps(
            {
                "pipeline": {"name": "tricky"},
                "transform": {"cmd": ["true"]},
                "input": {"pfs": {"repo": repo_name, "glob": "/*"}},
            }
        ),
    )
    result = project.run("pipeline", "create", "-f", "tricky.json")
    assert result.code == 2, result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../..", "/pfs/images"])
def test_an_output_link_out_of_pfs_out_fails_the_datum(
    project: Repo, tmp_path: Path, target: str
) -> None:
    (tmp_path / "a.txt").write_text("apple\n")
    ok(project, "data", "create", "images")
    ok(project, "data", "put", "images", str(tmp_path / "a.txt"))
    project.write(
        "link.json",
        json.dumps(
            {
                "pipeline": {"name": "link"},
                "transform": {"cmd": ["ln", "-s", target, "/pfs/out/leak"]},
                "input": {"pfs": {"repo": "images", "glob": "/*"}},
                "datum_tries": 1,
            }
        ),
    )
    ok(project, "pipeline", "create", "-f", "link.json")
    result = project.run("pipeline", "run", "link")
    assert result.code == 1, result.err
    assert "cannot be stored" in result.err and "Traceback" not in result.err
    assert json.loads(ok(project, "data", "inspect", "link", "--json"))["commit"] is None
