"""Kubernetes quantities as Pachyderm's ``resource_requests``/``resource_limits`` write
them (``2Gi``, ``500M``, ``1e9``, ``0.5``), read into numbers; the spec reader has
checked their shape, so a quantity that does not parse is None here."""

from __future__ import annotations

import math
import re

_QUANTITY = re.compile(r"(\d+(?:\.\d+)?(?:[eE]\d+)?)([numkMGTPE]|[KMGTPE]i)?")
_FACTOR = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
_FACTOR |= {"T": 1e12, "P": 1e15, "E": 1e18}
_FACTOR |= {f"{u}i": 1024.0 ** (i + 1) for i, u in enumerate("KMGTPE")}


def quantity(text: str | None) -> float | None:
    match = _QUANTITY.fullmatch(text or "")
    if match is None:
        return None
    return float(match.group(1)) * _FACTOR[match.group(2) or ""]


def mebibytes(text: str | None) -> int | None:
    """A quantity of bytes in MiB, rounded up (at least 1)."""
    size = quantity(text)
    return None if size is None else max(1, math.ceil(size / 2**20))


def whole_bytes(text: str | None) -> int | None:
    """A quantity of bytes, rounded up (at least 1 MiB: less leaves no process room)."""
    size = quantity(text)
    return None if size is None else max(2**20, math.ceil(size))
