"""Drone's `${VAR}` substitution with hostile values: a branch name is data, never code.

Drone pastes its variables into the configuration as text, so a branch named
`x$(touch pwned)` runs `touch` in Drone. Conveyor substitutes the same forms at launch but
quotes each value for its place in the shell text: unquoted, "double" or 'single'."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

DRONE = """\
kind: pipeline
name: ci
steps:
  - name: echo
    commands:
      - echo ${DRONE_BRANCH} > plain.txt
      - echo "${DRONE_BRANCH}" > double.txt
      - echo '${DRONE_BRANCH}' > single.txt
      - echo ${DRONE_BRANCH^^} > upper.txt
      - echo "short=${DRONE_COMMIT_SHA:0:7} $${HOME:+home-is-the-shell-s}" > sha.txt
"""

HOSTILE = [
    "x$(touch${IFS}pwned)",
    "x`touch${IFS}pwned`",
    "x';touch${IFS}pwned;'",
    'x";touch${IFS}pwned;"',
    "x&&touch${IFS}pwned",
]


@pytest.mark.parametrize("branch", HOSTILE)
def test_a_hostile_branch_name_never_executes(repo: Repo, branch: str) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    subprocess.run(["git", "checkout", "-q", "-b", branch], cwd=repo.path, check=True)
    result = repo.run("run")
    assert result.code == 0, result.err
    assert not (repo.path / "pwned").exists()
    for name in ("plain", "double", "single"):
        assert (repo.path / f"{name}.txt").read_text() == branch + "\n"
    assert (repo.path / "upper.txt").read_text() == branch.upper() + "\n"


def test_substituted_values_and_dollar_dollar_reach_the_shell_as_drone_means(repo: Repo) -> None:
    repo.write(".drone.yml", DRONE)
    repo.commit()
    assert repo.run("run").code == 0
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo.path, capture_output=True, text=True, check=True
    ).stdout.strip()
    # `$${HOME...}` is `${HOME...}` for the shell, which expands it itself
    assert (repo.path / "sha.txt").read_text() == f"short={commit[:7]} home-is-the-shell-s\n"
