"""``conveyor.Client`` against a real project (git repository, real runs, the local
executor) and against a real ``conveyor server`` on 127.0.0.1: the same calls, the
same answers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import conveyor
from conveyor.errors import ConveyorError, NotFoundError, UsageError
from tests.integration.conftest import Repo
from tests.integration.server_support import Server, git, run_ids

pytestmark = pytest.mark.integration

PIPELINE = """\
params:
  n: {type: int, default: 2}
jobs:
  prep:
    steps:
      - id: table
        run: |
          mkdir -p out
          python3 -c "print('i,v'); [print(f'{i},{i * ${{ params.n }}}') for i in range(3)]" > out/t.csv
          echo made the table
          echo second line
        outputs: [out/t.csv]
      - id: total
        run: python3 -c "import csv; print(sum(int(r['v']) for r in csv.DictReader(open('out/t.csv'))))" > out/total.txt
        inputs: [out/t.csv]
        outputs: [out/total.txt]
      - id: split
        run: mkdir -p out/parts/deep && echo a > out/parts/a.txt && echo b > out/parts/deep/b.txt
        outputs: [out/parts]
"""
SLOW = "jobs:\n  a:\n    steps:\n      - run: echo started && sleep 60 && echo never\n"


@pytest.fixture
def project(repo: Repo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Repo:
    repo.pipeline(PIPELINE)
    repo.commit("pipeline")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return repo


def _check_finished_run(client: conveyor.Client, run: conveyor.Run, n: int) -> None:
    """What both sides must answer about a finished run of PIPELINE with ``n``."""
    assert run.status == "succeeded", run.data
    assert run.params == {"n": n}
    assert sorted(s.id for s in run.steps) == ["prep.split", "prep.table", "prep.total"]
    table = run.output("out/t.csv")
    frame = table.to_pandas()
    assert list(frame.columns) == ["i", "v"]
    assert frame["v"].tolist() == [0, n, 2 * n]
    assert run.step("total").outputs[0].load() == f"{3 * n}\n"
    assert table.local_path().read_bytes() == table.read_bytes()
    assert table.local_path().name == "t.csv"
    assert run.step("prep.table").logs() == "made the table\nsecond line\n"
    assert run.step("table").logs(tail=1) == "second line\n"
    assert "prep.table │ made the table" in run.logs()
    parts = run.output("out/parts/")
    assert parts.is_dir
    folder = parts.local_path()
    assert folder.name == "parts" and (folder / "deep/b.txt").read_text() == "b\n"
    assert sorted(p.name for p in folder.rglob("*.txt")) == ["a.txt", "b.txt"]
    with pytest.raises(UsageError, match=r"is a directory: its local_path\(\) is one"):
        parts.read_bytes()
    html = run._repr_html_()
    assert "prep.total" in html and "succeeded" in html
    assert run.id in repr(client.runs())
    assert run.id in client.runs()._repr_html_()
    with pytest.raises(NotFoundError, match=r"no output 'out/nope\.csv'"):
        run.output("out/nope.csv")


def test_a_local_client_runs_waits_and_reads_outputs(project: Repo, tmp_path: Path) -> None:
    with conveyor.Client(path=project.path) as client:
        run = client.run(n=3)
        _check_finished_run(client, run, 3)
        assert "<svg" in run._repr_html_()  # the DAG, from the plan of a run started here
        assert client._backend.upstream(run.id)["prep.total"] == ["prep.table"]
        again = client.get_run(run.id[:6])
        assert again.id == run.id
        assert "<line" in again.dag_svg()  # the DAG again, from the records alone
        cached = client.run({"n": 3}, progress=False)
        assert all(s.cached for s in cached.steps)
        assert client.get_run("latest").id == cached.id
        assert run.fetch(tmp_path / "fetched") == 4
        assert (tmp_path / "fetched/out/total.txt").read_text() == "9\n"
        traced = client.lineage(str(project.path / "out/total.txt"))
        assert traced["produced_by"][0]["step"] == "prep.total"
    shown = project.show(run.id)  # the CLI reads what the SDK recorded
    assert shown["params"] == {"n": 3} and shown["status"] == "succeeded"


def test_a_local_client_runs_a_commit_and_refuses_bad_input(project: Repo) -> None:
    client = conveyor.Client(path=project.path)
    project.pipeline(PIPELINE.replace("default: 2", "default: 4"))  # not committed
    first = git(project.path, "rev-parse", "HEAD").stdout.strip()
    at_head = client.run(ref="HEAD", progress=False)
    assert at_head.commit == first and at_head.data["dirty"] is False
    assert at_head.params == {"n": 2}  # the committed pipeline, not the working tree's
    here = client.run(progress=False)
    assert here.params == {"n": 4} and here.data["dirty"] is True
    with pytest.raises(NotFoundError, match="names no branch, tag or commit"):
        client.run(ref="no-such-branch")
    with pytest.raises(UsageError, match="is not a branch, tag or commit name"):
        client.run(ref="--output=/tmp/x")
    with pytest.raises(NotFoundError, match="no run matches 'ffffff'"):
        client.get_run("ffffff")
    with pytest.raises(ConveyorError, match="n"):
        client.run(n="not a number")
    client.close()


def test_a_local_run_started_without_waiting_streams_its_log_and_can_be_cancelled(
    project: Repo,
) -> None:
    project.pipeline(SLOW)
    project.commit("slow")
    client = conveyor.Client(path=project.path)
    run = client.run(wait=False)
    assert run.status == "running"
    deadline = time.monotonic() + 30
    while not [s for s in run.refresh().steps if s.data["log"]]:
        assert time.monotonic() < deadline, run.data
        time.sleep(0.1)  # the step's log is recorded when it is submitted
    pieces = run.step("a").stream_logs()
    assert next(pieces) == "started\n"  # while the step runs
    run.cancel()
    assert list(pieces) == []  # the stream ends with the step
    assert run.wait(timeout=60).status == "cancelled"
    assert run.steps[0].status == "cancelled"
    client.close()


def test_outside_a_project_the_client_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no pipeline file"):
        conveyor.Client(path=tmp_path)


def test_the_magic_runs_cli_commands_in_this_process(
    project: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(project.path)
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "conveyor")
        assert shell.run_line_magic("conveyor", "run -p n=5") is None
        assert "prep.total" in capsys.readouterr().out  # the run's lines, as they came
        runs = shell.run_line_magic("conveyor", "runs --json")
        assert [r["params"] for r in runs] == [{"n": 5}]
        shell.run_line_magic("conveyor", "show latest")
        assert "prep.total" in capsys.readouterr().out
        assert shell.run_line_magic("conveyor", "show nope") is None
        assert "conveyor: error: no run matches 'nope'" in capsys.readouterr().err
        shell.run_line_magic("conveyor", "logs latest prep.table --tail 1")
        assert capsys.readouterr().out == "second line\n"  # bytes, through the kernel's text
    finally:
        InteractiveShell.clear_instance()


@pytest.fixture
def server_project(project: Repo, server: Server) -> Repo:
    git(project.path, "push", "-q", server.git_url(), "main")
    return project


def test_a_server_client_gives_the_same_answers(
    server_project: Repo, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = conveyor.Client(server.url, token=server.tokens["member"], project="demo")
    run = client.run({"n": 3}, ref="main")
    _check_finished_run(client, run, 3)
    server_project.write(
        ".conveyor/config.toml", f'[remote]\nurl = "{server.url}"\nproject = "demo"\n'
    )
    monkeypatch.setenv("CONVEYOR_TOKEN", server.tokens["viewer"])
    with conveyor.Client.for_remote(server_project.path) as configured:
        assert run.id in [r.id for r in configured.runs()]  # and the push's own run
    monkeypatch.setenv("CONVEYOR_TOKEN", server.tokens["member"])
    server_project.write("more.txt", "not pushed")
    server_project.commit("not pushed")
    with (
        conveyor.Client.for_remote(server_project.path) as configured,
        pytest.raises(UsageError, match=r"push .*first: git push"),
    ):
        configured.run()  # the checked-out branch, which the server does not have yet
    assert client.get_run(run.id[:6]).id == run.id
    assert run._repr_html_().count("<tr>") == 4  # the heading row and three steps
    traced = client.lineage("out/total.txt")
    assert traced["produced_by"][0]["step"] == "prep.total"
    destination = server_project.path.parent / "fetched"
    assert run.fetch(destination) == 4
    assert (destination / "out/total.txt").read_text() == "9\n"
    cached = Path(os.environ["XDG_CACHE_HOME"]) / "conveyor/outputs"
    assert any(cached.rglob("t.csv")), "outputs as paths are downloaded into the cache"
    client.close()


def test_a_server_client_cancels_and_refuses_clearly(server_project: Repo, server: Server) -> None:
    server_project.pipeline(SLOW)
    server_project.commit("slow")
    out = git(server_project.path, "push", server.git_url(), "HEAD:main").stderr
    (pushed,) = run_ids(out)
    with conveyor.Client(server.url, token=server.tokens["member"], project="demo") as client:
        run = client.get_run(pushed)
        server.wait_run(pushed, until=("running",))
        run.cancel()
        assert run.wait(timeout=60, progress=False).status == "cancelled"
        with pytest.raises(NotFoundError, match="has no run 'ffffffff'"):
            client.get_run("ffffffff")
        with pytest.raises(UsageError, match="already cancelled"):
            run.cancel()
    with (
        conveyor.Client(server.url, token="not-a-token", project="demo") as bad,
        pytest.raises(ConveyorError, match=r"the server refused \(401\)") as refused,
    ):
        bad.runs()
    assert "Traceback" not in str(refused.value)
    with (
        conveyor.Client(server.url, token=server.tokens["viewer"], project="demo") as viewer,
        pytest.raises(UsageError, match=r"refused \(403\)"),
    ):
        viewer.run(ref="main")
    with conveyor.Client("http://127.0.0.1:9", token="t", project="demo") as unreachable:
        unreachable._backend.remote.retry_delays = ()  # type: ignore[attr-defined]
        with pytest.raises(ConveyorError, match=r"cannot reach http://127\.0\.0\.1:9"):
            unreachable.runs()
    assert json.loads(json.dumps(run.data))["id"] == pushed
