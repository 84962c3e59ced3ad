"""Bad input: one clear line with file:line, exit code 2, no traceback, nothing lost."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

GOOD = """\
jobs:
  a:
    steps:
      - run: echo ok > ok.txt
        outputs: [ok.txt]
"""

# (pipeline text, expected substring, expected "file:line" prefix or None)
CORPUS = [
    ("jobs:\n  a:\n    steps:\n      - run: [x\n", "invalid YAML", "conveyor.yml:5"),
    (
        "jobs:\n  a:\n    steps:\n      - run: x\n        colour: red\n",
        "unknown key 'colour'",
        "conveyor.yml:5:9",
    ),
    ("jobs:\n  a:\n    stepz: []\n", "unknown key 'stepz'", "conveyor.yml:3:5"),
    (
        "nmae: x\njobs:\n  a:\n    steps:\n      - run: x\n",
        "unknown key 'nmae'",
        "conveyor.yml:1:1",
    ),
    (
        "jobs:\n  a:\n    steps:\n      - run: x\n        retries: lots\n",
        "retries",
        "conveyor.yml:5:9",
    ),
    (
        "jobs:\n  a:\n    steps:\n      - id: s\n        run: x\n      - id: s\n        run: y\n",
        "duplicate step id 's'",
        "conveyor.yml:6",
    ),
    (
        "jobs:\n  a:\n    needs: [b]\n    steps:\n      - run: x\n",
        "needs 'b', which is not a job",
        "conveyor.yml:3",
    ),
    (
        "jobs:\n  a:\n    needs: b\n    steps:\n      - run: x\n  b:\n    needs: a\n    steps:\n      - run: y\n",
        "cycle: ",
        "conveyor.yml:",
    ),
    (
        "jobs:\n  a:\n    matrix:\n      k: []\n    steps:\n      - run: x\n",
        "has no values",
        "conveyor.yml:4",
    ),
    (
        "jobs:\n  a:\n    matrix:\n      k: [1]\n      exclude: [{k: 1}]\n    steps:\n      - run: x\n",
        "expands to no job instance",
        "conveyor.yml:3",
    ),
    (
        "jobs:\n  a:\n    steps:\n      - run: x\n        outputs: [../escape.txt]\n",
        "outside the project",
        "conveyor.yml:5",
    ),
    (
        "jobs:\n  a:\n    steps:\n      - run: x\n        outputs: [/tmp/abs.txt]\n",
        "outside the project",
        "conveyor.yml:5",
    ),
    (
        "jobs:\n  a:\n    steps:\n      - run: echo ${{ params.nope }}\n",
        "params.nope is not defined",
        "conveyor.yml:4",
    ),
    (
        "jobs:\n  a:\n    steps:\n      - run: x\n        if: sometimes()\n",
        "not a run policy",
        "conveyor.yml:5",
    ),
    (
        "jobs:\n  a:\n    steps:\n      - run: x\n  a:\n    steps:\n      - run: y\n",
        "duplicate key 'a'",
        "conveyor.yml:5:3",
    ),
    ("jobs: {}\n", "jobs", "conveyor.yml:1"),
    ("", "empty", "conveyor.yml"),
    ("- just\n- a list\n", "must be a mapping", "conveyor.yml:1"),
]


@pytest.mark.parametrize(("text", "message", "where"), CORPUS)
def test_bad_pipeline_is_one_clear_line_with_exit_2(
    repo: Repo, text: str, message: str, where: str
) -> None:
    repo.pipeline(GOOD)
    repo.commit()
    assert repo.run("run").code == 0
    repo.pipeline(text)
    for command in (("validate",), ("plan",), ("run",)):
        result = repo.run(*command)
        assert result.code == 2, (command, result.out, result.err)
        assert "Traceback" not in result.err
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, result.err
        assert message in lines[0], lines[0]
        assert where in lines[0], lines[0]
    # nothing stored before was lost or changed
    runs = repo.run("runs", "--json").json()
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    assert repo.run("fetch", "latest").code == 0


def test_param_of_the_wrong_type(repo: Repo) -> None:
    repo.pipeline("params:\n  n: 3\njobs:\n  a:\n    steps:\n      - run: echo ${{ params.n }}\n")
    repo.commit()
    result = repo.run("run", "--param", "n=three")
    assert result.code == 2
    assert "parameter 'n' is int, and 'three' is not a valid int" in result.err
    unknown = repo.run("run", "-p", "m=1")
    assert unknown.code == 2 and "unknown parameter 'm'" in unknown.err
    malformed = repo.run("run", "-p", "n")
    assert malformed.code == 2 and "name=value" in malformed.err
    assert repo.run("runs", "--json").json() == []


def test_missing_pipeline_file(repo: Repo) -> None:
    result = repo.run("run")
    assert result.code == 2
    assert "no pipeline file" in result.err and "conveyor init" in result.err
    explicit = repo.run("-f", "nope.yml", "validate")
    assert explicit.code == 2 and "nope.yml does not exist" in explicit.err


def test_not_a_git_repository(tmp_path_factory: pytest.TempPathFactory) -> None:
    plain = Repo(tmp_path_factory.mktemp("nogit"))
    plain.pipeline(GOOD)
    result = plain.run("run")
    assert result.code == 2
    assert "not inside a git repository" in result.err


def test_unknown_executor_and_bad_settings(repo: Repo) -> None:
    repo.pipeline(GOOD)
    repo.commit()
    result = repo.run("run", "--executor", "nowhere")
    assert result.code == 2 and "unknown executor 'nowhere'" in result.err
    repo.write(".conveyor/config.toml", "[project]\nexecuter = 'local'\n")
    bad = repo.run("run")
    assert bad.code == 2 and "unknown setting project.executer" in bad.err


def test_missing_declared_input_fails_the_step_clearly(repo: Repo) -> None:
    repo.pipeline(
        "jobs:\n  a:\n    steps:\n      - run: cat data.csv\n        inputs: [data.csv]\n"
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 1
    assert "declared input data.csv does not exist" in result.out


def test_undeclared_output_not_written_fails_the_step(repo: Repo) -> None:
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: 'true'\n        outputs: [never.txt]\n")
    repo.commit()
    result = repo.run("run")
    assert result.code == 1
    assert "did not write its declared output never.txt" in result.out
