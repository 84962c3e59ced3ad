"""A retention table ([retention], or a server project's ``retention`` setting, which the
settings page writes): each bad rule is one sentence; NaN or infinite days are not days."""

from __future__ import annotations

import pytest

from conveyor.errors import ConveyorError
from conveyor.sdk.settings import RetentionPolicy


def test_the_rules_are_read() -> None:
    policy = RetentionPolicy.parse(
        "p", {"keep_last": 5, "keep_days": 1.5, "keep_branches": ["main"]}
    )
    assert policy == RetentionPolicy(5, 1.5, ("main",))


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"keep_days": float("nan")}, "keep_days is a number of days >= 0"),
        ({"keep_days": float("inf")}, "keep_days is a number of days >= 0"),
        ({"keep_days": -1}, "keep_days is a number of days >= 0"),
        ({"keep_last": 2.5}, "keep_last is a whole number"),
        ({"keep_branches": "main"}, "keep_branches is a list"),
        ({"keep_all": True}, "unknown setting retention.keep_all"),
    ],
)
def test_a_bad_rule_is_one_sentence(rules: dict[str, object], says: str) -> None:
    with pytest.raises(ConveyorError, match=says):
        RetentionPolicy.parse("project demo", rules)
