"""When a Pachyderm cron input ticks next (``server/pachyderm_cron.next_tick``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.server.pachyderm_cron import next_tick

NOON = datetime(2026, 12, 3, 12, 0, 7, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [("@every 90s", 90.0), ("@every 1m30s", 90.0), ("@every 1h", 3600.0), ("@every 1ms", 1.0)],
)
def test_every_takes_go_durations_at_least_a_clock_tick(spec: str, seconds: float) -> None:
    assert next_tick(spec, NOON) == NOON + seconds


def test_cron_fields_are_utc() -> None:
    due = datetime.fromtimestamp(next_tick("*/10 * * * *", NOON), UTC)
    assert due == datetime(2026, 12, 3, 12, 10, tzinfo=UTC)


def test_a_spec_that_is_no_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="not a schedule"):
        next_tick("every day", NOON)
