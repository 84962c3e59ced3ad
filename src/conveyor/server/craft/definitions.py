"""Craft pipelines (and 0.72.1's steps) as commits the server owns in the project's
repository: ``refs/conveyor/craft/pipelines/NAME`` (pushes there are refused by the
pre-receive hook). A commit holds the uploaded code under ``code/``, the definition
(``craft/pipeline.json``), the requirements (``craft/requirements.txt``), the runner and
a ``conveyor.yml`` of two steps: ``environment`` (the requirements installed into
``craft-env``: cached by Conveyor per requirements digest, so built once) and
``function`` (never cached: every execution runs). An execution is one more commit on
top with its inputs (``craft/inputs.json``, ``craft/files/NAME``), run through the
normal queue and workers."""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conveyor.server.craft.errors import CraftError, bad_input, not_found
from conveyor.server.craft.upload import CodeFile, safe_path
from conveyor.vcs.git import git, read_file, run_git

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TYPES = ("string", "number", "boolean", "json", "array", "file")
KINDS = {"pipeline": "refs/conveyor/craft/pipelines/", "step": "refs/conveyor/craft/steps/"}
RUNS_REF = "refs/conveyor/craft/executions/"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Conveyor",
    "GIT_AUTHOR_EMAIL": "conveyor@localhost",
    "GIT_COMMITTER_NAME": "Conveyor",
    "GIT_COMMITTER_EMAIL": "conveyor@localhost",
}
ENV_STEP = (
    "mkdir -p craft-env && touch craft-env/.conveyor && if [ -s craft/requirements.txt ]; then "
    '"$CONVEYOR_PYTHON" -m pip install --quiet --disable-pip-version-check --no-cache-dir '
    "--target craft-env -r craft/requirements.txt; fi"
)
FUNCTION_STEP = 'PYTHONPATH="$PWD/craft-env" "$CONVEYOR_PYTHON" -B craft/runner.py'


def check_name(name: str, what: str = "pipeline") -> str:
    if not NAME.fullmatch(name):
        raise bad_input(
            f"{name[:100]!r} is not a valid {what} name: 1 to 63 lowercase letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )
    return name


def pipeline_yaml(name: str) -> str:
    env = json.dumps({"CONVEYOR_PYTHON": sys.executable, "PIP_NO_CACHE_DIR": "1"})
    return (
        f"# made by the Craft AI API of Conveyor for the pipeline {name}\n"
        f"name: craft-{name}\n"
        "jobs:\n"
        "  craft:\n"
        "    steps:\n"
        "      - id: environment\n"
        f"        run: {json.dumps(ENV_STEP)}\n"
        "        inputs: [craft/requirements.txt]\n"
        "        outputs: [craft-env]\n"
        f"        env: {env}\n"
        "      - id: function\n"
        f"        run: {json.dumps(FUNCTION_STEP)}\n"
        "        inputs: [code, craft]\n"
        "        outputs: [craft-out]\n"
        "        cache: false\n"
        f"        env: {env}\n"
    )


def _write_tree(
    repo: Path, files: dict[str, bytes], base: str | None, executable: frozenset[str] = frozenset()
) -> str:
    """A tree of ``files`` (over ``base``'s tree when given), written with a private
    index: one ``git add`` of a temporary directory, whatever the number of files."""
    with tempfile.TemporaryDirectory(prefix="craft-") as tmp:
        root = Path(tmp) / "tree"
        index = str(Path(tmp) / "index")
        env = {"GIT_INDEX_FILE": index, "GIT_WORK_TREE": str(root)}
        root.mkdir()
        for path, data in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o755 if path in executable else 0o644)
        if base:
            git(repo, "read-tree", base, env=env)
        run_git(repo, "add", "--ignore-removal", "-f", "--", ".", env=env)
        return git(repo, "write-tree", env=env).strip()


def _commit(repo: Path, tree: str, message: str, parent: str | None = None) -> str:
    args = ["commit-tree", tree, "-m", message]
    if parent:
        args += ["-p", parent]
    return git(repo, *args, env=IDENTITY).strip()


def check_io(items: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    names = set()
    for item in items:
        name, kind = item.get("name"), item.get("data_type")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$", name):
            raise bad_input(f"{what} name {str(name)[:100]!r} is not a Python identifier")
        if kind not in TYPES:
            raise bad_input(f"{what} {name!r} has type {kind!r}; one of {', '.join(TYPES)}")
        if name in names:
            raise bad_input(f"{what} {name!r} is declared twice")
        names.add(name)
    return items


def create(
    repo: Path,
    kind: str,
    definition: dict[str, Any],
    code: list[CodeFile],
) -> str:
    """Commit a pipeline (or step) from its definition and code; the commit id."""
    name = definition["name"]
    ref = KINDS[kind] + name
    if read_ref(repo, ref):
        raise CraftError(409, "Conflict", f"the {kind} {name!r} already exists")
    function_path = safe_path(str(definition.get("function_path") or ""))
    held = {f.path for f in code}
    if not code:
        raise bad_input(
            "the pipeline has no code: create it with container_config={'local_folder': ...} "
            "(Conveyor does not fetch git repositories for Craft pipelines)"
        )
    if function_path not in held:
        raise bad_input(f"the code folder has no {function_path!r} (the function_path)")
    requirements = definition.get("container_config", {}).get("requirements_path")
    req_bytes = b""
    if requirements:
        req_path = safe_path(str(requirements))
        found = [f for f in code if f.path == req_path]
        if not found:
            raise bad_input(f"the code folder has no {req_path!r} (the requirements_path)")
        req_bytes = found[0].data
    runner = (Path(__file__).with_name("runner.py")).read_bytes()
    files = {f"code/{f.path}": f.data for f in code}
    files.update(
        {
            "conveyor.yml": pipeline_yaml(name).encode(),
            "craft/pipeline.json": json.dumps(definition, indent=1).encode(),
            "craft/requirements.txt": req_bytes,
            "craft/runner.py": runner,
        }
    )
    tree = _write_tree(repo, files, None, frozenset(f"code/{f.path}" for f in code if f.executable))
    commit = _commit(repo, tree, f"Craft {kind} {name}")
    _claim(repo, ref, commit, kind, name)
    return commit


def _claim(repo: Path, ref: str, commit: str, kind: str, name: str) -> None:
    """Point a new name at its commit, only if no one took the name meanwhile."""
    if run_git(repo, "update-ref", ref, commit, "", check=False).returncode != 0:
        raise CraftError(409, "Conflict", f"the {kind} {name!r} already exists")


def read_ref(repo: Path, ref: str) -> str | None:
    proc = run_git(repo, "rev-parse", "-q", "--verify", "--end-of-options", ref, check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def definition_at(repo: Path, commit: str) -> dict[str, Any]:
    data = read_file(repo, commit, "craft/pipeline.json")
    if data is None:
        raise not_found(f"commit {commit[:12]} is not a Craft pipeline")
    value: dict[str, Any] = json.loads(data)
    return value


def get(repo: Path, kind: str, name: str) -> tuple[str, dict[str, Any]]:
    commit = read_ref(repo, KINDS[kind] + check_name(name, kind))
    if commit is None:
        raise not_found(f"there is no {kind} {name!r} in this project")
    return commit, definition_at(repo, commit)


def names(repo: Path, kind: str) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname)", KINDS[kind])
    return [line.removeprefix(KINDS[kind]) for line in out.splitlines() if line]


def delete(repo: Path, kind: str, name: str) -> None:
    commit, _ = get(repo, kind, name)
    git(repo, "update-ref", "-d", KINDS[kind] + name, commit)


def from_step(repo: Path, pipeline: str, step: str, who: str) -> str:
    """A pipeline of one step (0.72.1): the step's commit with the pipeline's definition."""
    commit, definition = get(repo, "step", step)
    ref = KINDS["pipeline"] + pipeline
    if read_ref(repo, ref):
        raise CraftError(409, "Conflict", f"the pipeline {pipeline!r} already exists")
    definition = {**definition, "name": pipeline, "step_name": step, **stamp(who)}
    files = {
        "craft/pipeline.json": json.dumps(definition, indent=1).encode(),
        "conveyor.yml": pipeline_yaml(pipeline).encode(),
    }
    tree = _write_tree(repo, files, commit)
    new = _commit(repo, tree, f"Craft pipeline {pipeline} from step {step}", commit)
    _claim(repo, ref, new, "pipeline", pipeline)
    return new


def stamp(who: str) -> dict[str, Any]:
    return {"created_at": iso(time.time()), "created_by": who}


def iso(when: float | None) -> str | None:
    if when is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}Z"


def execution_commit(
    repo: Path, pipeline_commit: str, values: dict[str, Any], files: dict[str, bytes]
) -> str:
    """The commit of one execution: the pipeline's, with the inputs."""
    inputs = {"values": values, "files": sorted(files)}
    content = {"craft/inputs.json": json.dumps(inputs).encode()}
    content.update({f"craft/files/{name}": data for name, data in files.items()})
    tree = _write_tree(repo, content, pipeline_commit)
    return _commit(repo, tree, "Craft execution", pipeline_commit)


def keep(repo: Path, run_id: str, commit: str) -> None:
    """Keep an execution's commit reachable (git gc) for as long as the run is kept."""
    git(repo, "update-ref", RUNS_REF + run_id, commit)


def forget(repo: Path, run_id: str) -> None:
    run_git(repo, "update-ref", "-d", RUNS_REF + run_id, check=False)
