"""The ``[executors.htcondor]`` table of ``.conveyor/config.toml``, checked but not used.

Reading settings does no work: nothing is imported or contacted here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ProjectError

DEFAULT_PARALLELISM = 1000
_TEXT = (
    "collector",
    "schedd",
    "token_dir",
    "scitoken_file",
    "auth_methods",
    "scratch",
    "filesystem",
)
_PATHS = ("token_dir", "scitoken_file", "scratch")
AUTH_METHODS = frozenset(
    {"IDTOKENS", "TOKEN", "TOKENS", "SCITOKENS", "KERBEROS", "SSL", "FS", "FS_REMOTE", "MUNGE"}
)
"""Client authentication methods HTCondor knows (``SEC_CLIENT_AUTHENTICATION_METHODS``)."""
FILESYSTEMS = ("spool", "shared", "auto")
_NUMBERS = (
    "parallelism",
    "poll_interval",
    "connect_timeout",
    "unreachable_grace",
    "no_capacity_timeout",
    "no_match_after",
)
KNOWN = frozenset(_TEXT + _NUMBERS)


@dataclass(frozen=True)
class HTCondorSettings:
    collector: str | None = None
    """The collector's address (``host[:port]``); default: the client config's."""
    schedd: str | None = None
    """The schedd's name in the collector, or its sinful string ``<ip:port?...>``."""
    token_dir: str | None = None
    """A directory of IDTOKENS for the client (``SEC_TOKEN_DIRECTORY``)."""
    scitoken_file: str | None = None
    """A file holding a SciToken for the client (``SCITOKENS_FILE``)."""
    auth_methods: str | None = None
    """The client's authentication methods in order, e.g. ``"SCITOKENS, IDTOKENS"``
    (``SEC_CLIENT_AUTHENTICATION_METHODS``); Kerberos uses the process's credential
    cache (``KRB5CCNAME``)."""
    scratch: str | None = None
    """Where private per-invocation directories are made; default: a temp dir (spool
    mode), the project's ``.conveyor/htcondor`` (shared mode: the pool must see it)."""
    filesystem: str = "spool"
    """``spool``: no filesystem shared with the pool, files go through the schedd;
    ``shared``: jobs run in the project directory, which the pool's machines mount at
    the same path; ``auto``: shared when the pool's slots declare the submit machine's
    ``FILESYSTEM_DOMAIN`` (HTCondor's own rule), else spool."""
    parallelism: int = DEFAULT_PARALLELISM
    poll_interval: float = 0.5
    """Seconds between two queries of the schedd (the rate bound)."""
    connect_timeout: float = 10.0
    """Seconds the first contact with the pool may take before it is an error."""
    unreachable_grace: float = 60.0
    """Seconds the schedd may stay unreachable during a run before the run fails."""
    no_capacity_timeout: float = 300.0
    """Seconds the pool may have no slot at all, or a job no machine that matches it,
    before the steps waiting fail."""
    no_match_after: float = 30.0
    """Seconds a job may stay idle before Conveyor asks why no machine matches it (and
    writes the answer to the step's log)."""

    @staticmethod
    def from_mapping(raw: Mapping[str, Any] | None) -> HTCondorSettings:
        raw = dict(raw or {})
        unknown = sorted(set(raw) - KNOWN)
        if unknown:
            raise ProjectError(
                f"unknown setting executors.htcondor.{unknown[0]} "
                f"(known: {', '.join(sorted(KNOWN))})"
            )
        values: dict[str, Any] = {}
        for key in _TEXT:
            if raw.get(key) not in (None, ""):
                text = str(raw[key])
                values[key] = os.path.expanduser(text) if key in _PATHS else text
        if "auth_methods" in values:
            values["auth_methods"] = _auth_methods(values["auth_methods"])
        if values.get("filesystem", "spool") not in FILESYSTEMS:
            raise ProjectError(
                f"executors.htcondor.filesystem must be one of {', '.join(FILESYSTEMS)}, "
                f"not {values['filesystem']!r}"
            )
        for key in _NUMBERS:
            if key in raw:
                values[key] = _positive(key, raw[key], int if key == "parallelism" else float)
        return HTCondorSettings(**values)

    def where(self, configured: object = None) -> str:
        """How the pool is addressed, for error messages."""
        if self.schedd:
            return self.schedd
        return self.collector or str(configured or "the collector of CONDOR_CONFIG")


def _auth_methods(text: str) -> str:
    """The methods, checked against those HTCondor knows, as HTCondor lists them."""
    methods = [m.strip().upper() for m in text.replace(",", " ").split()]
    unknown = [m for m in methods if m not in AUTH_METHODS]
    if unknown or not methods:
        raise ProjectError(
            f"executors.htcondor.auth_methods: {unknown[0] if unknown else 'nothing'} is not "
            f"an HTCondor authentication method (known: {', '.join(sorted(AUTH_METHODS))})"
        )
    return ", ".join(methods)


def _positive(key: str, value: object, kind: type[int] | type[float]) -> int | float:
    number: int | float = 0
    if isinstance(value, int | float | str):
        try:
            number = kind(value)
        except ValueError:
            number = 0
    if isinstance(value, bool) or number <= 0:
        raise ProjectError(f"executors.htcondor.{key} must be a positive number, not {value!r}")
    return number
