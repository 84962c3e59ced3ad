"""Which real engines a test may count on.

A test that needs an engine skips when it is not configured here, unless
scripts/test.sh started that engine (named in CONVEYOR_ENGINES, with
CONVEYOR_REQUIRE_ENGINES=1): then its absence is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
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


# engine -> (the Python module its client needs, the extra that installs it); the engine's
# script (scripts/engines/NAME.sh install, run by `up`) installs it too
BINDINGS = {
    "htcondor": ("htcondor2", "htcondor"),
    "spark": ("pyspark", "spark"),
    "dask": ("distributed", "dask"),
}


def need_bindings(engine: str) -> None:
    """Skip (or fail, as :func:`engine_missing`) when ``engine``'s Python client is not
    installed here: a dev environment has them only after the engine's script ran in it."""
    module, extra = BINDINGS[engine]
    if importlib.util.find_spec(module) is None:
        engine_missing(
            engine,
            f"{engine}'s Python client ({module}) is not installed in this environment: "
            f"pip install 'conveyor[{extra}]' (or scripts/engines/{engine}.sh install)",
        )


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
