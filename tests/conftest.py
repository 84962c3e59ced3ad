"""Shared set-up for every test.

When a hypothesis test fails, its pytest plugin imports ``libcst`` to suggest a patch;
that import emits a DeprecationWarning (from ``mypy_extensions``), which
``filterwarnings = error`` turns into an INTERNALERROR that hides the real failure and
stops the session. Importing it once here, with that warning silenced, keeps a failing
property test an ordinary test failure.

scripts/test.sh runs the tests in two processes (pytest-xdist); each group runs whole in
one process, in collection order. A module is a group: its tests were written to run
in order, and some share a module-scoped server whose runs they count. The cluster engines
are shared and stateful (a second Spark application waits for the first one's cores,
HTCondor and Dask tests read the one queue and the one scheduler), so every test that may
reach one of them joins one group, ``clusters``, which runs one test at a time.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching

import hypothesis

# No timing decides a result: Hypothesis's deadline and its too-slow health check measure
# time, and a loaded 2-core CI machine (two test processes beside the engines) trips them
# on tests that pass. A test's own @settings still sets its examples.
hypothesis.settings.register_profile(
    "conveyor",
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("conveyor")

CLUSTERS = ("htcondor", "spark", "dask")
# what a module that reaches a cluster engine mentions: its client setting, or the pool
# helper of the HTCondor tests
_REACHES = re.compile(
    r"CONDOR_CONFIG|CONVEYOR_SPARK_MASTER|CONVEYOR_DASK_SCHEDULER|SPARK_HOME|_need_pool"
)
ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _module_reaches_clusters(module: str) -> bool:
    path = ROOT / module
    if {"unit", "golden", "formats"} & set(path.parts):
        return False  # no processes there, by the suite's rules
    if any(name in path.name for name in CLUSTERS):
        return True
    return bool(_REACHES.search(path.read_text(encoding="utf-8")))


def group_of(nodeid: str) -> str:
    """The group a test runs in: ``clusters``, or its module."""
    module = nodeid.split("::", 1)[0]
    if module.startswith("tests/contract/") and "[" in nodeid:
        backend = nodeid.rsplit("[", 1)[1]  # the conformance suite's executor
        return "clusters" if backend.startswith(CLUSTERS) else module
    return "clusters" if _module_reaches_clusters(module) else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    # xdist's own loadgroup reads xdist_group marks into test ids, which pytest 9's ids
    # no longer take: the groups are given to its module scheduler instead
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)
