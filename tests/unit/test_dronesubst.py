"""Drone's substitution (the forms drone/envsubst documents) and its shell quoting."""

from __future__ import annotations

import subprocess

import pytest

from conveyor.plan.dronesubst import substitute, substitute_shell

VARS = {
    "DRONE_COMMIT_SHA": "0123456789abcdef",
    "DRONE_BRANCH": "release/v1.2",
    "DRONE_TAG": "v1.2.3",
    "NAME": "octoCat",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${DRONE_COMMIT_SHA}", "0123456789abcdef"),
        ("${DRONE_COMMIT_SHA:0:7}", "0123456"),
        ("${DRONE_COMMIT_SHA:10}", "abcdef"),
        ("${DRONE_COMMIT_SHA:-4}", "0123456789abcdef"),  # `:-` is a default: set, so itself
        ("${DRONE_BRANCH##release/v}", "1.2"),
        ("${DRONE_BRANCH#*/}", "v1.2"),
        ("${DRONE_TAG##v}", "1.2.3"),
        ("${DRONE_TAG%%.*}", "v1"),
        ("${DRONE_TAG%.*}", "v1.2"),
        ("${NAME^^}", "OCTOCAT"),
        ("${NAME,,}", "octocat"),
        ("${NAME^}", "OctoCat"),
        ("${NAME,}", "octoCat"),
        ("${#NAME}", "7"),
        ("${DRONE_BRANCH/\\//-}", "release/v1.2"),  # `\/` is no escape here: nothing to replace
        ("${DRONE_BRANCH/release/rel}", "rel/v1.2"),
        ("${DRONE_TAG//./-}", "v1-2-3"),
        ("${DRONE_TAG/#v/V}", "V1.2.3"),
        ("${DRONE_TAG/%3/4}", "v1.2.4"),
        ("${UNSET=fallback}", "fallback"),
        ("${UNSET:-fallback}", "fallback"),
        ("${UNSET}", ""),  # a name Drone does not set is empty, as in Drone
        ("$${HOME} and $$PATH", "${HOME} and $PATH"),  # `$$` is a literal `$`
        ("$HOME ${NAME:?x}", "$HOME ${NAME:?x}"),  # `$NAME` and unknown forms are left
        ("tag-${DRONE_TAG}-${DRONE_COMMIT_SHA:0:4}", "tag-v1.2.3-0123"),
    ],
)
def test_forms(text: str, expected: str) -> None:
    assert substitute(text, VARS) == expected


def test_shell_text_gets_each_value_quoted_for_its_place() -> None:
    text = "echo ${DRONE_TAG} \"${DRONE_BRANCH}\" '${NAME}' $${HOME}"
    assert substitute_shell(text, VARS) == "echo v1.2.3 \"release/v1.2\" 'octoCat' ${HOME}"


@pytest.mark.parametrize(
    "branch",
    [
        "$(touch pwned)",
        "`touch pwned`",
        "x'; touch pwned; echo '",
        'x"; touch pwned; echo "',
        "x && touch pwned",
    ],
)
def test_a_hostile_branch_name_never_executes(branch: str, tmp_path: object) -> None:
    command = substitute_shell(
        "echo ${DRONE_BRANCH}; echo \"b=${DRONE_BRANCH}\"; echo 'c=${DRONE_BRANCH}'",
        {"DRONE_BRANCH": branch},
    )
    done = subprocess.run(
        ["sh", "-c", command], cwd=str(tmp_path), capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [branch, f"b={branch}", f"c={branch}"]
    assert not (tmp_path / "pwned").exists()  # type: ignore[operator]
