"""``vcs.git.commit_summaries``: author and subject of many commits in one git process,
on a real repository; a commit that is not there, or not a hash, is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.vcs.git import commit_summaries
from tests.integration.server_support import git

pytestmark = pytest.mark.integration


def test_summaries_of_present_commits_only(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    made = []
    for author, message in (("Ada L", "First line\n\nbody"), ("Bo", "Second: two")):
        git(
            tmp_path,
            "-c",
            f"user.name={author}",
            "-c",
            "user.email=a@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        )
        made.append(git(tmp_path, "rev-parse", "HEAD").stdout.strip())
    tree = git(tmp_path, "rev-parse", "HEAD^{tree}").stdout.strip()
    found = commit_summaries(tmp_path, [*made, "f" * 40, tree, "--all", "HEAD"])
    assert found == {made[0]: ("Ada L", "First line"), made[1]: ("Bo", "Second: two")}
    assert commit_summaries(tmp_path, []) == {}
