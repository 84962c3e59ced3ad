"""Why no machine matches a job: its ad against the pool's slot ads, in one sentence.

What ``condor_q -better-analyze`` tells, reduced to the causes a step can fix from its
pipeline: a resource request no slot can hold, or requirements no slot meets. Pure: the
ads come from the caller (``Mapping`` views of ClassAds whose values are evaluated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Ad = Mapping[str, Any]
_RESOURCES = (  # (job's request, slot's offer, what, unit, the step's setting)
    ("RequestCpus", "Cpus", "CPUs", "", "resources.cpus"),
    ("RequestMemory", "Memory", "memory", " MB", "resources.memory"),
    ("RequestDisk", "Disk", "disk", " KB", "resources.disk"),
)


def why_no_match(job: Ad, slots: Sequence[Ad], matching: int, requirements: str) -> str | None:
    """None when some slot matches (the job only waits for it to be free); else why not.
    ``matching``: how many slots and the job accept each other (ClassAd symmetric match)."""
    if not slots:
        return "the HTCondor pool has no machines (its collector lists no slots)"
    if matching:
        return None
    reasons = []
    for request, offer, what, unit, setting in _RESOURCES:
        asked = _number(job.get(request))
        offers = [n for slot in slots if (n := _number(slot.get(offer))) is not None]
        if asked is not None and offers and asked > max(offers):
            reasons.append(
                f"it asks for {asked:g}{unit} of {what} ({setting}) and the largest of "
                f"the pool's {len(slots)} slot(s) has {max(offers):g}{unit}"
            )
    if reasons:
        return "no machine matches the job: " + "; ".join(reasons)
    return (
        f"no machine matches the job: none of the pool's {len(slots)} slot(s) meets its "
        f"requirements ({_short(requirements)}) or accepts it"
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
