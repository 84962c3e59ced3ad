"""Generate the benchmark pipelines (W1 chain, W2 fan-out + join) for every tool.

Each workload is one fresh git repository with one commit holding a directory per tool
(``conveyor/``, ``make/``, ``snakemake/``, ``dvc/``); every tool directory holds the same
input files and that tool's equivalent pipeline file. Step commands are the same shell
text everywhere and use only shell builtins, so that the tools' own overhead dominates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("conveyor", "make", "snakemake", "dvc")

GITIGNORE = """\
# outputs and tool state: never committed
/*/c/*
!/*/c/0.txt
/*/out/
/*/all.txt
.conveyor/
.snakemake/
"""

GIT_IDENTITY = ("-c", "user.name=conveyor-bench", "-c", "user.email=bench@localhost")


@dataclass(frozen=True)
class Workload:
    """A generated pipeline: where it lives and which files its steps write."""

    name: str
    repo: Path
    size: int
    outputs: tuple[str, ...]
    """Output paths relative to a tool directory (the last one is the final product)."""
    output_dirs: tuple[str, ...]
    """Directories the outputs live in; created empty for a clean run."""

    def tool_dir(self, tool: str) -> Path:
        return self.repo / tool


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# -- W1: a chain of n steps; step i reads c/(i-1).txt and writes c/i.txt -------------


def chain_command(src: str, dst: str) -> str:
    return f"read x < {src} && echo $((x + 1)) > {dst}"


def chain_conveyor(n: int) -> str:
    lines = [
        "# W1: a chain of steps in one job (the steps of a job run in order)",
        f"name: w1-chain-{n}",
        "jobs:",
        "  chain:",
        "    steps:",
    ]
    for i in range(1, n + 1):
        src, dst = f"c/{i - 1}.txt", f"c/{i}.txt"
        lines += [
            f"      - id: s{i}",
            f"        run: {_q(chain_command(src, dst))}",
            f"        inputs: [{_q(src)}]",
            f"        outputs: [{_q(dst)}]",
        ]
    return "\n".join(lines) + "\n"


def _make_escape(command: str) -> str:
    return command.replace("$", "$$")


def chain_make(n: int) -> str:
    lines = [
        "# W1: a chain of targets; c/i.txt is made from c/(i-1).txt",
        "MAKEFLAGS += --no-builtin-rules",
        ".SUFFIXES:",
        f".DEFAULT_GOAL := c/{n}.txt",
        "",
    ]
    for i in range(1, n + 1):
        src, dst = f"c/{i - 1}.txt", f"c/{i}.txt"
        lines += [f"{dst}: {src}", f"\t{_make_escape(chain_command(src, dst))}", ""]
    return "\n".join(lines)


def chain_snakemake(n: int) -> str:
    return f"""\
# W1: a chain of jobs of one rule; c/i.txt is made from c/(i-1).txt
rule all:
    input: "c/{n}.txt"

rule step:
    input: lambda w: f"c/{{int(w.i) - 1}}.txt"
    output: "c/{{i}}.txt"
    wildcard_constraints: i="[1-9][0-9]*"
    shell: "{chain_command("{input}", "{output}")}"
"""


def chain_dvc(n: int) -> str:
    items = ", ".join(f"{{i: {i}, p: {i - 1}}}" for i in range(1, n + 1))
    command = chain_command("c/${item.p}.txt", "c/${item.i}.txt")
    return f"""\
# W1: a chain of stages; c/i.txt is made from c/(i-1).txt
stages:
  step:
    foreach: [{items}]
    do:
      cmd: {_q(command)}
      deps: ["c/${{item.p}}.txt"]
      outs: ["c/${{item.i}}.txt"]
"""


# -- W2: n independent leaves out/i.txt <- in/i.txt, and a join all.txt <- out/* ------


def leaf_command(src: str, dst: str) -> str:
    return f'read x < {src} && echo "$x" > {dst}'


JOIN_COMMAND = "cat out/*.txt > all.txt"


def leaf_input(i: int, version: int = 0) -> str:
    return f"leaf {i} v{version}\n"


def fanout_conveyor(n: int) -> str:
    values = ", ".join(str(i) for i in range(n))
    leaf = leaf_command("in/${{ matrix.i }}.txt", "out/${{ matrix.i }}.txt")
    return f"""\
# W2: a matrix job of {n} instances and a join job that reads their outputs
name: w2-fanout-{n}
jobs:
  leaf:
    matrix:
      i: [{values}]
    steps:
      - id: copy
        run: {_q(leaf)}
        inputs: ["in/${{{{ matrix.i }}}}.txt"]
        outputs: ["out/${{{{ matrix.i }}}}.txt"]
  join:
    needs: [leaf]
    steps:
      - id: join
        run: {_q(JOIN_COMMAND)}
        inputs: [out]
        outputs: [all.txt]
"""


def fanout_make(n: int) -> str:
    outs = " ".join(f"out/{i}.txt" for i in range(n))
    leaf = _make_escape(leaf_command("in/@.txt", "out/@.txt")).replace("@", "$*")
    return f"""\
# W2: {n} independent targets and a join
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:
OUTS := {outs}

all.txt: $(OUTS)
\t{JOIN_COMMAND}

out/%.txt: in/%.txt
\t{leaf}
"""


def fanout_snakemake(n: int) -> str:
    return f"""\
# W2: {n} jobs of one rule and a join
N = {n}

rule all:
    input: "all.txt"

rule join:
    input: expand("out/{{i}}.txt", i=range(N))
    output: "all.txt"
    shell: "{JOIN_COMMAND}"

rule leaf:
    input: "in/{{i}}.txt"
    output: "out/{{i}}.txt"
    shell: {_q(leaf_command("{input}", "{output}"))}
"""


def fanout_dvc(n: int) -> str:
    values = ", ".join(str(i) for i in range(n))
    deps = ", ".join(_q(f"out/{i}.txt") for i in range(n))
    return f"""\
# W2: {n} stages (foreach) and a join
stages:
  leaf:
    foreach: [{values}]
    do:
      cmd: {_q(leaf_command("in/${item}.txt", "out/${item}.txt"))}
      deps: ["in/${{item}}.txt"]
      outs: ["out/${{item}}.txt"]
  join:
    cmd: {_q(JOIN_COMMAND)}
    deps: [{deps}]
    outs: [all.txt]
"""


# -- building the repositories ------------------------------------------------------

PIPELINE_FILES = {
    "conveyor": "conveyor.yml",
    "make": "Makefile",
    "snakemake": "Snakefile",
    "dvc": "dvc.yaml",
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, check=True, stdout=subprocess.DEVNULL)


def _init_repo(
    repo: Path,
    tools: Sequence[str],
    texts: Mapping[str, str],
    inputs: Mapping[str, str],
    dvc: Path | None,
) -> None:
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _write(repo / ".gitignore", GITIGNORE)
    for tool in tools:
        _write(repo / tool / PIPELINE_FILES[tool], texts[tool])
        for rel, content in inputs.items():
            _write(repo / tool / rel, content)
    if dvc is not None and "dvc" in tools:
        env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
        for args in (["init", "-q"], ["config", "core.analytics", "false"]):
            subprocess.run(
                [str(dvc), *args], cwd=repo, check=True, env=env, stdout=subprocess.DEVNULL
            )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "benchmark workload")


def make_chain(repo: Path, n: int, tools: Sequence[str], dvc: Path | None) -> Workload:
    texts = {
        "conveyor": chain_conveyor(n),
        "make": chain_make(n),
        "snakemake": chain_snakemake(n),
        "dvc": chain_dvc(n),
    }
    _init_repo(repo, tools, texts, {"c/0.txt": "0\n"}, dvc)
    outputs = tuple(f"c/{i}.txt" for i in range(1, n + 1))
    return Workload("W1", repo, n, outputs, ("c",))


def make_fanout(repo: Path, n: int, tools: Sequence[str], dvc: Path | None) -> Workload:
    texts = {
        "conveyor": fanout_conveyor(n),
        "make": fanout_make(n),
        "snakemake": fanout_snakemake(n),
        "dvc": fanout_dvc(n),
    }
    inputs = {f"in/{i}.txt": leaf_input(i) for i in range(n)}
    _init_repo(repo, tools, texts, inputs, dvc)
    outputs = (*(f"out/{i}.txt" for i in range(n)), "all.txt")
    return Workload("W2", repo, n, outputs, ("out",))


def remove_outputs(directory: Path, outputs: Iterable[str], output_dirs: Iterable[str]) -> None:
    for rel in outputs:
        (directory / rel).unlink(missing_ok=True)
    for rel in output_dirs:
        (directory / rel).mkdir(parents=True, exist_ok=True)


def mtimes(directory: Path, outputs: Iterable[str]) -> dict[str, int | None]:
    """Modification times (ns) of the outputs; None for a missing one."""
    result: dict[str, int | None] = {}
    for rel in outputs:
        try:
            result[rel] = os.stat(directory / rel).st_mtime_ns
        except FileNotFoundError:
            result[rel] = None
    return result
