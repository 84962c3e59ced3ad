"""The run command's signal handler: it only sets the runner's flag and writes one line
(never raises, never touches an executor), whatever the number of signals."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from conveyor.cli.local_run import cancel_on_signals as _cancel_on_signals
from conveyor.cli.local_run import run_is_over as _run_is_over


class _Runner:
    def __init__(self) -> None:
        self.flags = 0

    def cancel_from_signal(self) -> None:
        self.flags += 1

    def request_cancel(self) -> None:  # takes locks: must not be called from a handler
        raise AssertionError("request_cancel called from a signal handler")


@pytest.fixture
def restored() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.usefixtures("restored")
def test_every_signal_sets_the_flag_and_only_the_first_says_cancelling(
    capfd: pytest.CaptureFixture[str],
) -> None:
    runner = _Runner()
    _cancel_on_signals(runner)
    handler = signal.getsignal(signal.SIGINT)
    assert callable(handler) and signal.getsignal(signal.SIGTERM) is handler
    for _ in range(3):
        handler(signal.SIGINT, None)  # never raises KeyboardInterrupt
    err = capfd.readouterr().err
    assert runner.flags == 3
    assert err.count("conveyor: cancelling") == 1
    assert err.count("still cancelling") == 2


@pytest.mark.usefixtures("restored")
def test_after_the_run_a_signal_is_ignored_not_fatal() -> None:
    _cancel_on_signals(_Runner())
    _run_is_over()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN


@pytest.mark.usefixtures("restored")
def test_without_a_run_the_default_handlers_stay() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _run_is_over()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
