"""``conveyor ui`` started for a test: the real command in a project, on a free
loopback port (the URL it printed)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# The CLI with the `ui` command added as its entry point adds it (the shared test venv
# may predate the entry point).
UI = [
    sys.executable,
    "-c",
    "from conveyor.cli.group import cli; from conveyor.cli.main import main; from conveyor.server.web.ui import ui; "
    "cli.add_command(ui); main()",
]


@contextlib.contextmanager
def serve_ui(project: Path) -> Iterator[str]:
    """``conveyor ui --json`` in ``project``, stopped on leaving: its project page's URL."""
    proc = subprocess.Popen(
        [*UI, "ui", "--json"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        yield json.loads(line)["url"]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # reaps it and closes its pipes
