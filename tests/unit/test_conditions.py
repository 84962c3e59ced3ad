"""Drone's trigger/when conditions: Go's filepath.Match globs, include/exclude, reasons."""

from __future__ import annotations

import pytest

from conveyor.domain.conditions import Condition, RunFacts, glob_match, unmet_reason


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("master", "master", True),
        ("master", "main", False),
        ("feature/*", "feature/x", True),
        ("feature/*", "feature/x/y", False),  # `*` never crosses a `/`
        ("refs/tags/**", "refs/tags/v1.2", True),
        ("refs/tags/**", "refs/tags/a/b", False),  # `**` is two `*`, as in Go
        ("refs/pull/*/head", "refs/pull/12/head", True),
        ("v?.*", "v1.0", True),
        ("release-[0-9]", "release-7", True),
        ("release-[^0-9]", "release-7", False),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("[broken", "[broken", False),  # a malformed pattern matches nothing
        ("*", "", True),
        ("master", "", False),
    ],
)
def test_glob_match_is_gos_filepath_match(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(pattern, value) is expected


def test_a_long_value_against_many_stars_is_quick_and_false() -> None:
    assert not glob_match("*a*a*a*a*a*a*a*b", "a" * 2000)


def test_every_condition_holds_gives_no_reason() -> None:
    facts = RunFacts(event="push", branch="master")
    conditions = (
        Condition("job", "branch", ("master", "release/*")),
        Condition("step", "event", (), ("pull_request",)),
    )
    assert unmet_reason(conditions, facts) is None


def test_an_include_that_no_value_matches_names_what_was_wanted() -> None:
    reason = unmet_reason((Condition("job", "branch", ("master",)),), RunFacts(branch="dev"))
    assert reason == "the job's branch condition wants master; this run's branch is 'dev'"


def test_an_exclude_wins_over_an_include() -> None:
    condition = Condition("step", "event", ("push", "tag"), ("tag",))
    reason = unmet_reason((condition,), RunFacts(event="tag"))
    assert reason == "the step's event condition excludes tag; this run's event is 'tag'"


def test_a_branch_condition_never_matches_a_tag_run_without_a_branch() -> None:
    reason = unmet_reason((Condition("job", "branch", ("master",)),), RunFacts(event="tag"))
    assert reason is not None
    assert reason.endswith("this run's branch is none")


def test_the_host_architecture_goes_by_its_drone_name() -> None:
    facts = RunFacts(os="linux", arch="x86_64")
    assert unmet_reason((Condition("job", "arch", ("amd64",)),), facts) is None
    reason = unmet_reason((Condition("job", "arch", ("arm64",)),), facts)
    assert reason == "the job's arch condition wants arm64; this run's arch is 'amd64'"
