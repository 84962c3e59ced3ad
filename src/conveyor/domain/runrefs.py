"""A run named by its number (``#12``, Drone's build number) rather than its id.

``#N`` is always a number; bare digits are one when shorter than 4 characters (a run
id's prefix has at least 4 where it is unique enough to mean anything), so ``12`` is
run 12 and ``1234`` still the prefix of an id. Stdlib only.
"""

from __future__ import annotations

from conveyor.errors import UsageError

MAX_DIGITS = 9  # a number, not an integer of any size


def run_number(ref: str) -> int | None:
    """The run number ``ref`` names, or None when it names a run another way."""
    if ref.startswith("#"):
        digits = ref[1:]
        if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_DIGITS:
            shown = ref if len(ref) <= 20 else ref[:20] + "..."
            raise UsageError(f"{shown!r} is not a run number: write # and its digits, e.g. #12")
        return int(digits)
    if ref.isascii() and ref.isdigit() and len(ref) < 4:
        return int(ref)
    return None
