"""Shared set-up for every test.

When a hypothesis test fails, its pytest plugin imports ``libcst`` to suggest a patch;
that import emits a DeprecationWarning (from ``mypy_extensions``), which
``filterwarnings = error`` turns into an INTERNALERROR that hides the real failure and
stops the session. Importing it once here, with that warning silenced, keeps a failing
property test an ordinary test failure.

scripts/test.sh runs the tests in two processes (pytest-xdist, ``--dist loadgroup``);
each group runs whole in one process. A module is a group: its tests were written to run
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

import pytest

with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401

CLUSTERS = ("htcondor", "spark", "dask")
# what a module that reaches a cluster engine mentions: its client setting, or the pool
# helper of the HTCondor tests
_REACHES = re.compile(
    r"CONDOR_CONFIG|CONVEYOR_SPARK_MASTER|CONVEYOR_DASK_SCHEDULER|SPARK_HOME|_need_pool"
)


def pytest_configure(config: pytest.Config) -> None:
    # xdist registers it; without xdist (-p no:xdist) --strict-markers must still know it
    config.addinivalue_line("markers", "xdist_group(name): tests of one group run in one process")


@functools.cache
def _module_reaches_clusters(path: Path) -> bool:
    if "unit" in path.parts or "golden" in path.parts or "formats" in path.parts:
        return False  # no processes there, by the suite's rules
    if any(name in path.name for name in CLUSTERS):
        return True
    return bool(_REACHES.search(path.read_text(encoding="utf-8")))


def _reaches_clusters(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "executor_name" in callspec.params:
        backend = str(callspec.params["executor_name"])  # the conformance suite
        return any(backend.startswith(name) for name in CLUSTERS)  # htcondor-shared too
    return _module_reaches_clusters(Path(str(item.path)))


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = "clusters" if _reaches_clusters(item) else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
