"""Pachyderm pipelines over datasets through the real CLI, real git and real bubblewrap:
an edges-like job, incremental runs (a new file runs one datum, a removed one leaves the
commit), a failing datum (no commit; the rerun retries only it), a cross of two
datasets, clashing outputs, a spec update with --reprocess, and a job killed midway."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo
from tests.integration.server_support import need_bwrap

pytestmark = pytest.mark.integration

# a python transform, Pachyderm's edges shape: every file of the datum, "edged"
EDGES = """\
import os, pathlib
for src in sorted(pathlib.Path("/pfs/images").rglob("*")):
    if src.is_file():
        text = src.read_text()
        if text.startswith("bad"):
            raise SystemExit(3 if text.startswith("bad3") else 1)
        if text.startswith("slow"):
            import time; time.sleep(60)
        (pathlib.Path("/pfs/out") / src.name).write_text(text.upper())
pathlib.Path("/pfs/out/env-" + os.environ["PACH_DATUM_ID"][:8]).write_text(
    os.environ["PACH_JOB_ID"] + " " + os.environ["images"] + "\\n")
"""


@pytest.fixture
def project(repo: Repo) -> Repo:
    need_bwrap()
    return repo.with_echo_pipeline()


ok = Repo.ok


def spec(repo: Repo, name: str = "edges", **extra: Any) -> str:
    data: dict[str, Any] = {
        "pipeline": {"name": name},
        "transform": {"cmd": ["python3", "-c", EDGES]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
        **extra,
    }
    repo.write(f"{name}.json", json.dumps(data, indent=2))
    return f"{name}.json"


def put(repo: Repo, tmp_path: Path, files: dict[str, str], dataset: str = "images") -> None:
    for name, text in files.items():
        source = tmp_path / "src" / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(text)
        ok(repo, "data", "put", f"{dataset}:/{name}", str(source))


def outputs(repo: Repo, dataset: str = "edges") -> dict[str, int]:
    listed = json.loads(ok(repo, "data", "ls", dataset, "--json"))
    return {e["path"]: e["size"] for e in listed if not e["path"].startswith("/env-")}


def run_job(repo: Repo, name: str = "edges", *args: str) -> dict[str, Any]:
    result = repo.run("pipeline", "run", name, "--json", *args)
    assert result.code == 0, result.err
    job: dict[str, Any] = result.json()
    return job


def datum_states(repo: Repo, job_id: str) -> list[str]:
    rows = json.loads(ok(repo, "datum", "list", job_id, "--json"))
    return sorted(row["state"] for row in rows)


def test_edges_job_then_incremental(project: Repo, tmp_path: Path) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "berry\n"})
    ok(project, "pipeline", "create", "-f", spec(project))
    first = run_job(project)
    assert first["datum_counts"] == {"success": 2}
    assert outputs(project) == {"/a.txt": 6, "/b.txt": 6}
    got = project.run("data", "get", "edges:/a.txt", str(tmp_path / "a.out"))
    assert got.code == 0, got.err
    assert (tmp_path / "a.out").read_text() == "APPLE\n"
    commit = json.loads(ok(project, "data", "inspect", "edges", "--json"))["commit"]
    prov = commit["provenance"]
    images = json.loads(ok(project, "data", "inspect", "images", "--json"))["commit"]["id"]
    assert prov["inputs"]["images"]["commit"] == images
    assert prov["spec_version"] == 1 and prov["job"] == first["id"]
    assert len(prov["git_commit"]) == 40
    # the variables a datum sees: its job id and where its input is
    env_files = [
        e["path"]
        for e in json.loads(ok(project, "data", "ls", "edges", "--json"))
        if e["path"].startswith("/env-")
    ]
    assert len(env_files) == 2
    got = project.run("data", "get", f"edges:{env_files[0]}", str(tmp_path / "env.out"))
    assert got.code == 0, got.err
    job_id, where = (tmp_path / "env.out").read_text().split()
    assert job_id == first["id"] and where in ("/pfs/images/a.txt", "/pfs/images/b.txt")

    ok(project, "gc")  # keeps the datum map and each datum's outputs
    put(project, tmp_path, {"c.txt": "cherry\n"})
    second = run_job(project)
    assert second["datum_counts"] == {"success": 1, "skipped": 2}
    assert outputs(project) == {"/a.txt": 6, "/b.txt": 6, "/c.txt": 7}

    ok(project, "data", "delete", "images:/b.txt")
    third = run_job(project)
    assert third["datum_counts"] == {"skipped": 2}
    assert outputs(project) == {"/a.txt": 6, "/c.txt": 7}

    listed = json.loads(ok(project, "job", "list", "--json"))
    assert [j["id"] for j in listed] == [third["id"], second["id"], first["id"]]
    shown = json.loads(ok(project, "job", "inspect", first["id"][:8], "--json"))
    assert shown["output_commit"] == first["output_commit"]
    pipelines = json.loads(ok(project, "pipeline", "list", "--json"))
    assert [(p["name"], p["last_job"]["id"]) for p in pipelines] == [("edges", third["id"])]


def test_a_failing_datum_fails_the_job_and_the_rerun_retries_only_it(
    project: Repo, tmp_path: Path
) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "bad\n", "c.txt": "bad3\n"})
    ok(
        project,
        "pipeline",
        "create",
        "-f",
        spec(
            project,
            datum_tries=2,
            transform={"cmd": ["python3", "-c", EDGES], "accept_return_code": [3]},
        ),
    )
    result = project.run("pipeline", "run", "edges")
    assert result.code == 1
    assert "1 datum(s) failed, the job made no commit" in result.err
    assert "/pfs/images/b.txt" in result.err and "after 2 tries" in result.err
    assert json.loads(ok(project, "data", "inspect", "edges", "--json"))["commit"] is None
    failed = json.loads(ok(project, "job", "list", "--json"))[0]
    assert failed["state"] == "failed"
    rows = {
        r["files"][0]: r for r in json.loads(ok(project, "datum", "list", failed["id"], "--json"))
    }
    assert rows["/pfs/images/b.txt"]["state"] == "failed"
    assert rows["/pfs/images/b.txt"]["tries"] == 2
    assert rows["/pfs/images/c.txt"]["state"] == "success"  # exit 3 is accepted
    assert "exit code 1" in Path(rows["/pfs/images/b.txt"]["log"]).read_text()

    put(project, tmp_path, {"b.txt": "better\n"})
    rerun = run_job(project)
    assert rerun["datum_counts"] == {"success": 1, "skipped": 2}
    assert outputs(project) == {"/a.txt": 6, "/b.txt": 7}


def test_a_cross_of_two_datasets(project: Repo, tmp_path: Path) -> None:
    ok(project, "data", "create", "left")
    ok(project, "data", "create", "right")
    put(project, tmp_path, {"l1": "x", "l2": "y"}, "left")
    put(project, tmp_path, {"r1": "1", "r2": "2"}, "right")
    script = (
        "for l in /pfs/left/*; do for r in /pfs/right/*; do "
        'cat "$l" "$r" > /pfs/out/$(basename $l)-$(basename $r); done; done'
    )
    project.write(
        "cross.json",
        json.dumps(
            {
                "pipeline": {"name": "pairs"},
                "transform": {"cmd": ["sh"], "stdin": [script]},
                "input": {
                    "cross": [
                        {"pfs": {"repo": "left", "glob": "/*"}},
                        {"pfs": {"repo": "right", "glob": "/*"}},
                    ]
                },
            }
        ),
    )
    ok(project, "pipeline", "create", "-f", "cross.json")
    job = run_job(project, "pairs", "-j", "2")
    assert job["datum_counts"] == {"success": 4}
    assert outputs(project, "pairs") == {"/l1-r1": 2, "/l1-r2": 2, "/l2-r1": 2, "/l2-r2": 2}
    got = project.run("data", "get", "pairs:/l2-r1", str(tmp_path / "pair"))
    assert got.code == 0, got.err
    assert (tmp_path / "pair").read_text() == "y1"


def test_datums_writing_one_path_differently_make_no_commit(project: Repo, tmp_path: Path) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "berry\n"})
    project.write(
        "clash.json",
        json.dumps(
            {
                "pipeline": {"name": "clash"},
                "transform": {"cmd": ["sh"], "stdin": ["cp /pfs/images/* /pfs/out/same"]},
                "input": {"pfs": {"repo": "images", "glob": "/*"}},
            }
        ),
    )
    ok(project, "pipeline", "create", "-f", "clash.json")
    result = project.run("pipeline", "run", "clash")
    assert result.code == 2
    assert "both write /pfs/out/same with different content" in result.err
    assert "Traceback" not in result.err
    assert json.loads(ok(project, "data", "inspect", "clash", "--json"))["commit"] is None


def test_update_with_reprocess_runs_every_datum(project: Repo, tmp_path: Path) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "berry\n"})
    ok(project, "pipeline", "create", "-f", spec(project))
    run_job(project)
    assert run_job(project)["datum_counts"] == {"skipped": 2}
    ok(project, "pipeline", "update", "-f", spec(project), "--reprocess")
    assert run_job(project)["datum_counts"] == {"success": 2}
    assert run_job(project)["datum_counts"] == {"skipped": 2}  # once per update
    assert run_job(project, "edges", "--reprocess")["datum_counts"] == {"success": 2}
    shown = json.loads(ok(project, "pipeline", "inspect", "edges", "--json"))
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    ok(project, "pipeline", "update", "-f", spec(project, reprocess_spec="every_job"))
    assert run_job(project)["datum_counts"] == {"success": 2}
    ok(project, "pipeline", "delete", "edges")
    assert json.loads(ok(project, "pipeline", "list", "--json")) == []
    assert project.run("data", "inspect", "edges").code == 2


def test_bad_specs_are_refused_with_their_position(project: Repo) -> None:
    project.write(
        "unknown.json",
        '{\n  "pipeline": {"name": "edges"},\n  "transform": {"cmd": ["true"]},\n'
        '  "input": {"pfs": {"repo": "nowhere", "glob": "/*"}}\n}\n',
    )
    result = project.run("pipeline", "create", "-f", "unknown.json")
    assert result.code == 2
    assert "unknown.json:4:" in result.err and "'nowhere', which does not exist" in result.err
    assert "Traceback" not in result.err
    assert json.loads(ok(project, "pipeline", "list", "--json")) == []
    ok(project, "data", "create", "images")
    ok(
        project,
        "pipeline",
        "create",
        "-f",
        spec(project, transform={"cmd": ["true"], "image": "alpine:3"}),
    )
    project.write(".conveyor/config.toml", '[containers]\nruntime = "none"\n')
    result = project.run("pipeline", "run", "edges")
    assert result.code == 2 and "no container runtime is configured here" in result.err
    assert "Traceback" not in result.err
    result = project.run("pipeline", "create", "-f", spec(project))
    assert result.code == 2 and "already exists" in result.err


def test_a_job_killed_midway_leaves_no_commit_and_the_next_resumes(
    project: Repo, tmp_path: Path
) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "berry\n", "z.txt": "slow\n"})
    ok(project, "pipeline", "create", "-f", spec(project))
    proc = project.popen("pipeline", "run", "edges")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = json.loads(ok(project, "job", "list", "--json"))
        if listed and listed[0]["datum_counts"].get("success") == 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("the first two datums did not finish")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert json.loads(ok(project, "data", "inspect", "edges", "--json"))["commit"] is None
    assert json.loads(ok(project, "job", "list", "--json"))[0]["state"] == "interrupted"
    put(project, tmp_path, {"z.txt": "zest\n"})
    job = run_job(project)
    assert job["datum_counts"] == {"success": 1, "skipped": 2}
    assert outputs(project) == {"/a.txt": 6, "/b.txt": 6, "/z.txt": 5}


def test_put_with_run_runs_the_downstream_pipelines_in_order(project: Repo, tmp_path: Path) -> None:
    ok(project, "data", "create", "images")
    ok(project, "pipeline", "create", "-f", spec(project))
    project.write(
        "count.json",
        json.dumps(
            {
                "pipeline": {"name": "count"},
                "transform": {"cmd": ["sh"], "stdin": ["ls /pfs/edges | wc -l > /pfs/out/n"]},
                "input": {"pfs": {"repo": "edges", "glob": "/"}},
            }
        ),
    )
    ok(project, "pipeline", "create", "-f", "count.json")
    (tmp_path / "a.txt").write_text("apple\n")
    result = project.run("data", "put", "images", str(tmp_path / "a.txt"), "--run", "--json")
    assert result.code == 0, result.err
    assert [j["pipeline"] for j in result.json()["jobs"]] == ["edges", "count"]
    got = project.run("data", "get", "count:/n", str(tmp_path / "n"))
    assert got.code == 0, got.err
    assert (tmp_path / "n").read_text().strip() == "2"  # a.txt and its env- file


def test_a_pipeline_with_an_image_runs_its_datums_in_it(project: Repo, tmp_path: Path) -> None:
    name = os.environ.get("CONVEYOR_TEST_PODMAN_IMAGE")
    if not name or shutil.which("podman") is None:
        engine_missing("podman", "podman is not configured for tests: scripts/engines/podman.sh")
    assert name is not None
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "berry\n"})
    script = (
        'for f in /pfs/images/*; do tr a-z A-Z < "$f" > /pfs/out/$(basename "$f"); done; '
        'grep -q bookworm /etc/os-release && echo "$PACH_JOB_ID" > /pfs/out/job-$PACH_DATUM_ID; '
        "touch /pfs/images/pwned 2>/dev/null && echo breached > /pfs/out/breached; true"
    )
    ok(
        project,
        "pipeline",
        "create",
        "-f",
        spec(project, transform={"cmd": ["sh"], "stdin": [script], "image": name}),
    )
    job = run_job(project)
    assert job["datum_counts"] == {"success": 2}
    assert job["image"]["id"].startswith("sha256:") and job["image"]["runtime"] == "podman"
    listed = json.loads(ok(project, "data", "ls", "edges", "--json"))
    paths = sorted(e["path"] for e in listed)
    assert paths[:2] == ["/a.txt", "/b.txt"] and len(paths) == 4  # two job-<datum> files
    assert "/breached" not in paths
    prov = json.loads(ok(project, "data", "inspect", "edges", "--json"))["commit"]["provenance"]
    assert prov["image"] == job["image"]
    leftover = subprocess.run(
        ["podman", "ps", "-aq", "--filter", f"name=conveyor-pach-{job['id'][:12]}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert leftover.stdout.split() == []


def test_err_cmd_recovers_a_failed_datum_and_job_timeout_stops_the_job(
    project: Repo, tmp_path: Path
) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "bad\n"})
    transform = {"cmd": ["python3", "-c", EDGES], "err_cmd": ["sh", "-c", "exit 0"]}
    ok(project, "pipeline", "create", "-f", spec(project, datum_tries=1, transform=transform))
    job = run_job(project)
    assert job["datum_counts"] == {"success": 1, "recovered": 1}
    assert outputs(project) == {"/a.txt": 6}  # a recovered datum writes nothing

    ok(project, "data", "delete", "images:/b.txt")
    put(project, tmp_path, {"z.txt": "slow\n"})
    ok(
        project,
        "pipeline",
        "update",
        "-f",
        spec(project, job_timeout="2s", transform={"cmd": ["python3", "-c", EDGES]}),
    )
    result = project.run("pipeline", "run", "edges")
    assert result.code == 1 and "/pfs/images/z.txt" in result.err, result.err
    failed = json.loads(ok(project, "job", "list", "--json"))[0]
    rows = {
        r["files"][0]: r for r in json.loads(ok(project, "datum", "list", failed["id"], "--json"))
    }
    assert "timed out" in Path(rows["/pfs/images/z.txt"]["log"]).read_text()


def _newest_job(project: Repo, other_than: str = "", done: int = 0) -> dict[str, Any]:
    """The newest job once it exists (and has ``done`` datums that succeeded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = json.loads(ok(project, "job", "list", "--json"))
        fresh = listed and listed[0]["id"] != other_than
        if fresh and listed[0]["datum_counts"].get("success", 0) >= done:
            found: dict[str, Any] = listed[0]
            return found
        time.sleep(0.2)
    raise AssertionError("no new job showed up")


def test_job_wait_follows_a_job_to_its_end_with_an_exit_code_per_outcome(
    project: Repo, tmp_path: Path
) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "z.txt": "slow\n"})  # z sleeps 60 s
    ok(project, "pipeline", "create", "-f", spec(project))
    proc = project.popen("pipeline", "run", "edges")
    try:
        running = _newest_job(project, done=1)
        # still running when the timeout expires: exit 3, the job goes on
        timed = project.run("job", "wait", running["id"][:8], "--timeout", "1")
        assert timed.code == 3, timed.err
        assert "still running after 1 s (1/2 datums done)" in timed.err
        assert "running: 1/2 datums done (1 success)" in timed.err  # progress on stderr
        # its process killed while we wait: interrupted, exit 1
        waiter = project.popen("job", "wait", running["id"])
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 1, err
        assert f"job {running['id']} interrupted" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    put(project, tmp_path, {"z.txt": "zest\n"})
    again = project.popen("pipeline", "run", "edges")
    second = _newest_job(project, other_than=running["id"])
    waited = project.run("job", "wait", second["id"], "--json")
    again.communicate(timeout=120)
    assert waited.code == 0, waited.err
    assert waited.json()["state"] == "success"
    assert waited.json()["output_commit"] is not None
    assert project.run("job", "wait", second["id"]).code == 0  # ended: at once
    unknown = project.run("job", "wait", "abcd1234")
    assert unknown.code == 2 and "there is no job 'abcd1234'" in unknown.err
