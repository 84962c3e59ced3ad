"""Attacks on the store: hostile output trees, a store that never shrinks, corrupted blobs.

Each test runs the real CLI in a real git repository (no mocks), except the unit test of
an OS error while storing, which makes the store fail on purpose.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conveyor.errors import StoreError
from conveyor.execute.workspace import Workspace
from conveyor.store.cas import ContentStore
from conveyor.store.hashing import DigestCache
from tests.integration import conftest as integration
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, conveyor, git, run_ids

pytestmark = pytest.mark.integration
repo = integration.repo  # the fixture: a real git repository in a temp directory


def _pipeline(repo: Repo, command: str, outputs: str = "[out]") -> None:
    repo.pipeline(
        f"""\
        name: links
        jobs:
          make:
            steps:
              - name: tree
                run: {command}
                outputs: {outputs}
        """
    )
    repo.commit("pipeline")


def _step(repo: Repo) -> dict[str, object]:
    return repo.steps()["make.tree"]


# -- item 8: symlinks and OS errors while storing outputs ------------------------------


def test_a_dangling_link_in_an_output_fails_the_step_naming_the_path(repo: Repo) -> None:
    _pipeline(repo, "mkdir -p out && echo x > out/a && ln -s missing out/broken")
    result = repo.run("run")
    assert result.code == 1, result.out + result.err
    assert "internal error" not in result.err
    run = repo.show()
    assert run["status"] == "failed"
    error = str(_step(repo)["error"])
    assert "out/broken" in error and "dangling" in error


def test_a_link_out_of_the_workspace_fails_the_step_naming_the_path(repo: Repo) -> None:
    _pipeline(repo, "mkdir -p out && ln -s /etc/passwd out/secret && ln -s / out/root")
    result = repo.run("run")
    assert result.code == 1, result.out + result.err
    assert repo.show()["status"] == "failed"
    error = str(_step(repo)["error"])
    assert "outside the workspace" in error
    assert "out/root" in error or "out/secret" in error


def test_a_top_level_output_link_out_of_the_workspace_fails_the_step(repo: Repo) -> None:
    _pipeline(repo, "ln -s /etc/hostname model.bin", outputs="[model.bin]")
    result = repo.run("run")
    assert result.code == 1, result.out + result.err
    assert "model.bin" in str(_step(repo)["error"])


def test_links_within_the_workspace_are_stored_as_links_and_restored(repo: Repo) -> None:
    _pipeline(
        repo,
        "mkdir -p out/sub out/empty && echo hi > out/sub/f && ln -s sub/f out/to-file"
        " && ln -s sub out/to-dir && ln -s ../conveyor.yml out/spec",
    )
    assert repo.run("run").code == 0
    assert os.readlink(repo.path / "out/to-file") == "sub/f"
    for name in ("to-file", "to-dir", "spec", "empty"):
        (repo.path / "out" / name).unlink() if name != "empty" else (
            repo.path / "out/empty"
        ).rmdir()
    result = repo.run("run")
    assert result.code == 0, result.err
    assert _step(repo)["cached"] is True
    out = repo.path / "out"
    assert os.readlink(out / "to-file") == "sub/f"
    assert os.readlink(out / "to-dir") == "sub"
    assert os.readlink(out / "spec") == "../conveyor.yml"
    assert (out / "empty").is_dir()
    assert (out / "to-file").read_text() == "hi\n"


def test_a_fifo_in_an_output_fails_the_step_instead_of_hanging(repo: Repo) -> None:
    _pipeline(repo, "mkdir -p out && mkfifo out/pipe")
    result = repo.run("run", timeout=60)
    assert result.code == 1, result.out + result.err
    error = str(_step(repo)["error"])
    assert "out/pipe" in error and "not a regular file" in error


def test_an_os_error_while_storing_fails_the_output_not_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.execute.workspace import OutputError

    store = ContentStore(tmp_path / "store")
    root = tmp_path / "ws"
    (root / "out").mkdir(parents=True)
    (root / "out/a").write_text("a")
    workspace = Workspace(root, store, DigestCache(tmp_path / "digests.sqlite"))

    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ContentStore, "put_bytes", full_disk)
    with pytest.raises(OutputError, match=r"cannot store the output out.*No space left"):
        workspace.store_outputs(["out"])
    assert issubclass(OutputError, Exception) and not issubclass(OutputError, StoreError)


# -- item 11: deleting runs, retention, gc, verify -------------------------------------

_DATA_PIPELINE = """\
name: shrink
jobs:
  make:
    steps:
      - name: copy
        run: mkdir -p out/tree && cp data.txt out/copy.txt && cp data.txt out/tree/
        inputs: [data.txt]
        outputs: [out/copy.txt, out/tree]
"""


def _run_with(repo: Repo, text: str, commit: bool = True) -> str:
    repo.write("data.txt", text)
    if commit:
        repo.commit(f"data {text.strip()}")
    result = repo.run("run")
    assert result.code == 0, result.out + result.err
    return str(repo.show()["id"])


def _blob(repo: Repo, text: str) -> Path:
    import blake3

    digest = blake3.blake3(text.encode()).hexdigest()
    return repo.path / ".conveyor/store/objects" / digest[:2] / digest[2:]


def _run_ids(repo: Repo) -> list[str]:
    result = repo.run("runs", "--json")
    assert result.code == 0, result.err
    return [r["id"] for r in result.json()]


def _setup(repo: Repo) -> None:
    repo.pipeline(_DATA_PIPELINE)
    repo.commit("pipeline")


def test_deleting_a_superseded_run_lets_gc_free_its_blobs(repo: Repo) -> None:
    _setup(repo)
    old = _run_with(repo, "old data\n")
    new = _run_with(repo, "new data\n")
    assert _blob(repo, "old data\n").exists()
    result = repo.run("runs", "delete", old, "--json")
    assert result.code == 0, result.out + result.err
    assert result.json()["deleted"] == [old]
    assert _run_ids(repo) == [new]
    assert not (repo.path / ".conveyor/logs" / old).exists()
    gc = repo.run("gc", "--json")
    assert gc.code == 0, gc.err
    assert gc.json()["removed"] >= 2  # the old file, the old tree's manifest
    assert not _blob(repo, "old data\n").exists()
    # what the kept run needs is still there: a lost workspace comes back from the cache
    import shutil

    shutil.rmtree(repo.path / "out")
    assert repo.run("run").code == 0
    assert repo.steps()["make.copy"]["cached"] is True
    assert (repo.path / "out/tree/data.txt").read_text() == "new data\n"


def test_runs_delete_dry_run_deletes_nothing(repo: Repo) -> None:
    _setup(repo)
    old = _run_with(repo, "a\n")
    _run_with(repo, "b\n")
    result = repo.run("runs", "delete", old[:6], "--dry-run")
    assert result.code == 0, result.err
    assert old in result.out and "would delete 1 runs" in result.out
    assert len(_run_ids(repo)) == 2


def test_runs_delete_refuses_an_unknown_run_and_deletes_none(repo: Repo) -> None:
    _setup(repo)
    old = _run_with(repo, "a\n")
    _run_with(repo, "b\n")
    result = repo.run("runs", "delete", old, "ffffffffffff")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "ffffffffffff" in result.err
    assert "Traceback" not in result.err
    assert len(_run_ids(repo)) == 2
    result = repo.run("runs", "delete", "--", "-x")
    assert result.code == 2 and "Traceback" not in result.err


def test_runs_delete_refuses_the_run_whose_outputs_the_workspace_holds(repo: Repo) -> None:
    _setup(repo)
    _run_with(repo, "a\n")
    latest = _run_with(repo, "b\n")
    result = repo.run("runs", "delete", latest)
    assert result.code == 2
    assert "workspace holds" in result.err and latest in result.err
    assert latest in _run_ids(repo)


def test_runs_listing_still_works_as_before(repo: Repo) -> None:
    _setup(repo)
    first = _run_with(repo, "a\n")
    second = _run_with(repo, "b\n")
    assert _run_ids(repo) == [second, first]
    result = repo.run("runs", "-n", "1")
    assert result.code == 0 and second in result.out and first not in result.out


def test_prune_keeps_the_newest_and_the_producers_of_their_cache_hits(repo: Repo) -> None:
    _setup(repo)
    producer = _run_with(repo, "one\n")
    superseded = _run_with(repo, "two\n")
    latest = _run_with(repo, "one\n")  # a cache hit from the first run
    assert repo.steps()["make.copy"]["cached_from"] == producer
    dry = repo.run("prune", "--keep-last", "1", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert dry.json()["deleted"] == [superseded]
    assert len(_run_ids(repo)) == 3
    result = repo.run("prune", "--keep-last", "1", "--json")
    assert result.code == 0, result.err
    assert result.json()["deleted"] == [superseded]
    assert producer in result.json()["protected"]
    assert set(_run_ids(repo)) == {producer, latest}
    assert repo.run("gc").code == 0
    assert not _blob(repo, "two\n").exists() and _blob(repo, "one\n").exists()


def test_prune_keep_branch_keeps_the_runs_of_that_branch(repo: Repo) -> None:
    _setup(repo)
    on_main = _run_with(repo, "main\n")
    subprocess_git(repo, "checkout", "-q", "-b", "experiment")
    experiment = _run_with(repo, "try 1\n")
    newest = _run_with(repo, "try 2\n")
    result = repo.run("prune", "--keep-last", "1", "--keep-branch", "main", "--json")
    assert result.code == 0, result.err
    assert result.json()["deleted"] == [experiment]
    assert set(_run_ids(repo)) == {on_main, newest}


def test_prune_applies_the_projects_retention_setting(repo: Repo) -> None:
    _setup(repo)
    _run_with(repo, "a\n")
    refused = repo.run("prune")
    assert refused.code == 2 and "--keep-last" in refused.err
    repo.write(".conveyor/config.toml", "[retention]\nkeep_last = 1\n")
    _run_with(repo, "b\n")
    result = repo.run("prune", "--json")
    assert result.code == 0, result.err
    assert len(result.json()["deleted"]) == 1
    repo.write(".conveyor/config.toml", "[retention]\nkeep_last = -1\n")
    bad = repo.run("prune")
    assert bad.code == 2 and "keep_last" in bad.err and "Traceback" not in bad.err


def test_a_damaged_blob_is_never_served_as_a_cache_hit(repo: Repo) -> None:
    _setup(repo)
    _run_with(repo, "precious\n")
    blob = _blob(repo, "precious\n")
    blob.chmod(0o644)
    blob.write_text("tampered\n")
    (repo.path / "out/copy.txt").unlink()
    result = repo.run("run")
    assert result.code == 0, result.out + result.err
    assert repo.steps()["make.copy"]["cached"] is False  # ran again instead
    assert (repo.path / "out/copy.txt").read_text() == "precious\n"
    assert (repo.path / "out/tree/data.txt").read_text() == "precious\n"
    quarantined = repo.path / ".conveyor/store/quarantine" / (blob.parent.name + blob.name)
    assert quarantined.read_text() == "tampered\n"
    assert blob.read_text() == "precious\n"  # stored again by the step that ran


def test_verify_reports_and_repair_quarantines_damaged_blobs(repo: Repo) -> None:
    _setup(repo)
    _run_with(repo, "precious\n")
    clean = repo.run("verify", "--json")
    assert clean.code == 0, clean.err
    assert clean.json()["damaged"] == [] and clean.json()["checked"] >= 2
    blob = _blob(repo, "precious\n")
    blob.chmod(0o644)
    blob.write_text("tampered\n")
    result = repo.run("verify", "--json")
    assert result.code == 1
    assert result.json()["damaged"] == [blob.parent.name + blob.name]
    assert blob.exists()
    repaired = repo.run("verify", "--repair")
    assert repaired.code == 0, repaired.out + repaired.err
    assert "quarantined" in repaired.out
    assert not blob.exists()
    assert (repo.path / ".conveyor/store/quarantine" / (blob.parent.name + blob.name)).exists()


def test_deleting_runs_is_one_transaction(tmp_path: Path) -> None:
    """A delete that fails midway (here: SQLite refuses the last statement, as a kill
    would stop it) leaves every record in place."""
    import sqlalchemy as sa

    from conveyor.domain.states import RunStatus, StepStatus
    from conveyor.metadata.records import EventRecord, OutputRecord, RunRecord, StepRunRecord
    from conveyor.metadata.repository import WriteBatch
    from conveyor.metadata.sql import open_repository

    records = open_repository(f"sqlite:///{tmp_path / 'runs.db'}")
    records.create_run(RunRecord("aa11", "p", RunStatus.SUCCEEDED, "c0", False, 1.0))
    batch = WriteBatch()
    output = OutputRecord("out.txt", "d" * 64)
    batch.put_step_run(
        StepRunRecord("aa11", "s", "j", StepStatus.SUCCEEDED, "f" * 64, outputs=[output])
    )
    batch.events.append(EventRecord("aa11", "run-started", 1.0))
    records.write(batch)
    with records.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TRIGGER refuse BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
        )
    with pytest.raises(sa.exc.DBAPIError):
        records.delete_runs(["aa11"])
    assert records.get_run("aa11") is not None
    assert records.step_runs("aa11")[0].outputs == [output]
    assert records.events("aa11")
    assert records.referenced_digests() == {"d" * 64}
    records.close()


def subprocess_git(repo: Repo, *args: str) -> None:
    import subprocess

    subprocess.run(["git", *args], cwd=repo.path, check=True, capture_output=True)


# -- item 11 on the server: the project's retention setting, applied after each run ----


def _push(repo: Repo, server: Server, branch: str, text: str) -> str:
    repo.write("data.txt", text)
    repo.commit(text)
    out = git(repo.path, "push", "-f", server.git_url(), f"HEAD:{branch}").stderr
    ids = run_ids(out)
    assert len(ids) == 1, out
    assert server.wait_run(ids[0])["status"] == "succeeded"
    return ids[0]


def test_the_server_applies_the_retention_setting_but_keeps_result_refs(
    repo: Repo, server: Server
) -> None:
    with server.api("lead") as lead:
        bad = lead.put("/settings", json={"retention": {"keep_last": "many"}})
        assert bad.status_code == 422 and "keep_last" in bad.json()["detail"]
        ok = lead.put("/settings", json={"retention": {"keep_last": 1}})
        assert ok.status_code == 200, ok.text
    repo.pipeline(_DATA_PIPELINE)
    other = _push(repo, server, "other", "other branch\n")
    first = _push(repo, server, "main", "one\n")
    second = _push(repo, server, "main", "two\n")
    bare = server.data / "projects/demo/repo.git"
    deadline = time.monotonic() + 20
    with server.api("viewer") as viewer:
        while time.monotonic() < deadline:  # retention runs just after the run ends
            ids = {r["id"] for r in viewer.get("/runs").json()["runs"]}
            if first not in ids:
                break
            time.sleep(0.2)
        assert ids == {other, second}  # `other`: its branch's result ref points to it
        assert viewer.get(f"/runs/{first}").status_code == 404
    refs = git(bare, "for-each-ref", "--format=%(refname)", "refs/conveyor/results/").stdout
    assert f"refs/conveyor/results/{first}" not in refs
    assert f"refs/conveyor/results/{second}" in refs
    assert "refs/conveyor/results/other" in refs
    assert not (server.data / "projects/demo/runs" / first).exists()
    # then the admin's gc frees what no kept run refers to (a grace period spares blobs
    # that runs in progress may be about to record)
    import json

    import blake3

    store = server.data / "store/objects"

    def blob(text: str) -> Path:
        digest = blake3.blake3(text.encode()).hexdigest()
        return store / digest[:2] / digest[2:]

    spared = json.loads(conveyor("server", "--data", str(server.data), "gc", "--json"))
    assert spared["removed"] == 0 and blob("one\n").exists()
    swept = json.loads(
        conveyor("server", "--data", str(server.data), "gc", "--grace", "0", "--json")
    )
    assert swept["removed"] >= 1
    assert not blob("one\n").exists()
    assert blob("two\n").exists() and blob("other branch\n").exists()


def test_fetch_refuses_a_damaged_blob(repo: Repo, tmp_path: Path) -> None:
    _setup(repo)
    _run_with(repo, "precious\n")
    blob = _blob(repo, "precious\n")
    blob.chmod(0o644)
    blob.write_text("tampered\n")
    result = repo.run("fetch", "latest", "--to", str(tmp_path / "got"))
    assert result.code == 1, result.out + result.err
    assert "damaged" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "got/out/copy.txt").exists()


def test_nothing_is_deleted_while_a_run_is_in_progress(repo: Repo) -> None:
    _setup(repo)
    old = _run_with(repo, "a\n")
    _run_with(repo, "b\n")
    repo.pipeline(_DATA_PIPELINE.replace("run: mkdir", "run: sleep 30; mkdir"))
    repo.commit("slow")
    slow = repo.popen("run")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_run_ids(repo)) < 3:
            time.sleep(0.1)
        for args in (("runs", "delete", old), ("prune", "--keep-last", "0")):
            result = repo.run(*args)
            assert result.code != 0 and "in progress" in result.err, result.err
            assert "Traceback" not in result.err
        assert old in _run_ids(repo) and len(_run_ids(repo)) == 3
    finally:
        slow.terminate()
        slow.communicate(timeout=30)


def test_an_os_error_while_restoring_runs_the_step_instead(repo: Repo) -> None:
    _setup(repo)
    _run_with(repo, "a\n")
    import shutil

    shutil.rmtree(repo.path / "out")
    (repo.path / "out").write_text("a file where the outputs' directory was\n")
    result = repo.run("run")
    assert "internal error" not in result.err and "Traceback" not in result.err
    assert result.code == 1, result.out + result.err  # the step ran, and failed on its own
    step = repo.steps()["make.copy"]
    assert step["cached"] is False and step["status"] == "failed"
