"""Which real engines a test may count on.

A test that needs an engine skips when it is not configured here, unless
scripts/test.sh started that engine (named in CONVEYOR_ENGINES, with
CONVEYOR_REQUIRE_ENGINES=1): then its absence is a failure, not a skip.
"""

from __future__ import annotations

import os

import pytest


def engine_missing(engine: str, message: str) -> None:
    """Skip or fail the current test because ``engine`` is not available."""
    started = os.environ.get("CONVEYOR_ENGINES", "").split()
    if os.environ.get("CONVEYOR_REQUIRE_ENGINES") == "1" and engine in started:
        pytest.fail(message)
    pytest.skip(message)


def configured(variable: str) -> bool:
    """Whether an engine's client setting is in the environment. Importing the HTCondor
    bindings without a configuration sets CONDOR_CONFIG=/dev/null: that is no pool."""
    return os.environ.get(variable, "/dev/null") != "/dev/null"
