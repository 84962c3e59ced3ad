"""Pachyderm datums as steps of a batch executor (real Dask and Spark clusters, real
bubblewrap on their workers; the real HTCondor pool, which has none): the job's output commit holds the same tree as the local run of the same
job, incremental reuse is unchanged, ``datum_tries``, ``datum_timeout`` and ``err_cmd``
go through the executor, and an image pipeline is refused off the local executor.

Needs ``eval "$(scripts/engines/all.sh env)"``; each engine's tests skip without it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.engines import configured, engine_missing, need_bindings
from tests.integration.conftest import Repo
from tests.integration.server_support import need_bwrap

pytestmark = pytest.mark.integration

# no job id in the outputs: the same datums give the same bytes in any job
TRANSFORM = """\
import os, pathlib, sys
for src in sorted(pathlib.Path("/pfs/images").rglob("*")):
    if src.is_file():
        text = src.read_text()
        if text.startswith("bad"):
            print("bad input", src.name); raise SystemExit(1)
        if text.startswith("slow"):
            import time; time.sleep(120)
        (pathlib.Path("/pfs/out") / src.name).write_text(text.upper())
extra = sys.stdin.read()
pathlib.Path("/pfs/out/seen-" + os.environ["PACH_DATUM_ID"][:8]).write_text(
    os.environ["images"] + " " + os.environ["GREETING"] + " " + extra
    + " uid=" + str(os.getuid()) + " cwd=" + os.getcwd() + "\\n")
"""


def configure(repo: Repo, engine: str) -> None:
    """The executor's settings from the engine's environment; skipped without the engine."""
    if engine == "dask":
        found = os.environ.get("CONVEYOR_DASK_SCHEDULER")
        setting = f'scheduler = "{found}"'
    elif engine == "spark":
        found = os.environ.get("CONVEYOR_SPARK_MASTER")
        setting = f'master = "{found}"'
    else:
        found = os.environ.get("CONDOR_CONFIG") if configured("CONDOR_CONFIG") else None
        setting = ""
    if not found:
        engine_missing(
            engine, f"{engine} is not configured; start it: scripts/engines/{engine}.sh up"
        )
    need_bindings(engine)  # the datums are submitted through the client in this process
    repo.write(".conveyor/config.toml", f"[executors.{engine}]\n{setting}\n")


@pytest.fixture
def project(repo: Repo) -> Repo:
    need_bwrap()
    return repo.with_echo_pipeline()


ok = Repo.ok


def spec(repo: Repo, name: str, **extra: Any) -> str:
    data: dict[str, Any] = {
        "pipeline": {"name": name},
        "transform": {
            "cmd": ["python3", "-c", TRANSFORM],
            "stdin": ["from stdin"],
            "env": {"GREETING": 'it\'s "quoted" $HOME'},
        },
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
        **extra,
    }
    repo.write(f"{name}.json", json.dumps(data, indent=2))
    ok(repo, "pipeline", "create", "-f", f"{name}.json")
    return name


def put(repo: Repo, tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        source = tmp_path / "src" / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(text)
        ok(repo, "data", "put", f"images:/{name}", str(source))


def run_job(repo: Repo, name: str, *args: str) -> dict[str, Any]:
    result = repo.run("pipeline", "run", name, "--json", *args)
    assert result.code == 0, result.err
    job: dict[str, Any] = result.json()
    return job


def tree(repo: Repo, dataset: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(ok(repo, "data", "ls", dataset, "--json"))
    return listed


def read(repo: Repo, tmp_path: Path, ref: str) -> str:
    target = tmp_path / "got"
    ok(repo, "data", "get", ref, str(target))
    text = target.read_text()
    target.unlink()
    return text


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_a_batch_job_gives_the_local_jobs_tree_and_reuses_datums(
    project: Repo, tmp_path: Path, engine: str
) -> None:
    configure(project, engine)
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n", "b.txt": "berry\n"})
    spec(project, "local")
    spec(project, "remote")
    local = run_job(project, "local", "--executor", "local")
    remote = run_job(project, "remote", "--executor", engine, "-j", "2")
    assert local["datum_counts"] == remote["datum_counts"] == {"success": 2}
    assert remote["executor"] == engine
    assert tree(project, "remote") == tree(project, "local")
    seen = [e["path"] for e in tree(project, "remote") if e["path"].startswith("/seen-")]
    text = read(project, tmp_path, f"remote:{seen[0]}")
    # the datum saw its file at /pfs, its variables (quotes and $ kept as data), its stdin,
    # ran as nobody in /pfs
    assert text.split(" ", 1)[0] in ("/pfs/images/a.txt", "/pfs/images/b.txt")
    assert 'it\'s "quoted" $HOME from stdin' in text and "uid=65534 cwd=/pfs" in text

    put(project, tmp_path, {"c.txt": "cherry\n"})
    ok(project, "data", "delete", "images:/a.txt")
    local = run_job(project, "local", "--executor", "local")
    remote = run_job(project, "remote", "--executor", engine)
    assert remote["datum_counts"] == {"success": 1, "skipped": 1}
    assert tree(project, "remote") == tree(project, "local")
    assert read(project, tmp_path, "remote:/c.txt") == "CHERRY\n"


def test_tries_timeout_and_err_cmd_go_through_the_executor(project: Repo, tmp_path: Path) -> None:
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"good.txt": "fine\n", "bad.txt": "bad\n", "slow.txt": "slow\n"})
    spec(project, "flaky", datum_tries=2, datum_timeout="3s")
    result = project.run("pipeline", "run", "flaky", "--executor", "dask", "--json")
    assert result.code != 0
    job = json.loads(result.out)
    assert job["state"] == "failed" and job["output_commit"] is None
    rows = {Path(r["files"][0]).name: r for r in _datums(project, job["id"])}
    assert rows["good.txt"]["state"] == "success"
    for name in ("bad.txt", "slow.txt"):
        assert rows[name]["state"] == "failed" and rows[name]["tries"] == 2
    bad_log = Path(rows["bad.txt"]["log"]).read_text()
    assert bad_log.count("bad input bad.txt") == 2 and "--- exit code 1" in bad_log
    assert Path(rows["slow.txt"]["log"]).read_text().count("--- timed out after 3.0 s") == 2

    # err_cmd recovers the bad datum (no outputs); the rerun retries only failed datums
    put(project, tmp_path, {"slow.txt": "quick\n"})
    data = json.loads((project.path / "flaky.json").read_text())
    data["transform"]["err_cmd"] = ["sh", "-c", "test -e /pfs/images/bad.txt"]
    project.write("flaky.json", json.dumps(data))
    ok(project, "pipeline", "update", "-f", "flaky.json")
    again = run_job(project, "flaky", "--executor", "dask")
    assert again["datum_counts"] == {"success": 2, "recovered": 1}
    paths = {e["path"] for e in tree(project, "flaky")}
    assert {"/good.txt", "/slow.txt"} <= paths and "/bad.txt" not in paths


def test_an_image_pipeline_is_refused_off_the_local_executor(project: Repo, tmp_path: Path) -> None:
    ok(project, "data", "create", "images")
    spec(project, "imaged")
    data = json.loads((project.path / "imaged.json").read_text())
    local_image = os.environ.get("CONVEYOR_TEST_PODMAN_IMAGE")
    data["transform"]["image"] = local_image or "debian:13"
    project.write("imaged.json", json.dumps(data))
    ok(project, "pipeline", "update", "-f", "imaged.json")
    result = project.run("pipeline", "run", "imaged", "--executor", "dask")
    assert result.code == 2
    assert "only the local executor can start" in result.err
    assert "Traceback" not in result.err
    if local_image is None:
        return  # no image at hand for the rest (the podman engine builds one)
    # the project's executor (not --executor) leaves an image pipeline local
    project.write(".conveyor/config.toml", '[project]\nexecutor = "dask"\n')
    job = run_job(project, "imaged")
    assert job["executor"] == "local" and job["state"] == "success"


def test_a_pool_without_bubblewrap_fails_the_datum_with_the_reason(
    project: Repo, tmp_path: Path
) -> None:
    # the HTCondor pool of scripts/engines is a Debian chroot without bubblewrap (and a
    # chroot may not make the user namespace it needs): the datum says why, no commit
    configure(project, "htcondor")
    ok(project, "data", "create", "images")
    put(project, tmp_path, {"a.txt": "apple\n"})
    spec(project, "condor", datum_tries=3)
    result = project.run("pipeline", "run", "condor", "--executor", "htcondor", timeout=300)
    assert result.code != 0 and "Traceback" not in result.err
    assert "this worker has no bubblewrap" in result.err
    job = json.loads(ok(project, "job", "list", "--json"))[0]
    assert job["state"] == "failed" and job["output_commit"] is None
    rows = _datums(project, job["id"])
    assert rows[0]["tries"] == 1  # no further try: another would end the same way


def _datums(repo: Repo, job_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(repo, "datum", "list", job_id, "--json"))
    return rows
