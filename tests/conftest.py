"""Shared set-up for unit tests.

When a hypothesis test fails, its pytest plugin imports ``libcst`` to suggest a patch;
that import emits a DeprecationWarning (from ``mypy_extensions``), which
``filterwarnings = error`` turns into an INTERNALERROR that hides the real failure and
stops the session. Importing it once here, with that warning silenced, keeps a failing
property test an ordinary test failure.
"""

from __future__ import annotations

import contextlib
import warnings

with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401
