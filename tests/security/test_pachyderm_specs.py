"""Hostile Pachyderm specs and inputs: data, never code; bounded, never a traceback.

A spec file is read whole before anything else (at most 1 MiB, 100,000 values, 64 levels,
aliases expanded, in time linear in the text); globs are matched without backtracking;
names become paths (/pfs/<name>) and variable names, so they are letters, digits, ``_``
and ``-`` only; a local input directory is walked without following links.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor.errors import SpecError, UsageError
from conveyor.plan.pachyderm_datums import DatumError, datums
from conveyor.spec.pachyderm import load_specs, parse_specs
from conveyor.spec.pachyderm_glob import MAX_PATTERN, GlobError, compile_glob
from conveyor.spec.yamlsource import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_VALUES

SPEC = '{"pipeline": {"name": "p"}, "transform": {"cmd": ["sh"]}, "input": %s}'


def json_spec(text: str) -> None:
    parse_specs(text, "spec.json", is_json=True)


def test_a_json_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.json"
    path.write_text(SPEC % '{"pfs": {"repo": "r", "glob": "/*"}}' + " " * MAX_DOCUMENT_BYTES)
    with pytest.raises(SpecError, match=f"at most {MAX_DOCUMENT_BYTES} bytes"):
        load_specs(path)


def test_deep_json_is_refused_at_the_limit_not_by_a_recursion_error() -> None:
    with pytest.raises(SpecError, match=f"nested deeper than {MAX_DEPTH} levels"):
        json_spec("[" * 200_000)


def test_json_of_too_many_values_is_refused() -> None:
    with pytest.raises(SpecError, match=f"more than {MAX_VALUES} values"):
        json_spec("[" + "0," * (MAX_VALUES + 1) + "0]")


def test_a_number_python_cannot_convert_is_one_error() -> None:
    with pytest.raises(SpecError, match="too many digits"):
        json_spec('{"datum_tries": ' + "9" * 10_000 + "}")
    with pytest.raises(SpecError, match="a value YAML cannot read"):
        parse_specs("datum_tries: " + "9" * 10_000, "spec.yaml", is_json=False)


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(SpecError, match="lone UTF-16 surrogate"):
        json_spec('{"description": "\\ud800"}')


def test_a_yaml_alias_bomb_in_a_spec_is_refused_in_a_capped_process(tmp_path: Path) -> None:
    lines = ["description: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 10)]
    (tmp_path / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from pathlib import Path\n"
        "from conveyor.errors import SpecError\n"
        "from conveyor.spec.pachyderm import load_specs\n"
        "try:\n"
        f"    load_specs(Path({str(tmp_path / 'pipeline.yaml')!r}))\n"
        "except SpecError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "once aliases are expanded" in done.stdout


@pytest.mark.parametrize(
    ("pattern", "path", "groups"),
    [
        ("/" + "*a" * 25 + "b", "/" + "a" * 4000, None),
        ("/" + "*a" * 25 + "b", "/" + "a" * 4000 + "b", ()),
        ("/" + "**a" * 20 + "**b", "/" + "a/" * 2000 + "c", None),
        ("/" + "(*a)" * 20 + "(*)", "/" + "a" * 3000, ("a" * 2981, *["a"] * 19, "")),
        ("/{" + ",".join(["*a"] * 50) + "}b", "/" + "a" * 3000, None),
    ],
)
def test_a_pathological_glob_is_answered_without_backtracking(
    pattern: str, path: str, groups: tuple[str, ...] | None
) -> None:
    # a backtracking matcher (Pachyderm's regexp2) takes about len(path) ** 20 steps to say
    # no here; the captures are a backtracking engine's (greedy, leftmost first)
    assert compile_glob(pattern).match(path) == groups


def test_a_glob_over_the_length_limit_is_refused() -> None:
    with pytest.raises(GlobError, match=f"at most {MAX_PATTERN}"):
        compile_glob("/" + "a" * MAX_PATTERN)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            '{"pipeline": {"name": "../p"}, "transform": {"cmd": ["sh"]}}',
            "pipeline.name '../p' must be letters, digits",
        ),
        (SPEC % '{"pfs": {"repo": "r", "name": "a/b", "glob": "/*"}}', "input.pfs.name 'a/b'"),
        (SPEC % '{"pfs": {"repo": "..", "glob": "/*"}}', "input.pfs.repo '..'"),
        (SPEC % '{"pfs": {"repo": "r", "name": "out", "glob": "/*"}}', "cannot be named 'out'"),
        (SPEC % '{"pfs": {"repo": "r", "glob": "/../etc"}}', "a '..' segment"),
        (SPEC % '{"pfs": {"repo": "r", "glob": "/*", "branch": "a/../b"}}', "branch"),
        (
            '{"pipeline": {"name": "p"}, "transform": {"cmd": ["sh"], "env": {"A=B": "x"}}, '
            '"input": {"pfs": {"repo": "r", "glob": "/"}}}',
            "is not a variable name",
        ),
    ],
)
def test_a_name_that_would_escape_pfs_or_the_environment_is_refused(
    spec: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(".", r"\.")):
        json_spec(spec)


def test_a_listed_path_that_climbs_out_is_refused() -> None:
    (spec,) = parse_specs(
        SPEC % '{"pfs": {"repo": "r", "glob": "/*"}}', "s", is_json=True
    ).pipelines
    with pytest.raises(DatumError, match="not a clean path"):
        datums(spec.input, {"r": [("../../etc/passwd", "x")]})


def test_a_link_in_an_input_directory_is_refused_not_followed(tmp_path: Path) -> None:
    from conveyor.cli.group import cli

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_text("a")
    os.symlink("/etc/passwd", tmp_path / "images" / "secret")
    os.symlink("..", tmp_path / "images" / "loop")
    (tmp_path / "edges.json").write_text(SPEC % '{"pfs": {"repo": "images", "glob": "/*"}}')
    result = CliRunner().invoke(
        cli,
        ["-C", str(tmp_path), "pipeline", "datums", "-f", "edges.json", "--input", "images=images"],
    )
    assert isinstance(result.exception, UsageError)
    assert "is not a regular file or directory" in str(result.exception)
    assert "root:" not in result.output
