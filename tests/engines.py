"""Which real engines a test may count on.

A test that needs an engine skips when it is not configured here, unless
scripts/test.sh started that engine (named in CONVEYOR_ENGINES, with
CONVEYOR_REQUIRE_ENGINES=1): then its absence is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

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


@contextlib.contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new database on the test PostgreSQL server, dropped afterwards."""
    base = os.environ.get("CONVEYOR_TEST_DATABASE_URL")
    if not base:
        engine_missing("postgres", "PostgreSQL not configured; run scripts/engines/postgres.sh up")
        raise AssertionError("unreachable")  # engine_missing skips or fails
    import sqlalchemy as sa

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()
