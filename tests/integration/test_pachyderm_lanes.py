"""Datum lanes (``executors/pfs_lane``): a job's datums run one after another in one
long-lived bubblewrap sandbox per ``-j`` slot, through the real CLI and real bwrap.
What one datum leaves (a background process, files in /tmp, /var/tmp or /dev/shm) is
gone for the next; a datum that kills its sandbox or outlives its timeout fails alone,
and the datums after it get a fresh sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Repo
from tests.integration.server_support import need_bwrap

pytestmark = pytest.mark.integration

# each datum: what it finds (scratch files, processes but its own), which sandbox it is
# in (the start time of the sandbox's PID 1), then it leaves behind all it can
LEAVER = """\
name=${images##*/}
found="pfs $(ls -A /pfs/images /pfs/out | tr -d '\n:/')"
{
  echo "sandbox $(cut -d' ' -f22 /proc/1/stat)"
  echo "$found"
  echo "tmp $(ls -A /tmp /var/tmp /dev/shm | tr -d '\\n:/a-z ')"
  for p in /proc/[0-9]*; do cat "$p/comm" 2>/dev/null; done | grep -c '^sleep$' | sed 's/^/sleeps /'
} > /pfs/out/$name
touch /tmp/left-$name /var/tmp/left-$name /dev/shm/left-$name /pfs/out/extra-$name
mkdir /tmp/closed-$name && chmod 000 /tmp/closed-$name
sleep 300 &
setsid sleep 300 &
nohup sh -c 'sleep 300' >/dev/null 2>&1 &
exit 0
"""

# a datum named kill* ends its sandbox's shim (and itself); hang* sleeps past its timeout
BREAKER = """\
case ${images##*/} in
  kill*) kill -KILL 2; sleep 5 ;;
  hang*) sleep 300 ;;
esac
echo "sandbox $(cut -d' ' -f22 /proc/1/stat)" > /pfs/out/${images##*/}
"""


@pytest.fixture
def project(repo: Repo) -> Repo:
    need_bwrap()
    return repo.with_echo_pipeline()


ok = Repo.ok


def pipeline(repo: Repo, name: str, script: str, **extra: Any) -> None:
    data = {
        "pipeline": {"name": name},
        "transform": {"cmd": ["sh", "-c", script]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
        **extra,
    }
    repo.write(f"{name}.json", json.dumps(data))
    ok(repo, "pipeline", "create", "-f", f"{name}.json")


def put(repo: Repo, tmp_path: Path, names: list[str]) -> None:
    ok(repo, "data", "create", "images")
    for name in names:
        source = tmp_path / "src" / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"{name}\n")
        ok(repo, "data", "put", f"images:/{name}", str(source))


def read(repo: Repo, tmp_path: Path, where: str) -> str:
    target = tmp_path / "got" / where.replace("/", "_")
    target.parent.mkdir(exist_ok=True)
    ok(repo, "data", "get", where, str(target))
    return target.read_text()


def test_what_a_datum_leaves_is_gone_for_the_next_in_its_sandbox(
    project: Repo, tmp_path: Path
) -> None:
    names = ["a", "b", "c", "d"]
    put(project, tmp_path, names)
    pipeline(project, "leaver", LEAVER, datum_timeout="120s")
    result = project.run("pipeline", "run", "leaver", "-j", "1", "--json")
    assert result.code == 0, result.err
    seen = {name: read(project, tmp_path, f"leaver:/{name}").splitlines() for name in names}
    sandboxes = {lines[0] for lines in seen.values()}
    assert len(sandboxes) == 1, seen  # one lane: the four datums shared one sandbox
    for name, lines in seen.items():
        assert lines[1:] == [f"pfs pfsimages{name}pfsout", "tmp ", "sleeps 0"], seen


def test_a_datum_that_kills_its_sandbox_or_hangs_fails_alone(project: Repo, tmp_path: Path) -> None:
    names = ["a", "hang", "kill", "z"]
    put(project, tmp_path, names)
    pipeline(project, "breaker", BREAKER, datum_timeout="3s", datum_tries=1)
    result = project.run("pipeline", "run", "breaker", "-j", "1")
    assert result.code == 1
    job = json.loads(ok(project, "job", "list", "--json"))[0]
    rows = {
        row["files"][0]: row
        for row in json.loads(ok(project, "datum", "list", job["id"], "--json"))
    }
    states = {path: row["state"] for path, row in rows.items()}
    assert states == {
        "/pfs/images/a": "success",
        "/pfs/images/hang": "failed",
        "/pfs/images/kill": "failed",
        "/pfs/images/z": "success",
    }
    assert "timed out" in Path(rows["/pfs/images/hang"]["log"]).read_text()
    assert "sandbox ended" in Path(rows["/pfs/images/kill"]["log"]).read_text()


def deep(where: str, levels: int) -> str:
    """Shell text making a directory chain ``levels`` deep below ``where`` (relative
    steps: the shell never names the whole path)."""
    return (
        f"(cd {where} && i=0 && while [ $i -lt {levels} ]; do mkdir d && cd d; "
        "i=$((i+1)); done && echo deep > f)\n"
    )


def test_trees_deeper_than_the_stack_are_stored_and_cleared(project: Repo, tmp_path: Path) -> None:
    put(project, tmp_path, ["a", "b"])
    script = deep("/pfs/out", 1200) + deep("/tmp", 1200) + 'echo ok > /pfs/out/"${images##*/}"\n'
    pipeline(project, "deep", script, datum_tries=1)
    result = project.run("pipeline", "run", "deep", "-j", "1")
    assert result.code == 0, result.err
    assert read(project, tmp_path, "deep:/a") == "ok\n"


def test_an_output_path_longer_than_the_system_allows_fails_its_datum_alone(
    project: Repo, tmp_path: Path
) -> None:
    put(project, tmp_path, ["a"])
    pipeline(project, "deeper", deep("/pfs/out", 2100), datum_tries=1)
    result = project.run("pipeline", "run", "deeper", "-j", "1")
    assert result.code == 1, result.err
    assert "internal error" not in result.err and "cannot be stored" in result.err
