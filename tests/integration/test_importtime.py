"""Start-up cost of the CLI: a no-op run and the read-only commands on a local SQLite
database at the schema's head import neither SQLAlchemy nor Alembic, and what a no-op
``conveyor run`` imports stays within budgets read from ``python -X importtime``: the
modules it loads and the methods ``dataclasses`` generates for it. Both are counts, not
times (a loaded machine changes times, never counts); the milliseconds are measured by
``bench/bench_import.py``. The same for the SDK: ``import conveyor`` and a ``Client``'s
first calls."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import CONVEYOR, Repo

pytestmark = pytest.mark.integration

PIPELINE = """\
jobs:
  prep:
    steps:
      - id: make
        run: mkdir -p out && echo 1 > out/a.txt
        outputs: [out/a.txt]
      - id: copy
        run: cat out/a.txt > out/b.txt
        inputs: [out/a.txt]
        outputs: [out/b.txt]
"""

# How many modules a no-op run imports: 187 today (hashlib, tempfile with random and bisect,
# platform left: see the test below); 192 before (its command line is read without click:
# click's modules and conveyor.cli.commands_run left, cli.quick and cli.local_run joined);
# 206 before (the local executor is made when a step first runs: executors.base, local and sandbox left; its settings' reader joined);
# 207 before (the container code, images, their names
# and the executor wrapper, loads only for a step with an image); 210 before (the dataset
# records' module left the run path and `gc` joined it: the CLI sets its collector's thresholds); 215 before `secrets`,
# `hmac`, `base64`, `binascii`, `struct` left the run path; 230 before the CLI loaded one
# command module and the run path left socket, getpass, tomllib and concurrent.futures
# unloaded; 401 with SQLAlchemy). Not a timing: a new package on the run path shows here first.
MODULE_BUDGET = 187
# Methods ``dataclasses`` generates (each one source text parsed and compiled, in every
# process) while a no-op run builds its classes: 90 today (the executor contract's
# ``Invocation`` loads with the first step that runs); 98 before (the step plan and the settings
# compare, hash and print through domain.types.FieldValues); 110 before, 324 before the scheduler's
# events, the executor contract's results and the records that need no defaults became
# named tuples (one generated ``__new__`` each instead of up to six methods).
DATACLASS_METHOD_BUDGET = 90
_COUNT_DATACLASS_METHODS = """\
import atexit, dataclasses, sys
made = [0]
generate = dataclasses._create_fn
def counted(*args, **kwargs):
    made[0] += 1
    return generate(*args, **kwargs)
dataclasses._create_fn = counted
atexit.register(lambda: sys.stderr.write(f"dataclass methods: {made[0]}\\n"))
from conveyor.cli.main import main
main()
"""

# ``import conveyor`` in a fresh interpreter: 55 modules today, the interpreter's own
# start-up (site, encodings) included.
IMPORT_CONVEYOR_MODULES = 62
# What the SDK must not load before it needs it (a local client never needs them).
SDK_HEAVY = ("sqlalchemy", "alembic", "pydantic", "pydantic_core", "httpx", "fastapi", "yaml")

_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")


def imports(repo: Repo, pycache: Path, *args: str) -> dict[str, int]:
    """Module -> self import time (us) of one CLI command in a fresh interpreter, with
    bytecode cached in ``pycache`` as an installed Conveyor has it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["XDG_CACHE_HOME"] = str(pycache.parent / "xdg-cache")  # the schema template's home
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *CONVEYOR[1:], *args],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = {m[2]: int(m[1]) for m in map(_LINE.match, proc.stderr.splitlines()) if m}
    assert found, "no -X importtime output"
    return found


def python_imports(repo: Repo, pycache: Path, code: str) -> dict[str, int]:
    """Module -> self import time (us) of ``python -c code`` in the project."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["XDG_CACHE_HOME"] = str(pycache.parent / "xdg-cache")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {m[2]: int(m[1]) for m in map(_LINE.match, proc.stderr.splitlines()) if m}


def _committed(path: Path) -> Repo:
    path.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "test@example.invalid"],
        ["config", "user.name", "Test"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    (path / ".gitignore").write_text("out/\n")
    repo = Repo(path)
    repo.pipeline(PIPELINE)
    repo.commit("pipeline")
    return repo


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repo, Path, str]]:
    """A committed project run once (that run creates the database), the
    directory of its bytecode cache, warmed by a no-op run, and the first run's id."""
    root = tmp_path_factory.mktemp("importtime")
    pycache = root / "pycache"
    repos = [_committed(root / name) for name in ("project", "second")]
    repo = repos[0]
    first = imports(repo, pycache, "run")
    # the first database of a machine is created by the Alembic chain, which leaves the
    # schema as the template of the next new database: no SQLAlchemy for that one
    assert any(name.startswith("alembic") for name in first), "no template yet: Alembic"
    second = imports(repos[1], pycache, "run")
    assert not any(name.startswith(("sqlalchemy", "alembic")) for name in second)
    first_run = repo.show()["id"]
    imports(repo, pycache, "run")
    yield repo, pycache, first_run


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["runs"],
        ["show", "latest"],
        ["logs", "FIRST", "prep.make"],
        ["why", "prep.copy"],
        ["lineage", "out/b.txt"],
        ["plan"],
    ],
    ids=" ".join,
)
def test_commands_at_head_do_not_import_sqlalchemy(
    project: tuple[Repo, Path, str], args: list[str]
) -> None:
    repo, pycache, first_run = project
    args = [first_run if a == "FIRST" else a for a in args]  # the no-op run has no logs
    heavy = sorted(
        name
        for name in imports(repo, pycache, *args)
        if name.split(".")[0] in ("sqlalchemy", "alembic")
    )
    assert heavy == [], f"conveyor {' '.join(args)} imported {heavy[:5]}"


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["run"], []),
        (["run", "--remote", "--help"], ["commands_run"]),
        (["show", "latest"], ["commands_inspect"]),
    ],
    ids=str,
)
def test_a_command_imports_only_its_own_cli_module(
    project: tuple[Repo, Path, str], args: list[str], modules: list[str]
) -> None:
    """``conveyor run`` read by the quick reader imports no command module at all."""
    repo, pycache, _ = project
    loaded = sorted(
        name for name in imports(repo, pycache, *args) if name.startswith("conveyor.cli.commands_")
    )
    assert loaded == [f"conveyor.cli.{module}" for module in modules]


@pytest.mark.parametrize("args", [["run"], ["run", "-j", "2", "--only", "prep.copy"]], ids=" ".join)
def test_a_run_in_its_common_forms_does_not_import_click(
    project: tuple[Repo, Path, str], args: list[str]
) -> None:
    """``cli/quick.py`` reads these command lines: click (and what it imports) stays out."""
    repo, pycache, _ = project
    found = sorted(name for name in imports(repo, pycache, *args) if name.split(".")[0] == "click")
    assert found == []


@pytest.mark.parametrize("args", [["run"], ["plan"]], ids=" ".join)
def test_an_unchanged_pipeline_file_is_not_parsed_again(
    project: tuple[Repo, Path, str], args: list[str]
) -> None:
    """The compiled plan comes from ``.conveyor/cache/plans``: no YAML, no pydantic."""
    repo, pycache, _ = project
    loaders = sorted(
        name
        for name in imports(repo, pycache, *args)
        if name.split(".")[0] in ("yaml", "pydantic", "pydantic_core")
    )
    assert loaders == [], f"conveyor {' '.join(args)} imported {loaders[:5]}"


def test_a_no_op_run_stays_within_its_import_budget(project: tuple[Repo, Path, str]) -> None:
    repo, pycache, _ = project
    found = imports(repo, pycache, "run")
    assert len(found) <= MODULE_BUDGET, f"a no-op run imports {len(found)} modules"


def test_a_put_of_files_leaves_temporary_files_and_archives_unloaded(
    project: tuple[Repo, Path, str], tmp_path: Path
) -> None:
    """``data put`` of files writes blobs through its own descriptors: tempfile, shutil
    (and the compression modules shutil loads), hashlib, and concurrent.futures with the
    logging it loads stay out of its start-up."""
    repo, pycache, _ = project
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a\n")
    imports(repo, pycache, "data", "create", "imports")
    found = imports(repo, pycache, "data", "put", "imports", "-r", str(data))
    assert "conveyor.sdk.datasets.put" in found
    unwanted = {"tempfile", "shutil", "bz2", "lzma", "hashlib", "concurrent.futures", "logging"}
    assert sorted(unwanted & set(found)) == []


def test_a_no_op_run_leaves_the_dataset_records_unloaded(project: tuple[Repo, Path, str]) -> None:
    """A run that reads no dataset does not build the dataset records' classes."""
    repo, pycache, _ = project
    assert "conveyor.metadata.datasets" not in imports(repo, pycache, "run")


def test_a_no_op_run_leaves_the_container_code_unloaded(project: tuple[Repo, Path, str]) -> None:
    """Steps that name no image are placed without the container runtime's code (images,
    their names, the executor wrapper that starts them)."""
    repo, pycache, _ = project
    container_code = {
        "conveyor.execute.images",
        "conveyor.execute.containers",
        "conveyor.execute.contained",
    }
    assert sorted(set(imports(repo, pycache, "run")) & container_code) == []


def test_a_no_op_run_leaves_the_executor_modules_unloaded(
    project: tuple[Repo, Path, str],
) -> None:
    """No step runs: the local executor (and its sandbox, the executor contract's
    classes) is never made; its settings were read without it."""
    repo, pycache, _ = project
    executor_code = {
        "conveyor.executors.base",
        "conveyor.executors.local",
        "conveyor.executors.sandbox",
    }
    assert sorted(set(imports(repo, pycache, "run")) & executor_code) == []


@pytest.mark.skipif(
    not hasattr(dataclasses, "_create_fn"), reason="this Python generates methods otherwise"
)
def test_a_no_op_run_generates_few_dataclass_methods(project: tuple[Repo, Path, str]) -> None:
    """Python 3.11 compiles each generated method of each dataclass on its own at import:
    the run path keeps to few dataclasses (named tuples where nothing else is needed)."""
    repo, pycache, _ = project
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["XDG_CACHE_HOME"] = str(pycache.parent / "xdg-cache")
    proc = subprocess.run(
        [sys.executable, "-c", _COUNT_DATACLASS_METHODS, "run"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r"dataclass methods: (\d+)", proc.stderr)
    assert found, proc.stderr[-2000:]
    assert int(found[1]) <= DATACLASS_METHOD_BUDGET, f"{found[1]} dataclass methods generated"


def test_a_no_op_run_leaves_what_only_secrets_need_unloaded(
    project: tuple[Repo, Path, str],
) -> None:
    """Run ids and the cache key come from ``os.urandom``; HMACs are made only for a step
    given secrets: ``secrets``, ``hmac`` (and ``base64``, ``struct`` with them) stay out."""
    repo, pycache, _ = project
    loaded = sorted(set(imports(repo, pycache, "run")) & {"secrets", "hmac", "base64"})
    assert loaded == []


def test_a_no_op_run_leaves_openssl_tempfile_and_platform_unloaded(
    project: tuple[Repo, Path, str],
) -> None:
    """The two digests a run makes come from the interpreter's own SHA-256 and BLAKE2b
    (``hashlib`` initialises OpenSSL); a temporary file is made for a stored output only;
    the host's os and architecture are read for a step with conditions only."""
    repo, pycache, _ = project
    loaded = sorted(set(imports(repo, pycache, "run")) & {"hashlib", "tempfile", "platform"})
    assert loaded == []


def test_a_no_op_run_asks_git_twice(project: tuple[Repo, Path, str], tmp_path: Path) -> None:
    """A no-op run spawns git once for the top level and HEAD, once for the dirty check
    (both at once, on two cores): each spawn costs milliseconds of a run that should
    answer at once."""
    repo, _, first_run = project
    real = shutil.which("git")
    assert real is not None
    log = tmp_path / "git.log"
    shim = tmp_path / "bin" / "git"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$1" >> {shlex.quote(str(log))}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    path = f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = repo.run("run", env={"PATH": path})
    assert result.code == 0, result.err
    assert repo.show()["id"] != first_run, "the run was recorded"
    assert sorted(log.read_text().split()) == ["rev-parse", "status"]  # started together


def test_import_conveyor_stays_within_its_budget(project: tuple[Repo, Path, str]) -> None:
    repo, pycache, _ = project
    found = python_imports(repo, pycache, "import conveyor")
    assert len(found) <= IMPORT_CONVEYOR_MODULES, f"import conveyor loads {len(found)} modules"
    heavy = sorted(m for m in found if m.split(".")[0] in SDK_HEAVY or "server" in m)
    assert heavy == [], f"import conveyor loaded {heavy[:5]}"


@pytest.mark.parametrize(
    "code",
    [
        "import conveyor; conveyor.Client",
        "import conveyor; c = conveyor.Client(); c.runs(); c.get_run()._repr_html_()",
        "import conveyor; conveyor.Client('http://127.0.0.1:9', token='t', project='p')",
        # a step's tracking calls: stdlib only (here outside a run: one warning, ignored)
        "import conveyor, warnings; warnings.simplefilter('ignore'); conveyor.log_metric('a', 1)",
        # a Python pipeline's module, as each step's runner imports it: stdlib only
        "import conveyor, conveyor.pystep\n@conveyor.step\ndef f(n: int) -> int:\n  return n",
    ],
    ids=["attribute", "local-client", "server-client-made", "log-metric", "python-step"],
)
def test_the_sdk_loads_no_server_database_or_http_library_before_it_needs_one(
    project: tuple[Repo, Path, str], code: str
) -> None:
    """A local client reads the records through the stdlib's sqlite3, and a server
    client imports httpx on its first request, not when it is made."""
    repo, pycache, _ = project
    loaded = python_imports(repo, pycache, code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in SDK_HEAVY or ".server" in m)
    assert heavy == [], f"{code} loaded {heavy[:5]}"
