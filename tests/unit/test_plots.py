"""`conveyor plots` without matplotlib: one sentence that says what to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conveyor.errors import UsageError
from conveyor.sdk import plots


def test_without_matplotlib_the_message_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'conveyor\[plots\]'"):
        plots.write_plots(plots.Series("main", [], {}), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written
