"""Which environment variable names a secret may never set."""

from __future__ import annotations

import pytest

from conveyor.domain.envnames import changes_execution


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "LD_PRELOAD",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "BASH_ENV",
        "BASH_FUNC_ls%%",
        "ENV",
        "IFS",
        "HOME",
        "NODE_OPTIONS",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_KEY_0",
        "CONVEYOR_RUN_ID",
    ],
)
def test_names_that_change_execution(name: str) -> None:
    assert changes_execution(name)


@pytest.mark.parametrize(
    "name", ["API_TOKEN", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "GIT_TOKEN", "pythonista", "PAT"]
)
def test_names_that_only_carry_data(name: str) -> None:
    assert not changes_execution(name)
