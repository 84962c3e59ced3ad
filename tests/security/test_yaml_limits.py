"""Hostile YAML: alias bombs, deep nesting, huge documents, recursive aliases.

Every YAML Conveyor reads (conveyor.yml, .drone.yml, .dotscience.yml, DataTorch
pipelines, action-datatorch.yaml, action.yml, and a pipeline pushed to the server) goes
through one loader that counts the values of a document with its aliases expanded. Over
a limit the load stops with one line naming file:line:col.

The bombs used in-process are moderate (about a million values once expanded: a
second or two for a loader without limits), so that the code without limits accepts
them and the tests fail on it without exhausting the machine; the billion-laughs file
is only given to a subprocess whose address space is capped.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.spec.formats import load_file, parse_text
from conveyor.spec.yamlsource import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_VALUES, load_documents
from tests.integration.conftest import Repo, repo  # noqa: F401 (a fixture)
from tests.integration.server_support import Server, git, run_ids

EXPANDED = "more than 100000 values once aliases are expanded"


def bomb(levels: int, width: int = 10, indent: str = "", key: str = "x-bomb") -> str:
    """A mapping entry ``key`` whose aliases expand to ``width ** levels`` values."""
    lines = [f"{indent}{key}:", f"{indent}  - &l0 [lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"{indent}  - &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


MODERATE = bomb(6)  # 8 * 10**5 scalars expanded
BILLION = bomb(9)  # 8 * 10**8


def refused(text: str, name: str = "conveyor.yml") -> SpecError:
    with pytest.raises(SpecError) as info:
        list(load_documents(text, name))
    return info.value


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_VALUES, MAX_DEPTH, MAX_DOCUMENT_BYTES) == (100_000, 64, 1024 * 1024)


def test_an_alias_bomb_is_refused_with_the_position_where_it_overflows() -> None:
    text = "jobs:\n  a:\n    steps:\n      - run: echo hi\n" + MODERATE
    error = refused(text)
    # the alias that passes the limit: the tenth *l3 in the list anchored &l4
    assert str(error).startswith("conveyor.yml:10:55: "), str(error)
    assert EXPANDED in str(error) and "\n" not in str(error)


def test_a_merge_key_bomb_is_refused() -> None:
    lines = ["base:", "  - &m0 {a: 1}"]
    for level in range(1, 19):
        lines.append(f"  - &m{level} [*m{level - 1}, *m{level - 1}]")
    lines.append("top: {<<: *m18}")
    assert EXPANDED in str(refused("\n".join(lines) + "\n"))


def test_many_values_without_aliases_are_refused() -> None:
    text = "jobs: {}\nx-data: [" + "0, " * 150_000 + "0]\n"
    assert len(text) < MAX_DOCUMENT_BYTES
    error = refused(text)
    assert str(error).startswith("conveyor.yml:2:") and "more than 100000 values" in str(error)


def test_deep_nesting_is_refused() -> None:
    text = "jobs: {}\nx-deep: " + "[" * 100 + "]" * 100 + "\n"
    error = refused(text)
    assert "nested deeper than 64 levels" in str(error), str(error)
    assert str(error).startswith("conveyor.yml:2:")


def test_deep_nesting_reached_through_an_alias_is_refused() -> None:
    inner = "[" * 40 + "]" * 40
    text = f"jobs: {{}}\nx-a: &deep {inner}\nx-b: {'[' * 30}*deep{']' * 30}\n"
    assert "nested deeper than 64 levels" in str(refused(text))


def test_a_recursive_alias_is_refused_not_a_crash() -> None:
    error = refused("jobs: {}\nx-loop: &a [1, *a]\n")
    assert str(error) == (
        "conveyor.yml:2:16: an alias refers to a collection that contains it (a recursive value)"
    )


def test_a_document_over_the_size_limit_is_refused_before_parsing() -> None:
    text = "jobs: {}\n# " + "x" * MAX_DOCUMENT_BYTES + "\n"
    error = refused(text)
    assert str(error).startswith("conveyor.yml: the file is ") and "1048576 bytes" in str(error)


def test_ordinary_aliases_still_work() -> None:
    text = "defaults: &env {A: '1'}\njobs:\n  a:\n    env: *env\n    steps: [{run: echo}]\n"
    ((data, _),) = list(load_documents(text, "conveyor.yml"))
    assert data["jobs"]["a"]["env"] == {"A": "1"}


# -- every entry point ---------------------------------------------------------------------


def test_conveyor_yml_drone_and_dotscience_files(tmp_path: Path) -> None:
    files = {
        "conveyor.yml": "jobs:\n  a:\n    steps:\n      - run: echo hi\n" + MODERATE,
        ".drone.yml": "kind: pipeline\nname: a\nsteps:\n  - name: s\n    commands: [echo]\n"
        + MODERATE,
        ".dotscience.yml": "kind: pipeline\nsteps:\n  - name: s\n    commands: [echo]\n" + MODERATE,
        "pipeline.yml": "jobs:\n  a:\n    steps:\n      - action: ./x\n" + MODERATE,
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(SpecError) as info:
            load_file(path, name)
        assert str(info.value).startswith(f"{name}:") and EXPANDED in str(info.value), name


def test_a_datatorch_action_manifest(tmp_path: Path) -> None:
    action = tmp_path / "actions" / "greet"
    action.mkdir(parents=True)
    (action / "action-datatorch.yaml").write_text(
        "name: Greet\nruns:\n  using: shell\n  script: greet.sh\n" + MODERATE, encoding="utf-8"
    )
    (action / "greet.sh").write_text("echo hi\n", encoding="utf-8")
    text = "name: p\njobs:\n  a:\n    steps:\n      - action: ./actions/greet\n"
    with pytest.raises(SpecError) as info:
        parse_text(text, "pipeline.yml", "datatorch", tmp_path)
    assert "action-datatorch.yaml:" in str(info.value) and EXPANDED in str(info.value)


def test_an_action_yml_of_a_uses_step(tmp_path: Path) -> None:
    action = tmp_path / "actions" / "greet"
    action.mkdir(parents=True)
    (action / "action.yml").write_text(
        "name: Greet\nruns:\n  command: echo hi\n" + MODERATE, encoding="utf-8"
    )
    text = "jobs:\n  a:\n    steps:\n      - uses: ./actions/greet\n"
    with pytest.raises(SpecError) as info:
        parse_text(text, "conveyor.yml", "conveyor", tmp_path)
    assert "action.yml:" in str(info.value) and EXPANDED in str(info.value)


def _cap_memory() -> None:  # in the child: a runaway loader dies, the machine does not
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))


@pytest.mark.integration
def test_conveyor_run_refuses_the_billion_laughs_with_one_line(repo: Repo) -> None:  # noqa: F811
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo hi > out.txt\n" + BILLION)
    repo.commit()
    assert len((repo.path / "conveyor.yml").read_bytes()) < 1024
    proc = subprocess.run(
        [sys.executable, "-c", "from conveyor.cli.main import main; main()", "run"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=_cap_memory,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "conveyor.yml:10:55:" in lines[0] and EXPANDED in lines[0], lines[0]
    assert not (repo.path / "out.txt").exists()


@pytest.mark.integration
def test_a_pushed_bomb_fails_at_once_and_queues_nothing(repo: Repo, server: Server) -> None:  # noqa: F811
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo hi\n" + MODERATE)
    repo.commit()
    pushed = git(repo.path, "push", server.git_url(), "main")
    assert run_ids(pushed.stderr) == [], pushed.stderr
    assert "failed at once: conveyor.yml:10:55: " in pushed.stderr, pushed.stderr
    assert EXPANDED in pushed.stderr
    with server.api() as api:
        runs = api.get("/runs").json()["runs"]
        assert [r["status"] for r in runs] == ["failed"] and EXPANDED in runs[0]["error"]
        shown = api.get("/pipeline", params={"ref": "main"})
        assert shown.status_code == 422 and EXPANDED in shown.json()["detail"]
        created = api.post("/runs", json={"ref": "main"})
        assert created.status_code == 201 and created.json()["status"] == "failed"
    assert server.procs[0].poll() is None  # still serving


def test_a_huge_action_manifest_is_refused_before_it_is_read(tmp_path: Path) -> None:
    action = tmp_path / "actions" / "greet"
    action.mkdir(parents=True)
    with (action / "action.yml").open("wb") as sparse:  # 8 GiB, no disk used
        sparse.truncate(8 * 1024**3)
    (tmp_path / "conveyor.yml").write_text(
        "jobs:\n  a:\n    steps:\n      - uses: ./actions/greet\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    proc = subprocess.run(
        [sys.executable, "-c", "from conveyor.cli.main import main; main()", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_cap_memory,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "action.yml: the file is 8589934592 bytes" in proc.stderr, proc.stderr


HUGE_HEAD = b"jobs:\n  a:\n    steps:\n      - run: echo hi\n#"


def _blob_commit(repo: Repo, size: int) -> None:  # noqa: F811
    """Commit a conveyor.yml of ``size`` bytes (a comment of spaces) without writing it
    to disk: git compresses it to a few megabytes."""
    writer = subprocess.Popen(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repo.path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(HUGE_HEAD)
    chunk = b" " * (1024 * 1024)
    for _ in range(size // len(chunk)):
        writer.stdin.write(chunk)
    writer.stdin.close()
    blob = writer.stdout.read().decode().strip()
    writer.stdout.close()
    assert writer.wait() == 0
    git(repo.path, "update-index", "--add", "--cacheinfo", f"100644,{blob},conveyor.yml")
    git(repo.path, "commit", "-qm", "huge")


@pytest.mark.integration
def test_a_pushed_huge_pipeline_is_refused_without_reading_it(repo: Repo, server: Server) -> None:  # noqa: F811
    _blob_commit(repo, 1024**3)  # 1 GiB of text, a few MB over the wire
    pushed = git(repo.path, "push", server.git_url(), "main")
    assert (
        f"failed at once: conveyor.yml: the file is {len(HUGE_HEAD) + 1024**3} bytes"
        in pushed.stderr
    ), pushed.stderr
    status = Path(f"/proc/{server.procs[0].pid}/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    assert peak_kb < 512 * 1024, f"the server's peak memory was {peak_kb} kB"


def test_the_size_probe_takes_no_option_shaped_commit(tmp_path: Path) -> None:
    from conveyor.vcs.git import file_size

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert file_size(tmp_path, "--output=/tmp/x", "conveyor.yml") is None
    assert file_size(tmp_path, "HEAD", "conveyor.yml") is None


def _plan_in(directory: Path) -> subprocess.CompletedProcess[str]:
    """``conveyor plan`` in a subprocess with its memory capped and a bounded wait."""
    return subprocess.run(
        [sys.executable, "-c", "from conveyor.cli.main import main; main()", "plan"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        preexec_fn=_cap_memory,
    )


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_pipeline_file_that_is_not_a_regular_file_is_refused_unread(
    repo: Repo,  # noqa: F811
    kind: str,
) -> None:
    """A cloned repository whose conveyor.yml is a link to /dev/zero (endless, size 0) or
    a named pipe (an open that never returns) gets one line and exit 2, not a hang (a
    guard: project discovery already looks only at regular files)."""
    import os

    path = repo.path / "conveyor.yml"
    path.unlink(missing_ok=True)
    if kind == "device":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)
    try:
        proc = _plan_in(repo.path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"conveyor plan did not return on a {kind} as conveyor.yml")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "conveyor.yml" in lines[0], lines[0]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_the_yaml_reader_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    """The reader every YAML file goes through checks the file it opened, not only what a
    caller looked at before (a file swapped for a link to /dev/zero or a named pipe)."""
    import os

    path = tmp_path / "action.yml"
    if kind == "device":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)
    code = (
        "import sys; from pathlib import Path\n"
        "from conveyor.errors import SpecError\n"
        "from conveyor.spec.yamlsource import read_text\n"
        "try:\n"
        "    read_text(Path(sys.argv[1]), 'action.yml')\n"
        "except SpecError as exc:\n"
        "    print(exc)\n"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            preexec_fn=_cap_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the YAML reader did not return on a {kind}")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.startswith("action.yml:") and "not a regular file" in proc.stdout
